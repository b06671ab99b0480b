"""Scores computed with the ground truth the method never sees: rank-k (CMC) and mAP on the
query / gallery split, the pseudo-labels' pairwise precision and recall and NMI / ARI, and
the realism statistics of a camera network."""
