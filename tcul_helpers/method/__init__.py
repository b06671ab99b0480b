"""The paper's method, and nothing else: Algorithm 1 of TCUL (Ali, Bayramli, Lu) in arrays.

Read in this order:

==========================  ==============================================================
module                      the paper
==========================  ==============================================================
``assignment.py``           Eq. 1-2: cosine similarity to the centres, ``l_i = argmax_k``
``selection.py``            Eq. 3: reliable samples by frame-id closeness within a camera
                            (TCUL); SUL's similarity selection
``triplet_loss.py``         Eq. 4-5: batch-hard triplet loss (online hard mining)
``center_update.py``        Eq. 6-7: the smoothed centre update
``kmeans.py``               step 2: the initial centres by k-means; PUL's re-clustering
``iteration.py``            one iteration of Algorithm 1: assign -> select -> fine-tune ->
                            update, with fine-tuning passed in
``kmeans_engine.py``        the same k-means as ``kmeans.py``, fast at Market scale
==========================  ==============================================================

Arrays in, arrays out: no files, no settings object, no progress bars, no processes.
Everything that feeds the method images, networks and run folders lives outside this
subpackage (``training/``, ``experiment/``); the runner,
:func:`tcul_helpers.experiment.runner.adapt`, calls :func:`iteration.tcul_iteration` once
per iteration.
"""
