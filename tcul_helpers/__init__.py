"""TCUL teaching kit: Temporal Continuity based Unsupervised Learning for person re-id.

The package holds the whole method (Ali, Bayramli, Lu, arXiv 2009.00242); the notebooks
under ``notebooks/`` explain it stage by stage and call into it.
"""

__version__ = "0.1.0"
