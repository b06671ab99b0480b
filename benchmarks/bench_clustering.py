"""Speed of the clustering stage against scikit-learn's KMeans, at Market-1501 training scale.

The clustering stage of TCUL (Algorithm 1, steps 2 and 3b-3e without the fine-tuning) is
    k-means init (step 2) + assignment (Eq. 1-2) + temporal selection (Eq. 3)
    + centre update (Eq. 6-7).
Targets (default scale: 12,936 x 2048 float32 features, K = 750, as Market-1501's
training split):
    * the whole stage is at least 5x faster than ``sklearn.cluster.KMeans(n_clusters=750)``
      with its defaults (``random_state=0`` for repeatability) fitted on the same features;
    * our k-means inertia is within 2% of scikit-learn's ``inertia_``.

The features are synthetic but shaped like re-id embeddings: ~751 identities of ~17
images, each identity a non-negative (post-ReLU) mean in 2048-d plus a per-camera offset
and per-image noise, then L2-normalised (``--raw`` keeps them un-normalised); camera ids
1..6 and frame ids with temporal structure (each identity passes each of its cameras in
one visit of 200 frames; some images come from a second visit thousands of
frames later, which Eq. 3 drops).

Run from the repository root when the CPU is quiet (scikit-learn alone takes about a
minute on 2 cores):
    .venv/bin/python benchmarks/bench_clustering.py            # Market-1501 scale
    .venv/bin/python benchmarks/bench_clustering.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcul_helpers.method.assignment import assign_clusters  # noqa: E402
from tcul_helpers.method.center_update import update_centers
from tcul_helpers.method.kmeans_engine import kmeans  # noqa: E402
from tcul_helpers.method.selection import select_temporal  # noqa: E402


def make_reid_like_features(
    n: int, dim: int, n_ids: int, n_cams: int = 6, seed: int = 0, noise: float = 0.8
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic re-id features: (features float32 N x dim, camids 1..n_cams, frames, pids)."""
    rng = np.random.default_rng(seed)
    sizes = np.full(n_ids, n // n_ids)
    sizes += rng.multinomial(n - sizes.sum(), np.full(n_ids, 1.0 / n_ids))
    pid = np.repeat(np.arange(n_ids), sizes)
    # each identity walks past 2..n_cams cameras; each image is taken by one of them
    cams_of = [rng.choice(n_cams, size=rng.integers(2, n_cams + 1), replace=False) for _ in
               range(n_ids)]
    camid = np.array([rng.choice(cams_of[p]) for p in pid]) + 1
    # one visit per (identity, camera): a start frame, images a few frames apart; 10% of the
    # images are from a second visit 1,000-20,000 frames later
    start = rng.integers(0, 200_000, size=(n_ids, n_cams + 1))
    frames = start[pid, camid] + rng.integers(0, 200, size=n)
    later = rng.random(n) < 0.10
    frames[later] += rng.integers(1_000, 20_000, size=int(later.sum()))

    mu = np.maximum(rng.standard_normal((n_ids, dim), dtype=np.float32), 0.0)
    offset = rng.normal(0.0, 0.3, size=(n_cams + 1, dim)).astype(np.float32)
    x = mu[pid] + offset[camid]
    x += noise * rng.standard_normal((n, dim), dtype=np.float32)
    np.maximum(x, 0.0, out=x)
    order = rng.permutation(n)
    return x[order], camid[order], frames[order].astype(np.int64), pid[order]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12_936, help="number of images")
    ap.add_argument("--dim", type=int, default=2048, help="feature dimension")
    ap.add_argument("--k", type=int, default=750, help="number of clusters K")
    ap.add_argument("--ids", type=int, default=751, help="number of true identities")
    ap.add_argument("--lambda-fr", type=float, default=100, help="frame window of Eq. 3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--raw", action="store_true", help="cluster un-normalised features")
    ap.add_argument("--quick", action="store_true", help="small scale (n=3000, K=170, ids=170)")
    args = ap.parse_args()
    if args.quick:
        args.n, args.k, args.ids = 3000, 170, 170
    torch.set_num_threads(args.threads)

    from sklearn.cluster import KMeans

    x, camids, frames, _ = make_reid_like_features(args.n, args.dim, args.ids, seed=args.seed)
    if not args.raw:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    kind = "raw" if args.raw else "L2-normalised"
    print(f"features {x.shape[0]} x {x.shape[1]} float32 ({kind}), K={args.k},"
          f" {args.ids} identities, cameras 1..6, threads={args.threads}")
    _ = x[:512] @ x[:512].T  # warm the BLAS up for both contenders

    t0 = time.perf_counter()
    km = kmeans(x, args.k, args.seed)  # what kmeans_init returns is km.centers
    t1 = time.perf_counter()
    t1_kmeans = t1 - t0
    labels = assign_clusters(x, km.centers)
    t2 = time.perf_counter()
    kept = select_temporal(x, labels, km.centers, camids, frames, args.lambda_fr)
    t3 = time.perf_counter()
    update_centers(km.centers, x, labels, lambda_c=0.5, beta=1e-6)
    t4 = time.perf_counter()
    ours = t4 - t0
    print(f"ours : k-means init {t1 - t0:6.2f} s ({km.n_iter} iterations)  assign {t2 - t1:5.2f} s"
          f"  temporal selection {t3 - t2:5.2f} s ({kept.sum()} of {len(kept)} kept)"
          f"  centre update {t4 - t3:5.2f} s  -> stage {ours:6.2f} s")

    t0 = time.perf_counter()
    sk = KMeans(n_clusters=args.k, random_state=args.seed).fit(x)
    sk_time = time.perf_counter() - t0
    print(f"sklearn KMeans(n_clusters={args.k}) fit: {sk_time:6.2f} s ({sk.n_iter_} iterations)")

    ratio = sk_time / ours
    gap = (km.inertia - sk.inertia_) / sk.inertia_
    ok_speed, ok_inertia = ratio >= 5.0, gap <= 0.02
    print(f"speed-up      : {ratio:6.1f}x  (target >= 5x)        {'PASS' if ok_speed else 'FAIL'}")
    print(f"inertia       : ours {km.inertia:.2f}  sklearn {sk.inertia_:.2f}  gap {gap:+.2%}"
          f"  (target <= +2%)  {'PASS' if ok_inertia else 'FAIL'}")
    _against_faiss(x, args, ours_kmeans=t1_kmeans, ours_inertia=km.inertia)


