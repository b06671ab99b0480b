"""Recompute the run-dependent numbers quoted in answers.md for your profile and seed.

    .venv/bin/python notebooks/solutions/measure_answers.py [--profile classroom] [--seed 0]

Reads the cached runs of the kit's home ($TCUL_HOME, else the repository; `make prepare`
computes them) with the same code as the notebooks, and prints one JSON object keyed
"NN Predict k: ..." / "NN Ex k: ..." (notebook NN, the k-th Predict question or exercise k).
Nothing is trained except notebook 05's three short fine-tuning probes (about a minute on
the classroom profile), as the notebook does; a run missing from the home is computed first,
as in the notebooks (minutes: run `make prepare` before). ``--optional-runs`` also computes what two
optional exercises train (02 Ex 3: a source model with one more epoch; 07 Ex 2: TCUL with
lambda_c = 1, a few minutes on classroom) and keeps them in the kit's home.
"""

import argparse
import json
import warnings
from collections import defaultdict
from dataclasses import asdict
from itertools import pairwise

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, silhouette_score

from tcul_helpers.data.readers import parse_market_name
from tcul_helpers.data.records import camids_of, pids_of
from tcul_helpers.data.synthetic.presets import resolve_knobs
from tcul_helpers.experiment.demo import default_out
from tcul_helpers.experiment.report import PAPER_TABLE2, claims
from tcul_helpers.experiment.run_store import camera_pair_history, load_history, load_trace
from tcul_helpers.experiment.sweeps import default_dir, load_sweeps, sweep_plan
from tcul_helpers.figures.ranked_lists import ranked_lists
from tcul_helpers.figures.selection import selection_tradeoff
from tcul_helpers.figures.sweeps import live_sweeps
from tcul_helpers.measurement.evaluation import evaluate_model
from tcul_helpers.measurement.metrics import (
    camera_pair_scores,
    cluster_purity,
    clustering_scores,
    pairwise_precision,
)
from tcul_helpers.method.assignment import assign_clusters, similarity_to_own_center
from tcul_helpers.method.center_update import update_centers
from tcul_helpers.method.kmeans import kmeans_init
from tcul_helpers.method.selection import select_by_similarity, select_temporal, temporal_anchors
from tcul_helpers.method.triplet_loss import batch_hard_triplet_loss
from tcul_helpers.settings.config import VARIANT_NAMES, get_config
from tcul_helpers.teaching.finetune_probe import mined_distances, probe_finetune
from tcul_helpers.teaching.session import LabSession
from tcul_helpers.training.models import build_model
from tcul_helpers.training.sampler import IdentitySampler, apply_singleton_rule

VARIANTS = ("tcul", "sul", "pul")


def r4(x) -> float | None:
    """A float rounded for reading (None stays None)."""
    return None if x is None else round(float(x), 4)


def n_params(model) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 2)


def nb00(lab: LabSession, out: dict) -> None:
    keys = ["arch", "height", "width", "embedding_dim", "source_epochs", "n_iter", "n_clusters",
            "lambda_fr", "lambda_c", "target_epochs", "batch_ids", "batch_instances", "target"]
    out["00 Predict 2 and Ex 1: settings of the three profiles"] = {
        p: {k: getattr(get_config(p), k) for k in keys} for p in ("smoke", "classroom", "paper")}
    t = lab.target
    out["00 Ex 1: this profile's target world"] = {
        "train identities": t.num_train_pids, "train images": len(t.train),
        "cameras": len(np.unique(lab.camids))}


