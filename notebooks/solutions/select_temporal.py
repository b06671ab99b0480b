"""Instructor solution: Eq. 3, temporal-continuity selection (notebook 04)."""

import numpy as np


def my_select_temporal(features, labels, centers, camids, frames, lambda_fr):
    """Keep x in X_jk iff |fid(x_min_jk) - fid(x)| <= lambda_fr, x_min_jk = the image of
    camera j and cluster k most similar to c_k (ties -> lowest index)."""
    x = np.asarray(features, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    labels, camids, frames = np.asarray(labels), np.asarray(camids), np.asarray(frames)
    xu = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    cu = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    sim = np.einsum("ij,ij->i", xu, cu[labels])
    kept = np.zeros(len(labels), dtype=bool)
    for cam in np.unique(camids):
        for k in np.unique(labels):
            members = np.flatnonzero((camids == cam) & (labels == k))
            if members.size == 0:
                continue
            anchor = members[np.argmax(sim[members])]  # first maximum = lowest index
            kept[members] = np.abs(frames[members] - frames[anchor]) <= lambda_fr
    return kept