def _against_faiss(x: np.ndarray, args: argparse.Namespace, *, ours_kmeans: float,
                   ours_inertia: float) -> None:
    """faiss's k-means (its defaults: 25 iterations, one start) on the same features, when
    faiss is installed (``pip install faiss-cpu``; not a dependency of the kit)."""
    try:
        import faiss
    except ImportError:
        print("faiss         : not installed (pip install faiss-cpu to compare)")
        return
    faiss.omp_set_num_threads(args.threads)
    t0 = time.perf_counter()
    fk = faiss.Kmeans(x.shape[1], args.k, seed=args.seed)
    fk.train(np.ascontiguousarray(x, dtype=np.float32))
    fa_time = time.perf_counter() - t0
    dist, _ = fk.index.search(np.ascontiguousarray(x, dtype=np.float32), 1)  # squared L2
    fa_inertia = float(dist.sum(dtype=np.float64))
    print(f"faiss {faiss.__version__} Kmeans (defaults): {fa_time:6.2f} s, "
          f"inertia {fa_inertia:.2f}")
    print(f"against faiss : k-means time {ours_kmeans / fa_time:5.2f}x faiss's, inertia "
          f"{ours_inertia / fa_inertia:5.3f}x faiss's (information)")


if __name__ == "__main__":
    main()