def nb01(lab: LabSession, out: dict) -> None:
    # the histogram cell: pairs inside one (camera, sequence), random pairs drawn there too
    rng = np.random.default_rng(0)
    groups, streams = defaultdict(list), defaultdict(list)
    for r in lab.target.train:
        groups[(r.pid, r.camid, r.sequence)].append(r.frame)
        streams[(r.camid, r.sequence)].append(r.frame)
    same = [abs(a - b) for fr in groups.values() for i, a in enumerate(fr) for b in fr[i + 1:]]
    rand = []
    for fr in streams.values():
        fr = np.asarray(fr)
        i, j = rng.integers(0, len(fr), (2, 2000))
        rand += list(np.abs(fr[i] - fr[j])[i != j])
    same, rand = np.asarray(same), np.asarray(rand)
    lam = lab.cfg.lambda_fr
    far = same > lam
    knobs = asdict(resolve_knobs("target", lab.cfg.world_scale))
    out["01 Predict 1: pairs within lambda_fr, same camera and sequence"] = {
        "lambda_fr": lam, "same-person pairs": len(same), "random pairs": len(rand),
        "same person within": r4(np.mean(~far)), "random within": r4(np.mean(rand <= lam)),
        "same person beyond": r4(np.mean(far)),
        "median gap beyond": r4(np.median(same[far])) if far.any() else None,
        "world knobs": {k: knobs[k] for k in ("dwell_frames", "transit_frames", "detect_every",
                                              "images_per_visit", "crowd_density",
                                              "reappear_prob", "reappear_gap",
                                              "sequences_per_camera")}}
    out["01 Ex 2: share within lambda_fr (same person, random)"] = {
        v: {"same person": r4(np.mean(same <= v)), "random": r4(np.mean(rand <= v))}
        for v in (25, lam, 400)}
    # the raw-counter cell
    parts = np.array([parse_market_name(r.path) for r in lab.target.train])  # pid, cam, seq, raw
    close = cross = 0
    for c in np.unique(parts[:, 1]):
        seq, raw = parts[parts[:, 1] == c, 2], parts[parts[:, 1] == c, 3]
        near = np.triu(np.abs(raw[:, None] - raw[None]) <= lam, k=1)
        close += int(near.sum())
        cross += int((near & (seq[:, None] != seq[None])).sum())
    out["01 Predict 2: raw-counter pairs within lambda_fr from other sequences"] = {
        "images": len(parts),
        "(camera, sequence) streams": len({(c, s) for c, s in parts[:, 1:3].tolist()}),
        "same-camera pairs within lambda_fr": close, "from other sequences": cross,
        "share": r4(cross / max(close, 1))}


