"""Figures of the kit, one module per figure (e.g. :mod:`.fragments` for the paper's Fig. 2).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show``,
so it works under the non-interactive Agg backend, in notebooks and in tests.
"""
