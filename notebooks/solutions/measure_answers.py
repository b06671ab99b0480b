"""Recompute the run-dependent numbers quoted in answers.md for your profile and seed.

    .venv/bin/python notebooks/solutions/measure_answers.py [--profile classroom] [--seed 0]

Uses the cached runs under runs/ (computes what is missing, as the notebooks do) and prints
one JSON object, keyed by notebook and question.
"""

import argparse
import json
from collections import defaultdict

import numpy as np
import torch
from sklearn.metrics import silhouette_score

from tcul_helpers.method.assignment import assign_clusters
from tcul_helpers.method.center_update import update_centers
from tcul_helpers.data.readers import parse_market_name
from tcul_helpers.method.kmeans import kmeans_init
from tcul_helpers.method.triplet_loss import batch_hard_triplet_loss
from tcul_helpers.measurement.metrics import cluster_purity, clustering_scores, pairwise_precision
from tcul_helpers.training.models import build_model
from tcul_helpers.training.sampler import IdentitySampler, apply_singleton_rule
from tcul_helpers.method.selection import select_by_similarity, select_temporal
from tcul_helpers.teaching.session import LabSession


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="classroom")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lab = LabSession(args.profile, seed=args.seed, progress=False)
    out: dict = {}
    groups = defaultdict(list)
    for r in lab.target.train:
        groups[(r.pid, r.camid)].append(r.frame)
    same = np.array([abs(a - b) for fr in groups.values() for i, a in enumerate(fr)
                     for b in fr[i + 1:]])
    out["01 q2: same-person pairs within lambda_fr"] = {lam: float(np.mean(same <= lam))
                                                       for lam in (25, 100, 400)}
    n_src = lab.source.num_train_pids
    out["02 q1: parameters (M)"] = {
        a: sum(p.numel() for p in build_model(a, n_src, lab.cfg.embedding_dim).parameters()) / 1e6
        for a in ("compact", "resnet18", "resnet50")}
    z = lab.features()
    out["02 q2: silhouette"] = {"identity": float(silhouette_score(z, lab.truth)),
                                "camera": float(silhouette_score(z, lab.camids))}
    n = lab.target.num_train_pids
    out["03 q3: NMI / ARI by K"] = {
        k: clustering_scores(assign_clusters(z, kmeans_init(z, k, seed=0,
                                                            n_iter=lab.cfg.kmeans_iters)),
                             lab.truth)
        for k in (n // 2, n, 2 * n, 5 * n)}
    init = lab.initial_clustering()
    labels, centers = init["labels"], init["centers"]
    sim = select_by_similarity(z, labels, centers, lab.cfg.sim_threshold)
    out["04 q2/q4: similarity selection"] = {
        "kept": int(sim.sum()), "precision": pairwise_precision(labels, lab.truth, sim)}
    out["04 q2: temporal selection by lambda_fr"] = {}
    for lam in (0, 10, 25, 50, 100, 200, 400, 800, 1600, 10**7):
        kept = select_temporal(z, labels, centers, lab.camids, lab.frames, lam)
        out["04 q2: temporal selection by lambda_fr"][lam] = {
            "kept": int(kept.sum()), "precision": pairwise_precision(labels, lab.truth, kept)}
    kept = select_temporal(z, labels, centers, lab.camids, lab.frames, lab.cfg.lambda_fr)
    idx = np.flatnonzero(kept)
    idx = idx[apply_singleton_rule(labels[idx], lab.cfg.singletons)]
    sampler = IdentitySampler(labels[idx], P=lab.cfg.batch_ids, M=lab.cfg.batch_instances, seed=0)
    batch = idx[next(iter(sampler))]
    out["05 q2: active anchors by margin"] = {}
    for margin in (lab.cfg.margin, 2.0):
        _, mined = batch_hard_triplet_loss(torch.from_numpy(z[batch]),
                                           torch.from_numpy(labels[batch]), margin=margin,
                                           return_details=True)
        out["05 q2: active anchors by margin"][margin] = mined.active_fraction
    rng = np.random.default_rng(0)
    c0 = z[rng.choice(len(z), lab.cfg.n_clusters, replace=False)]
    out["06 q2: purity after 0-4 steps by lambda_c"] = {}
    for lam in (0.0, 0.25, 0.5, 0.75, 1.0):
        c, lab_k = c0.copy(), assign_clusters(z, c0)
        purity = [cluster_purity(lab_k, lab.truth)]
        for _ in range(4):
            c = update_centers(c, z, lab_k, lam, lab.cfg.beta)
            lab_k = assign_clusters(z, c)
            purity.append(cluster_purity(lab_k, lab.truth))
        out["06 q2: purity after 0-4 steps by lambda_c"][lam] = purity
    for v in ("tcul", "sul", "pul"):
        out[f"07 q2: {v} per iteration (reliable, precision, mAP)"] = [
            (it["n_reliable"], it.get("precision"), it.get("mAP"))
            for it in lab.history(v)["iterations"]]
    parts = np.array([parse_market_name(r.path) for r in lab.target.train])
    close = cross = 0
    for cam in np.unique(parts[:, 1]):
        seq, raw = parts[parts[:, 1] == cam, 2], parts[parts[:, 1] == cam, 3]
        near = np.triu(np.abs(raw[:, None] - raw[None]) <= lab.cfg.lambda_fr, k=1)
        close += int(near.sum())
        cross += int((near & (seq[:, None] != seq[None])).sum())
    out["08 q1: raw-counter pairs within lambda_fr, from other sequences"] = {
        "pairs": close, "from other sequences": cross, "share": cross / max(close, 1)}
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