def nb02(lab: LabSession, out: dict) -> None:
    out["02 Ex 1: parameters (millions)"] = {
        "resnet50, 702 classes, 2048-d": n_params(build_model("resnet50", num_classes=702,
                                                              embedding_dim=2048)),
        "resnet18, 702 classes, 2048-d": n_params(build_model("resnet18", num_classes=702,
                                                              embedding_dim=2048)),
        "compact, this profile": n_params(build_model("compact",
                                                      num_classes=lab.source.num_train_pids,
                                                      embedding_dim=lab.cfg.embedding_dim))}
    ranks = np.array([1, 10, 20, 30])
    out["02 Predict 1: AP of one query with hits at ranks 1, 10, 20, 30"] = r4(
        (np.arange(1, 5) / ranks).mean())
    model0 = lab.source_model()
    scores = {name: evaluate_model(model0, ds, lab.cfg, "cpu", progress=False)
              for name, ds in (("source", lab.source), ("target", lab.target))}
    out["02 Predict 2: f_theta0 on the source test split and on the target"] = {
        name: {m: r4(s[m]) for m in ("rank1", "rank5", "mAP")} for name, s in scores.items()}
    z = lab.features(model0)
    out["02 Predict 3: silhouette"] = {"identity": r4(silhouette_score(z, lab.truth)),
                                       "camera": r4(silhouette_score(z, lab.camids))}
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    nn = sim.argmax(1)
    cams, truth = np.asarray(lab.camids), np.asarray(lab.truth)
    same_cam = float((cams[nn] == cams).mean())
    chance = float(sum((cams == c).mean() ** 2 for c in np.unique(cams)))
    out["02 Predict 4: nearest neighbour under f_theta0"] = {
        "same camera": r4(same_cam), "same camera by chance": r4(chance),
        "times chance": r4(same_cam / max(chance, 1e-12)),
        "same person": r4((truth[nn] == truth).mean()),
        "another person, same camera": r4(((cams[nn] == cams) & (truth[nn] != truth)).mean())}
    q, g = lab.target.query, lab.target.gallery
    fq, fg = lab.features(model0, q), lab.features(model0, g)
    lists = ranked_lists(fq, fg, pids_of(q), pids_of(g), camids_of(q), camids_of(g),
                         list(range(len(q))), top=8)
    shown = [0, len(q) // 4, len(q) // 2, 3 * len(q) // 4]
    scored = [e for e in lists if e["ap"] is not None]
    hit_low = [e for e in scored if e["first_correct_rank"] == 1 and e["ap"] < 0.5]
    out["02 Ex 2: rank-1 hits with a low AP"] = {
        "default QUERIES (first correct rank, AP)": {
            e["query"]: (e["first_correct_rank"], r4(e["ap"])) for e in lists
            if e["query"] in shown},
        "queries scored": len(scored),
        "rank-1 hit": sum(e["first_correct_rank"] == 1 for e in scored),
        "rank-1 hit and AP < 0.5": len(hit_low),
        "examples (query, AP, correct images)": [(e["query"], r4(e["ap"]), e["n_relevant"])
                                                 for e in sorted(hit_low,
                                                                 key=lambda e: e["ap"])[:5]]}


def nb03(lab: LabSession, out: dict) -> None:
    z = lab.features()
    n = lab.target.num_train_pids
    table = {}
    for k in sorted({max(2, n // 2), n, min(len(z), 2 * n), min(len(z), 5 * n)}):
        c = kmeans_init(z, k, seed=0, n_iter=lab.cfg.kmeans_iters)
        table[k] = {m: r4(v) for m, v in
                    clustering_scores(assign_clusters(z, c), lab.truth).items()}
    big = min(len(z), 2 * n)
    out["03 Predict 1: NMI / ARI by K (K = identities / 2, identities, 2 x identities)"] = {
        "identities": n, **{k: v for k, v in table.items() if k <= big},
        f"change from K = {n} to K = {big}": {
            m: r4((table[big][m] - table[n][m]) / max(table[n][m], 1e-12)) for m in ("nmi", "ari")}}
    huge = min(len(z), 5 * n)
    out["03 Ex 3: NMI / ARI at K = 5 x identities"] = {
        huge: table[huge], f"change from K = {n}": {
            m: r4((table[huge][m] - table[n][m]) / max(table[n][m], 1e-12))
            for m in ("nmi", "ari")}}


def nb04(lab: LabSession, out: dict) -> None:
    init = lab.initial_clustering()
    z, centers, labels = init["features"], init["centers"], init["labels"]
    truth, cams, frames = lab.truth, lab.camids, lab.frames
    lam, thr = lab.cfg.lambda_fr, lab.cfg.sim_threshold
    sel = temporal_anchors(z, labels, centers, cams, frames, lam)
    out["04 Predict 1: (camera, cluster) groups and images Eq. 3 keeps"] = {
        "groups": int(sel.is_anchor.sum()), "kept": sel.n_kept, "images": len(labels)}

    def row(kept) -> dict:
        pairs = camera_pair_scores(labels, truth, cams, kept)
        return {"kept": int(kept.sum()), "precision": r4(pairwise_precision(labels, truth, kept)),
                "same-camera precision": r4(pairs["precision_same_camera"]),
                "cross-camera pairs": int(pairs["pairs_cross_camera"]),
                "cross-camera precision": r4(pairs["precision_cross_camera"]),
                "cameras per pseudo-id": r4(pairs["cameras_per_pseudo_id"])}

    table = {f"temporal, lambda_fr={v}": row(temporal_anchors(z, labels, centers, cams, frames,
                                                              v).kept)
             for v in (0, lam // 4, lam, 4 * lam)}
    table.update({f"similarity > {t}": row(select_by_similarity(z, labels, centers, t))
                  for t in (0.5, 0.7, thr)})
    table["none"] = row(np.ones(len(labels), dtype=bool))
    out["04 Predict 2: selection table"] = table

    kept = {"temporal": sel.kept, "similarity": select_by_similarity(z, labels, centers, thr)}
    own = similarity_to_own_center(z, labels, centers)
    as_many = np.zeros(len(z), dtype=bool)
    as_many[np.argsort(-own, kind="stable")[:sel.n_kept]] = True

    def nearest_negative(keep) -> np.ndarray:
        idx = np.flatnonzero(keep)
        s = z[idx] @ z[idx].T
        s[labels[idx][:, None] == labels[idx][None, :]] = -np.inf
        d = 1 - s.max(1)
        return d[np.isfinite(d)]

    out["04 Predict 3: median cosine distance to the closest kept image of another label"] = {
        name: r4(np.median(nearest_negative(k)))
        for name, k in {**kept, "similarity, as many as Eq. 3": as_many}.items()}

    lambdas = sorted({0, 5, 10, 25, 50, lam // 2, lam, 2 * lam, 4 * lam, 10 * lam, 10**7})
    curves = selection_tradeoff(z, labels, centers, cams, frames, truth, lambdas, [thr])
    t, s = curves["temporal"], curves["similarity"]
    s_prec = float(s["precision"][0])
    cols = ("value", "kept", "precision", "recall")
    below = [int(v) for v, p in zip(t["value"], t["precision"], strict=True) if p < s_prec]
    out["04 Ex 3: Eq. 3 precision by lambda_fr against similarity > threshold"] = {
        "similarity": {"threshold": thr, "kept": int(s["kept"][0]), "precision": r4(s_prec),
                       "kept-pair recall": r4(s["recall"][0])},
        "temporal": {int(v): {"kept": int(k), "precision": r4(p), "kept-pair recall": r4(rc)}
                     for v, k, p, rc in zip(*(t[k] for k in cols), strict=True)},
        "lambda_fr where temporal precision is below": below}
    out["04 Ex 4: images kept, similarity > threshold against Eq. 3"] = {
        f"similarity > {thr}": int(kept["similarity"].sum()), f"Eq. 3, lambda_fr = {lam}":
            sel.n_kept}


def nb05(lab: LabSession, out: dict) -> None:
    steps = 6 if lab.cfg.profile == "smoke" else 60
    init = lab.initial_clustering()
    labels, z0, c0 = init["labels"], init["features"], init["centers"]
    truth = lab.truth
    kept = select_temporal(z0, labels, c0, lab.camids, lab.frames, lab.cfg.lambda_fr)
    idx = np.flatnonzero(kept)
    sizes = np.bincount(labels[idx])
    out["05 Ex 4: single-image pseudo-identities in the temporal set"] = {
        "pseudo-ids": int((sizes > 0).sum()), "with one image": int((sizes == 1).sum())}
    idx = idx[apply_singleton_rule(labels[idx], lab.cfg.singletons)]
    sampler = IdentitySampler(labels[idx], P=lab.cfg.batch_ids, M=lab.cfg.batch_instances, seed=0)
    batch = idx[next(iter(sampler))]
    active = {}
    for margin in (lab.cfg.margin, 2.0):
        loss, mined = batch_hard_triplet_loss(torch.from_numpy(z0[batch]),
                                              torch.from_numpy(labels[batch]), margin=margin,
                                              return_details=True)
        active[margin] = {"loss": r4(loss.item()), "active anchors": r4(mined.active_fraction),
                          "mean d_an - d_ap": r4((mined.d_an - mined.d_ap).mean().item())}
    out["05 Ex 3: first batch by margin"] = active

    model0 = lab.source_model()
    selections = {
        "temporal": kept,
        "similarity": select_by_similarity(z0, labels, c0, lab.cfg.sim_threshold),
        "none": np.ones(len(labels), dtype=bool)}
    probes, reliable = {}, {}
    for method, keep in selections.items():
        reliable[method] = np.flatnonzero(keep)
        recs = [lab.target.train[i] for i in reliable[method]]
        probes[method] = probe_finetune(model0, recs, labels[reliable[method]],
                                        truth[reliable[method]], lab.cfg, steps=steps,
                                        seed=lab.cfg.seed, progress=False)

    def early_late(values) -> tuple[float, float]:
        n = max(1, len(values) // 4)
        return r4(np.nanmean(values[:n])), r4(np.nanmean(values[-n:]))

    base = evaluate_model(model0, lab.target, lab.cfg, "cpu", progress=False)
    table = {"f_theta0": {"rank1": r4(base["rank1"]), "mAP": r4(base["mAP"])}}
    for m, res in probes.items():
        after = evaluate_model(res.model, lab.target, lab.cfg, "cpu", progress=False)
        table[m] = {
            "images": res.num_images, "pseudo-ids": res.num_ids,
            "precision": r4(pairwise_precision(labels[reliable[m]], truth[reliable[m]])),
            "wrong positive (first / last quarter)": early_late(res.wrong_positive),
            "wrong positive (all steps)": r4(np.nanmean(res.wrong_positive)),
            "wrong negative": r4(np.nanmean(res.wrong_negative)),
            "loss (first / last quarter)": early_late(res.loss),
            "rank1 after": r4(after["rank1"]), "mAP after": r4(after["mAP"])}
    out[f"05 Predict 1 and Ex 2: {steps} fine-tuning steps on each selection"] = table

    idx_t = reliable["temporal"]
    recs_t = [lab.target.train[i] for i in idx_t]
    dist = {}
    for when, model in (("before", model0), ("after", probes["temporal"].model)):
        d = mined_distances(model, recs_t, labels[idx_t], lab.cfg, true_ids=truth[idx_t])
        s = d["positive_is_same"]
        dist[when] = {"d(a,p*) same person": r4(d["d_ap"][s].mean()),
                      "d(a,p*) another person": r4(d["d_ap"][~s].mean()),
                      "d(a,p*) all": r4(d["d_ap"].mean()), "d(a,n*)": r4(d["d_an"].mean()),
                      "hardest positive is another person": r4(1 - s.mean())}
    for v in dist.values():
        v["gap d(a,n*) - d(a,p*) all"] = r4(v["d(a,n*)"] - v["d(a,p*) all"])
        v["gap over same-person positives"] = r4(v["d(a,n*)"] - v["d(a,p*) same person"])
        v["wrong minus right positive"] = r4(v["d(a,p*) another person"]
                                             - v["d(a,p*) same person"])
    dist["moved"] = {"positive": r4(dist["after"]["d(a,p*) all"] - dist["before"]["d(a,p*) all"]),
                     "negative": r4(dist["after"]["d(a,n*)"] - dist["before"]["d(a,n*)"])}
    out[f"05 Predict 2: mined distances before / after {steps} steps (temporal set)"] = dist


def nb06(lab: LabSession, out: dict) -> None:
    z = lab.features()
    rng = np.random.default_rng(0)
    c0 = z[rng.choice(len(z), lab.cfg.n_clusters, replace=False)]
    x, c0 = np.asarray(z, dtype=np.float64), np.asarray(c0, dtype=np.float64)  # as the explorer
    truth, labels0 = lab.truth, assign_clusters(x, c0)
    purity = {}
    for lam in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
        c, lab_k = c0, labels0
        p = [cluster_purity(lab_k, truth)]
        for _ in range(4):
            c = update_centers(c, x, lab_k, lam, 1e-6)  # the explorer's default beta
            lab_k = assign_clusters(x, c)
            p.append(cluster_purity(lab_k, truth))
        purity[lam] = [r4(v) for v in p]
    out["06 Predict 1: purity after 0-4 steps by lambda_c (random start, fixed features)"] = purity

    def stability(tr) -> list[float]:
        steps = sorted(int(k.split("_")[1]) for k in tr if k.startswith("labels_"))
        return [r4(adjusted_rand_score(tr[f"labels_{a}"], tr[f"labels_{b}"]))
                for a, b in pairwise(steps)]

    ari = {"TCUL": stability(lab.trace("tcul")), "PUL-style": stability(lab.trace("pul"))}
    out["06 Predict 2: ARI between consecutive iterations"] = {
        name: {"ARI": v, "mean": r4(np.mean(v))} for name, v in ari.items()}


def variant_summary(history: dict) -> dict:
    its = history["iterations"]
    n = [it["n_reliable"] for it in its]
    return {"reliable": n, "grew every iteration": all(b > a for a, b in pairwise(n)),
            "precision": [r4(it.get("precision")) for it in its],
            "baseline rank1 / mAP": (r4(history["baseline"]["rank1"]),
                                     r4(history["baseline"]["mAP"])),
            "rank1": [r4(it.get("rank1")) for it in its], "mAP": [r4(it.get("mAP")) for it in its]}


def nb07(lab: LabSession, out: dict) -> None:
    histories = {v: lab.history(v) for v in VARIANTS}
    # the student's loop, completed with the solutions, gives the kit's TCUL labels: its
    # numbers are the kit's run
    out["07 Predict 1: the loop (the kit's TCUL run)"] = variant_summary(histories["tcul"])
    final = sorted(histories, key=lambda v: -histories[v]["iterations"][-1]["mAP"])
    out["07 Predict 2: the three variants"] = {
        **{VARIANT_NAMES[v]: variant_summary(h) for v, h in histories.items()},
        "final mAP order": [VARIANT_NAMES[v] for v in final]}


def nb08(lab: LabSession, out: dict) -> None:
    plan = sweep_plan(lab.cfg, lab.target)
    init = lab.initial_clustering()
    n_ids = lab.target.num_train_pids
    live = live_sweeps(init["features"], lab.camids, lab.frames, lab.truth,
                       lambdas=plan["lambda_fr"]["values"], ks=plan["n_clusters"]["values"],
                       k=lab.cfg.n_clusters, lambda_fr=lab.cfg.lambda_fr, seed=lab.cfg.seed,
                       kmeans_iters=lab.cfg.kmeans_iters)
    out["08 Predict 1: first pseudo-labels by lambda_fr and by K (no training)"] = {
        "identities": n_ids,
        "by lambda_fr": {int(r["lambda_fr"]): {"kept": int(r["kept"]),
                                               **{k: r4(r[k]) for k in ("precision", "recall")}}
                         for r in live["by_lambda"]},
        "by K": {r["K"]: {"kept": int(r["kept"]),
                          **{k: r4(r[k]) for k in ("nmi", "ari", "precision", "recall",
                                                   "kept_precision")}}
                 for r in live["by_k"]}}
    sweeps = load_sweeps(default_dir(lab.cfg, lab.runs_dir), lab.cfg)

    def last(p, key):
        v = p.get(key)
        return r4(v[-1] if isinstance(v, list) and v else v) if v is not None else None

    def point(p) -> dict:
        pairs = p.get("camera_pairs") or {}
        return {"mAP": r4(p.get("mAP")), "rank1": r4(p.get("rank1")),
                "final precision": last(p, "precision"), "final reliable": last(p, "n_reliable"),
                "final cross-camera precision": r4(pairs.get("precision_cross_camera")),
                "final cameras per pseudo-id": r4(pairs.get("cameras_per_pseudo_id"))}

    fig4 = {name: {int(p["value"]): point(p) for p in sweeps.get(name, [])
                   if p.get("variant") == "tcul"}
            for name in ("lambda_fr", "n_clusters")}
    fig4["baseline mAP"] = r4(lab.history("tcul")["baseline"]["mAP"])
    out["08 Predict 2: Fig. 4, final mAP of whole TCUL runs"] = fig4
    half = max(2, int(round(0.5 * n_ids)))
    out["08 Ex 2: K = half the identities"] = {
        "K": half, "first labels": next(({k: r4(r[k]) for k in ("precision", "recall", "nmi",
                                                                 "kept_precision")}
                                         for r in live["by_k"] if r["K"] == half), None),
        "whole run": fig4["n_clusters"].get(half),
        "whole run at K = identities": fig4["n_clusters"].get(n_ids)}


def nb09(lab: LabSession, out: dict) -> None:
    rows = {}
    for v in VARIANTS:
        h = lab.history(v)
        rows.setdefault("baseline", h["baseline"])
        rows[VARIANT_NAMES[v]] = h["iterations"][-1]
    kit = {k: {m: r4(r.get(m)) for m in ("rank1", "rank5", "mAP")} for k, r in rows.items()}
    paper_map = {VARIANT_NAMES[m]: PAPER_TABLE2[m]["Duke->Market"][2]
                 for m in ("baseline", "pul", "sul", "tcul")}
    order = sorted(kit, key=lambda k: -kit[k]["mAP"])  # the baseline included
    out["09 Predict 1: Table 2 on this world (last iteration)"] = {
        "kit": kit, "order": order,
        "gaps down the order": {f"{a} - {b}": r4(kit[a]["mAP"] - kit[b]["mAP"])
                                for a, b in pairwise(order)},
        "gain over baseline, kit": {k: r4(kit[k]["mAP"] - kit["baseline"]["mAP"])
                                    for k in order if k != "baseline"},
        "gain over baseline, paper": {k: r4(paper_map[k] - paper_map["baseline"])
                                      for k in order if k != "baseline"},
        "TCUL - SUL, kit / paper": (r4(kit["TCUL"]["mAP"] - kit["SUL"]["mAP"]),
                                    r4(paper_map["TCUL"] - paper_map["SUL"]))}
    path = default_out(lab.cfg, lab.runs_dir) / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else None
    starts = {}
    for name, s in ((results or {}).get("starts") or {}).items():
        m = {k: r4((s.get("methods") or {}).get(k, {}).get("mAP"))
             for k in ("baseline", *VARIANTS)}
        ranked = sorted((k for k in m if m[k] is not None), key=lambda k: -m[k])
        starts[name] = {"mAP": {VARIANT_NAMES[k]: v for k, v in m.items()},
                        "order": [VARIANT_NAMES[k] for k in ranked]}
    out["09 Predict 2: the two starts of f_theta0"] = starts or "not computed (`make prepare`)"
    out["09 Ex 1: the claims as the notebook prints them"] = (
        claims(results) if results is not None else "not computed (`make prepare`)")
    pairs = {}
    for v in ("tcul", "sul"):
        hist = camera_pair_history(lab.run_dir(v), lab.target)
        pairs[VARIANT_NAMES[v]] = {k: r4(hist[-1][k]) for k in (
            "pairs_same_camera", "precision_same_camera", "pairs_cross_camera",
            "precision_cross_camera", "cameras_per_pseudo_id")} if hist else None
    out["09 Discussion: kept pairs by camera, last iteration"] = pairs


def optional_runs(lab: LabSession, out: dict) -> None:
    more = LabSession(lab.cfg.profile, seed=lab.cfg.seed, progress=False,
                      source_epochs=lab.cfg.source_epochs + 1)
    out["02 Ex 3: f_theta0 with one more source epoch"] = {
        f"{epochs} epochs": {name: {m: r4(s[m]) for m in ("rank1", "mAP")} for name, s in (
            (n, evaluate_model(session.source_model(), ds, lab.cfg, "cpu", progress=False))
            for n, ds in (("source", session.source), ("target", session.target)))}
        for epochs, session in ((lab.cfg.source_epochs, lab),
                                (lab.cfg.source_epochs + 1, more))}
    jump = lab.run("tcul", lambda_c=1.0)
    tr = load_trace(jump.run_dir)
    steps = sorted(int(k.split("_")[1]) for k in tr if k.startswith("labels_"))
    out["07 Ex 2: TCUL with lambda_c = 1"] = {
        **variant_summary(load_history(jump.run_dir)),
        "ARI between consecutive iterations": [
            r4(adjusted_rand_score(tr[f"labels_{a}"], tr[f"labels_{b}"]))
            for a, b in pairwise(steps)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="classroom")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--optional-runs", action="store_true",
                    help="also train what 02 Ex 3 and 07 Ex 2 ask for (minutes; kept in the home)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    lab = LabSession(args.profile, seed=args.seed, progress=False)
    out: dict = {}
    for part in (nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09):
        part(lab, out)
    if args.optional_runs:
        optional_runs(lab, out)
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
