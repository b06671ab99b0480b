"""Re-id evaluation: CMC and mAP under the Market-1501 / DukeMTMC-reID single-query protocol.

The paper reports rank-1, rank-5 and mAP "following Zheng et al.", single query
(Sec. 4.1). The kit's reading (method-notes.md, "Evaluation protocol"):

* for every query, the gallery images with the **same pid and the same camera** are removed,
  and so are junk images (pid ``-1``) if the gallery holds any;
* a query with no true match left is **skipped** (it counts neither in CMC nor in mAP);
* CMC rank-k = fraction of the remaining queries whose first true match is in the top k;
* AP = **non-interpolated** average precision over the ranked list: the mean, over the true
  matches, of the precision at each true match's rank, ``AP = (1/m) sum_i i / r_i`` with
  ``r_1 < ... < r_m`` the 1-based ranks of the m true matches (the official Market-1501
  MATLAB code averages with the trapezoid rule instead, which gives slightly different
  values: README, "Evaluation protocol"). sklearn's ``average_precision_score`` gives the same
  value when no two distances tie (``tests/test_evaluation.py`` checks it); with ties,
  sklearn scores a tied group together, the kit breaks the tie by gallery index;
* mAP = mean AP over the queries that were not skipped.

Distractors (pid ``0`` in Market-1501) get no special treatment: no Market query has pid 0,
so they never match and only push true matches down the list. (MSMT17 uses pid 0 for a real
person, which is why 0 cannot be treated as "never matches".)

Ties in distance are broken by gallery index (a stable sort). Two implementations give the
same numbers (to 1e-12 in practice):

* :func:`evaluate_reference`: the readable per-query loop (argsort one row, mask, cumsum),
  the specification the tests hold :func:`evaluate` to;
* :func:`evaluate`: the same protocol over blocks of queries, for the Market-1501 test set
  (3,368 x 15,913) evaluated every iteration. A gallery entry farther than the query's
  farthest true match changes no rank, so each row sorts only the distances no farther
  than that, and a true match's rank is the count of those below it (plus the tied ones of
  lower gallery index); ``benchmarks/bench_evaluation.py`` times it against the loop.

:func:`evaluate_features` works from features, computing distances for a chunk of queries at
a time, so the full query x gallery matrix is never held (MSMT17 scale fits in a few GiB).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import numpy as np

from ..infra.array_checks import to_numpy
from ..infra.errors import TCULError
from ..infra.progress import tqdm

#: Distance metrics understood by :func:`pairwise_distances` and :func:`evaluate_features`.
METRICS = ("euclidean", "cosine")
#: Gallery pid of junk images (removed from every ranked list).
JUNK_PID = -1
#: Distances handled by one worker block of :func:`evaluate` (~16 MB of float32).
BLOCK_ELEMENTS = 1 << 22
#: Distances computed at once by :func:`evaluate_features` (~128 MB of float32).
FEATURE_CHUNK_ELEMENTS = 1 << 25

_NO_MATCH = "no query has a cross-camera true match in the gallery: check pids/camids"


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------
def _as_distmat(distmat: Any) -> np.ndarray:
    d = to_numpy(distmat, "distmat")
    if d.ndim != 2:
        raise TCULError(
            f"distmat must be 2-D (queries x gallery), got shape {d.shape}: "
            "pass the query-by-gallery distance matrix"
        )
    if d.shape[0] == 0:
        raise TCULError("empty query set (distmat has 0 rows): pass at least one query")
    if d.shape[1] == 0:
        raise TCULError("empty gallery (distmat has 0 columns): pass at least one gallery image")
    if d.dtype == np.float32:
        return d
    if d.dtype == np.float16:
        return d.astype(np.float32)
    if d.dtype.kind in "fiu":
        return d.astype(np.float64)
    raise TCULError(f"distmat has dtype {d.dtype}: pass real-valued distances (float32 or float64)")


def _as_ids(x: Any, name: str, n: int, what: str) -> np.ndarray:
    a = to_numpy(x, name)
    if a.ndim != 1:
        raise TCULError(f"{name} must be 1-D, got shape {a.shape}: pass one value per {what}")
    if a.shape[0] != n:
        raise TCULError(
            f"{name} has {a.shape[0]} entries but there are {n} {what}s: pass one per {what}"
        )
    if a.dtype.kind in "iu":
        return a.astype(np.int64, copy=False)
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a.astype(np.int64)
    raise TCULError(f"{name} must hold integers, got dtype {a.dtype}: pass integer pids/camids")


def _is_count(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 1


def _check_max_rank(max_rank: Any) -> int:
    if not _is_count(max_rank):
        raise TCULError(f"max_rank must be an integer >= 1, got {max_rank!r}: use e.g. max_rank=50")
    return int(max_rank)


def _check_ids(
    nq: int, ng: int, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        _as_ids(q_pids, "q_pids", nq, "query"),
        _as_ids(g_pids, "g_pids", ng, "gallery image"),
        _as_ids(q_camids, "q_camids", nq, "query"),
        _as_ids(g_camids, "g_camids", ng, "gallery image"),
    )


def _raise_if_nan(d: np.ndarray, what: str = "distmat") -> None:
    # A sum is NaN iff an entry is NaN or +inf and -inf both occur: confirm before raising.
    with np.errstate(invalid="ignore"):
        total = d.sum()
    if np.isnan(total) and np.isnan(d).any():
        raise TCULError(f"{what} contains NaN: check the features and the distance computation")


def _num_threads(num_threads: int | None) -> int:
    if num_threads is None:
        return max(1, min(4, os.cpu_count() or 1))
    if not _is_count(num_threads):
        raise TCULError(f"num_threads must be an integer >= 1 or None, got {num_threads!r}")
    return num_threads


def _check_chunk(chunk_size: Any) -> None:
    if chunk_size is None:
        return
    if not _is_count(chunk_size):
        raise TCULError(f"chunk_size must be an integer >= 1 or None, got {chunk_size!r}")


# --------------------------------------------------------------------------------------
# ranking, vectorised over blocks of queries
# --------------------------------------------------------------------------------------
def _rank_block(
    dist: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """First-match rank (0-based, -1 = skipped) and AP of every query row of ``dist``.

    A gallery entry farther than the query's farthest true match changes no rank, so each
    row sorts only the kept distances no farther than that, and a true match's rank is the
    count of kept distances below it, plus the tied ones of lower gallery index.
    """
    _raise_if_nan(dist)
    nq, ng = dist.shape
    junk = g_pids == JUNK_PID
    rows, cols = np.divmod(np.flatnonzero(g_pids == q_pids[:, None]), ng)  # same pid
    own_cam = g_camids[cols] == q_camids[rows]
    is_match = ~own_cam & ~junk[cols]
    m_rows, m_cols = rows[is_match], cols[is_match]  # true matches, row by row
    first = np.full(nq, -1, dtype=np.int64)
    ap = np.full(nq, np.nan)
    if m_rows.size == 0:
        return first, ap
    m_vals = dist[m_rows, m_cols]
    n_match = np.bincount(m_rows, minlength=nq)
    m_end = np.cumsum(n_match)
    has = np.flatnonzero(n_match)
    t_max = np.full(nq, np.nan, dtype=dist.dtype)  # NaN: no true match, nothing kept
    t_max[has] = np.maximum.reduceat(m_vals, m_end[has] - n_match[has])
    kept = dist <= t_max[:, None]
    kept[rows[own_cam], cols[own_cam]] = False  # same pid and same camera: removed
    if junk.any():
        kept &= ~junk
    vals = dist.compress(kept.ravel())  # row by row: each row's kept distances, in turn
    n_kept = np.count_nonzero(kept, axis=1)
    k_end = np.cumsum(n_kept)
    for r in has:
        row = vals[k_end[r] - n_kept[r] : k_end[r]]
        row.sort()
        a, b = m_end[r] - n_match[r], m_end[r]
        rank = row.searchsorted(m_vals[a:b], side="left")
        n_equal = row.searchsorted(m_vals[a:b], side="right") - rank
        for k in np.flatnonzero(n_equal > 1):  # tied: lower gallery index first
            c, v = m_cols[a + k], m_vals[a + k]
            rank[k] += np.count_nonzero(kept[r, :c] & (dist[r, :c] == v))
        rank.sort()
        first[r] = rank[0]
        ap[r] = np.mean(np.arange(1, b - a + 1) / (rank + 1.0))  # AP = (1/m) sum_i i / r_i
    return first, ap


def _blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for s in range(0, n, size):
        yield s, min(n, s + size)


def _rank_rows(
    dist: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    block_rows: int,
    pool: ThreadPoolExecutor | None,
    bar: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank all rows of ``dist`` in blocks of ``block_rows`` (in ``pool``'s threads if given)."""
    spans = list(_blocks(dist.shape[0], block_rows))

    def work(span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        s, e = span
        return _rank_block(dist[s:e], q_pids[s:e], q_camids[s:e], g_pids, g_camids)

    results = pool.map(work, spans) if pool is not None and len(spans) > 1 else map(work, spans)
    first = np.empty(dist.shape[0], dtype=np.int64)
    ap = np.empty(dist.shape[0])
    for (s, e), (f, a) in zip(spans, results, strict=True):
        first[s:e], ap[s:e] = f, a
        if bar is not None:
            bar.update(e - s)
    return first, ap


def _cmc_map(first: np.ndarray, ap: np.ndarray, max_rank: int) -> tuple[np.ndarray, float]:
    valid = first >= 0
    if not valid.any():
        raise TCULError(_NO_MATCH)
    ranks = first[valid]
    hist = np.bincount(ranks[ranks < max_rank], minlength=max_rank)
    cmc = np.cumsum(hist) / float(valid.sum())
    return cmc, float(np.mean(ap[valid]))


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def evaluate(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    chunk_size: int | None = None,
    num_threads: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, float]:
    """CMC curve and mAP of a query x gallery distance matrix (single-query protocol).

    Same pid and same camera gallery entries are removed per query, junk (pid -1) everywhere;
    queries left without a true match are skipped. ``cmc[k-1]`` is the fraction of the
    remaining queries whose first true match has rank <= k, for k = 1..max_rank; when k
    exceeds a query's list length it counts as found (the list's last CMC value, 1), so
    ``cmc`` always has length ``max_rank``. mAP is the mean non-interpolated AP,
    ``AP = (1/m) sum_i i / r_i``. Ties: stable, by gallery index. Vectorised; the numbers
    equal :func:`evaluate_reference`'s.

    Args:
        distmat: (num_query, num_gallery) distances, numpy or torch (float32 is fastest).
        q_pids, g_pids, q_camids, g_camids: integer identity and camera labels.
        max_rank: length of the returned CMC curve.
        chunk_size: query rows per worker block (default: ~4M distances per block).
        num_threads: worker threads (default: CPU count, at most 4).
        progress: show a tqdm progress bar.

    Returns:
        ``(cmc, mAP)``: float64 array of length ``max_rank`` and a float, both in [0, 1].
    """
    dist = _as_distmat(distmat)
    nq, ng = dist.shape
    qp, gp, qc, gc = _check_ids(nq, ng, q_pids, g_pids, q_camids, g_camids)
    max_rank = _check_max_rank(max_rank)
    _check_chunk(chunk_size)
    threads = _num_threads(num_threads)
    block_rows = int(chunk_size) if chunk_size else max(1, BLOCK_ELEMENTS // ng)
    n_blocks = -(-nq // block_rows)
    with (
        ThreadPoolExecutor(threads) if threads > 1 and n_blocks > 1 else nullcontext() as pool,
        tqdm(total=nq, desc="evaluate", unit="query", disable=not progress or n_blocks < 2) as bar,
    ):
        first, ap = _rank_rows(dist, qp, qc, gp, gc, block_rows, pool, bar)
    return _cmc_map(first, ap, max_rank)


def evaluate_reference(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    progress: bool = True,
) -> tuple[np.ndarray, float]:
    """The per-query loop of the public Market-1501 code: the readable version of :func:`evaluate`.

    For each query: sort its row (stable, ties by gallery index), drop same pid & same camera
    entries and junk (pid -1), mark true matches; skip the query if none is left; CMC of the
    query = 1 from its first true match on (padded with its last value to ``max_rank``);
    AP = mean of precision@rank over the true-match positions (non-interpolated).
    """
    dist = _as_distmat(distmat)
    nq, ng = dist.shape
    qp, gp, qc, gc = _check_ids(nq, ng, q_pids, g_pids, q_camids, g_camids)
    max_rank = _check_max_rank(max_rank)
    _raise_if_nan(dist)
    all_cmc: list[np.ndarray] = []
    all_ap: list[float] = []
    for q in tqdm(range(nq), desc="evaluate (reference)", unit="query", disable=not progress):
        order = np.argsort(dist[q], kind="stable")
        pids, cams = gp[order], gc[order]
        keep = (pids != JUNK_PID) & ~((pids == qp[q]) & (cams == qc[q]))
        matches = (pids[keep] == qp[q]).astype(np.int64)
        if not matches.any():
            continue  # no cross-camera true match: skipped
        cmc = matches.cumsum()
        cmc[cmc > 1] = 1
        if cmc.size < max_rank:
            cmc = np.concatenate([cmc, np.full(max_rank - cmc.size, cmc[-1])])
        all_cmc.append(cmc[:max_rank])
        precision = matches.cumsum() / np.arange(1, matches.size + 1)
        all_ap.append(float((precision * matches).sum() / matches.sum()))
    if not all_cmc:
        raise TCULError(_NO_MATCH)
    cmc_all = np.asarray(all_cmc, dtype=np.float64).sum(axis=0) / len(all_cmc)
    return cmc_all, float(np.mean(all_ap))


def _as_features(x: Any, name: str) -> np.ndarray:
    f = to_numpy(x, name)
    if f.ndim != 2:
        raise TCULError(
            f"{name} must be 2-D (images x dims), got shape {f.shape}: stack the features"
        )
    if f.shape[0] == 0:
        raise TCULError(f"{name} is empty (0 images): pass at least one feature vector")
    if f.dtype.kind not in "fiu":
        raise TCULError(f"{name} has dtype {f.dtype}: pass real-valued features")
    f = f.astype(np.float32, copy=False)
    for s, e in _blocks(f.shape[0], 8192):  # chunked: no full-size temporary
        if not np.isfinite(f[s:e]).all():
            raise TCULError(f"{name} contains NaN or inf: check the feature extractor's output")
    return f


def _check_pair(q: np.ndarray, g: np.ndarray, metric: str) -> None:
    if q.shape[1] != g.shape[1]:
        raise TCULError(
            f"q_feats has {q.shape[1]} dims but g_feats has {g.shape[1]}: "
            "extract both with the same model"
        )
    if metric not in METRICS:
        raise TCULError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")


def _row_terms(f: np.ndarray, metric: str) -> np.ndarray:
    """Per-row term of a metric: squared norm (euclidean) or inverse norm (cosine)."""
    sq = np.einsum("ij,ij->i", f, f, dtype=np.float64)
    if metric == "euclidean":
        return sq.astype(np.float32)
    return (1.0 / np.maximum(np.sqrt(sq), 1e-12)).astype(np.float32)


def _distance_block(
    q: np.ndarray, g: np.ndarray, q_term: np.ndarray, g_term: np.ndarray, metric: str
) -> np.ndarray:
    """Distances of the query rows ``q`` to all of ``g`` (float32)."""
    d = q @ g.T
    if metric == "euclidean":  # sqrt(|q|^2 + |g|^2 - 2 q.g), clamped at 0
        d *= np.float32(-2.0)
        d += q_term[:, None]
        d += g_term[None, :]
        np.maximum(d, np.float32(0.0), out=d)
        np.sqrt(d, out=d)
    else:  # 1 - cos(q, g)
        d *= q_term[:, None]
        d *= g_term[None, :]
        np.subtract(np.float32(1.0), d, out=d)
    return d


def pairwise_distances(
    q_feats: Any, g_feats: Any, metric: str = "euclidean", *, chunk_size: int | None = None
) -> np.ndarray:
    """Full (num_query, num_gallery) float32 distance matrix between two feature sets.

    ``euclidean``: ``||q - g||_2`` (via ``|q|^2 + |g|^2 - 2 q.g``, clamped at 0);
    ``cosine``: ``1 - cos(q, g)`` (a zero vector has cosine 0 with everything).
    Features are used in float32. Computed ``chunk_size`` query rows at a time.
    """
    q = _as_features(q_feats, "q_feats")
    g = _as_features(g_feats, "g_feats")
    _check_pair(q, g, metric)
    _check_chunk(chunk_size)
    rows = int(chunk_size) if chunk_size else max(1, FEATURE_CHUNK_ELEMENTS // g.shape[0])
    q_term, g_term = _row_terms(q, metric), _row_terms(g, metric)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    for s, e in _blocks(q.shape[0], rows):
        out[s:e] = _distance_block(q[s:e], g, q_term[s:e], g_term, metric)
    return out


def evaluate_features(
    q_feats: Any,
    g_feats: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    metric: str = "euclidean",
    chunk_size: int | None = None,
    *,
    num_threads: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, float]:
    """CMC and mAP from features, as :func:`evaluate` of :func:`pairwise_distances`, chunked.

    Distances are computed for ``chunk_size`` queries at a time (default: ~32M distances,
    128 MB) and ranked at once, so the full matrix is never held: at MSMT17 scale
    (11,659 x 82,161, 2048-d) the memory beyond the features themselves is a few hundred MB.
    Features are used in float32 (a float64 input is copied to float32).
    """
    q = _as_features(q_feats, "q_feats")
    g = _as_features(g_feats, "g_feats")
    _check_pair(q, g, metric)
    nq, ng = q.shape[0], g.shape[0]
    qp, gp, qc, gc = _check_ids(nq, ng, q_pids, g_pids, q_camids, g_camids)
    max_rank = _check_max_rank(max_rank)
    _check_chunk(chunk_size)
    threads = _num_threads(num_threads)
    rows = int(chunk_size) if chunk_size else max(1, FEATURE_CHUNK_ELEMENTS // ng)
    block_rows = max(1, BLOCK_ELEMENTS // ng)
    q_term, g_term = _row_terms(q, metric), _row_terms(g, metric)
    first = np.empty(nq, dtype=np.int64)
    ap = np.empty(nq)
    with (
        ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool,
        tqdm(total=nq, desc="evaluate", unit="query", disable=not progress) as bar,
    ):
        for s, e in _blocks(nq, rows):
            dist = _distance_block(q[s:e], g, q_term[s:e], g_term, metric)
            first[s:e], ap[s:e] = _rank_rows(dist, qp[s:e], qc[s:e], gp, gc, block_rows, pool)
            bar.update(e - s)
    return _cmc_map(first, ap, max_rank)


def summarize(cmc: Any, mAP: float) -> dict[str, float]:
    """``{"rank1", "rank5", "rank10", "mAP"}`` in percent, for tables and JSON."""
    c = to_numpy(cmc, "cmc")
    if c.ndim != 1 or c.shape[0] < 10:
        raise TCULError(
            f"cmc has shape {c.shape}: summarize needs a CMC curve of length >= 10 (max_rank >= 10)"
        )
    m = float(mAP)
    if not 0.0 <= m <= 1.0:
        raise TCULError(f"mAP must be a fraction in [0, 1], got {mAP!r}: pass evaluate()'s mAP")
    return {
        "rank1": 100.0 * float(c[0]),
        "rank5": 100.0 * float(c[4]),
        "rank10": 100.0 * float(c[9]),
        "mAP": 100.0 * m,
    }


def evaluate_model(
    model: Any,
    dataset: Any,
    cfg: Any,
    device: Any = "cpu",
    *,
    progress: bool = True,
    image_cache: Any = None,
) -> dict[str, float]:
    """Rank-1 / rank-5 / rank-10 / mAP (percent) of ``model`` on ``dataset``'s query/gallery.

    Features are the model's embeddings, L2-normalised (so the Euclidean ranking is the
    cosine ranking), extracted with :func:`tcul_helpers.training.features.extract_features`; the
    protocol is :func:`evaluate`'s (single query, same pid + same camera removed). Under
    torchrun the extraction is shared by the ranks and the ranking runs once, on rank 0.
    """
    from ..data.records import camids_of, pids_of
    from ..infra.distributed import on_main
    from ..training.features import extract_features, prepare_features  # torch is needed here

    def feats(records: list) -> np.ndarray:
        z = extract_features(model, records, cfg, device, progress, image_cache)
        return prepare_features(z, l2_normalize=True)

    if not dataset.query or not dataset.gallery:
        raise TCULError(f"dataset {dataset.name} has no query or gallery images to evaluate on")
    q, g = feats(dataset.query), feats(dataset.gallery)
    cmc, mAP = on_main(
        evaluate_features, q, g,
        pids_of(dataset.query), pids_of(dataset.gallery),
        camids_of(dataset.query), camids_of(dataset.gallery),
        progress=False,
    )
    return summarize(cmc, mAP)
