"""TCUL teaching kit: Temporal Continuity based Unsupervised Learning for person re-id.

The paper's method (Ali, Bayramli, Lu, arXiv 2009.00242) is :mod:`tcul_helpers.method`:
Eq. 1-7 and one iteration of Algorithm 1, in a few hundred lines; start there. The other
subpackages feed it and measure it, each using only those before it in this list: ``infra``
(files, locks, devices, processes), ``data`` (datasets and the synthetic camera network),
``settings`` (profiles and variants), ``training`` (networks and training loops),
``measurement`` (CMC / mAP and other scores), ``figures``, ``experiment`` (the runner of
Algorithm 1, the demo, the command line) and ``teaching`` (what the notebooks use).
"""

__version__ = "0.1.0"
