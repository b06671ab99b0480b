"""Algorithm 1 of the paper: the TCUL loop, and its SUL / PUL-style / no-selection variants.

::

    Train f_theta0 on S                         (tcul_helpers.training.train_source)
    k-means: initialise {c_k}                   (kmeans.kmeans_init)          step 2
    for iter = 1..N_iter:
        z_i = f_theta_{iter-1}(x_i)             (features.extract_features)   step a
        l_i = argmax_k sim(z_i, c_k)            (clustering.assign_clusters)  Eq. 1-2
        D_iter = reliable samples               (selection.select_reliable)   Eq. 3
        f_theta_iter = fine-tune on D_iter      (training.finetune)           Eq. 4-5
        update {c_k}                            (clustering.update_centers)   Eq. 6-7

The variant is chosen by ``cfg.selection`` (``temporal`` = TCUL, ``similarity`` = SUL,
``none``), ``cfg.centers`` (``update`` = Eq. 6-7, ``kmeans`` = PUL-style re-clustering
every iteration), ``cfg.finetune_from`` (``previous``, or ``source`` as PUL does) and
``cfg.finetune_loss`` (``triplet`` = Eq. 4-5, or ``softmax``: PUL's cross-entropy through a
fresh classifier over the cluster labels, see :func:`tcul_helpers.training.finetune`).

**The one place where features are L2-normalised** is :func:`prepare_features`, right
after every extraction, when ``cfg.l2_normalize`` is true (TCUL / SUL): k-means, Eq. 1-3
and Eq. 6-7 all see unit-length features. The PUL-style variant sets it false (PUL runs
k-means on raw features). Eq. 6-7 is applied to the features of the fine-tuned model with
the labels of this iteration, and those features are step (a) of the next iteration:
features are extracted once per iteration.

Every iteration appends a record to ``history.json`` in the run folder (reliable samples,
pseudo-identities used, seconds, and - from the ground truth, which the method never
sees - pairwise precision of the kept pseudo-labels, NMI / ARI of the clustering, and
target rank-1 / rank-5 / mAP) and writes a checkpoint; a stopped run resumes from its last
completed iteration and ends with the same numbers as an unbroken one (CPU, same seed).

Under torchrun (:mod:`tcul_helpers.distributed`) every rank runs this loop: extraction and
fine-tuning are shared by the ranks, the decisions (k-means, Eq. 1-3, Eq. 6-7, the scores)
are made on rank 0 and broadcast (``on_main``), and only rank 0 writes the run folder.
"""

from __future__ import annotations

import copy
import json
import os
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed
from .atomic_files import WriteError, check_writable, write_json, write_npz
from .clustering import assign_clusters, update_centers
from .config import Config, deciding_settings, fingerprint
from .device import resolve_device
from .errors import TCULError
from .evaluation import evaluate_model
from .features import extract_features
from .folder_lock import folder_lock
from .image_dataset import ImageCache, resolve_cache
from .kmeans import kmeans_init, kmeans_recluster
from .metrics import camera_pair_scores, clustering_scores, pairwise_precision, pairwise_recall
from .models import ReidNet, load_checkpoint, model_to_device, save_checkpoint
from .records import ReidDataset
from .selection import select_by_similarity, temporal_anchors
from .training import NonFiniteLossError, TooFewSamplesError, finetune

HISTORY = "history.json"
CONFIG = "config.json"
STATE = "state.npz"
CHECKPOINT = "model_last.pt"
TRACE = "trace.npz"
#: An iteration is committed in three steps (:meth:`_Run.commit`): its checkpoint, state and
#: trace are written under these names, then the history records the iteration (the commit
#: point), then the files take their final names. A kill at any instant leaves either
#: iteration k-1 or iteration k on disk; the next run rolls the pending files forward (the
#: history names k) or throws them away (it names k-1).
PENDING = {CHECKPOINT: "model_last.next.pt", STATE: "state.next.npz", TRACE: "trace.next.npz"}
STAMP = "_iteration"  # the iteration a state or trace file belongs to


class NonFiniteFeaturesError(TCULError):
    """The model produced NaN or infinite features: training diverged."""


class TooFewSamplesWarning(UserWarning):
    """An iteration kept too few samples to form one batch: fine-tuning was skipped."""


@dataclass
class AdaptResult:
    """What :func:`adapt` returns: the adapted model, the final centres, the history."""

    model: ReidNet
    centers: np.ndarray
    history: list[dict]
    run_dir: Path
    status: str = "complete"
    baseline: dict = field(default_factory=dict)


def prepare_features(z: np.ndarray, cfg: Config) -> np.ndarray:
    """The kit's single normalisation point: L2-normalise rows when ``cfg.l2_normalize``.

    Raises :class:`NonFiniteFeaturesError` on NaN / infinite features.
    """
    z = np.asarray(z, dtype=np.float32)
    if not np.isfinite(z).all():
        raise NonFiniteFeaturesError(
            "the model produced NaN or infinite features: training diverged; lower the "
            "learning rate (the last good checkpoint is kept)"
        )
    if cfg.l2_normalize:
        z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z


def select(cfg: Config, z: np.ndarray, labels: np.ndarray, centers: np.ndarray,
           camids: np.ndarray, frames: np.ndarray | None) -> np.ndarray:
    """Step (c) for ``cfg.selection``: the boolean mask of reliable images."""
    if cfg.selection == "temporal":
        if frames is None:
            raise TCULError(
                "temporal selection needs frame ids but this dataset has none (e.g. MSMT17): "
                "use selection=similarity (--set selection=similarity)"
            )
        return temporal_anchors(z, labels, centers, camids, frames, cfg.lambda_fr).kept
    if cfg.selection == "similarity":
        return select_by_similarity(z, labels, centers, cfg.sim_threshold)
    return np.ones(len(labels), dtype=bool)


def _check_k(cfg: Config, n: int) -> None:
    if cfg.n_clusters < 1 or cfg.n_clusters > n:
        raise TCULError(
            f"K={cfg.n_clusters} clusters for {n} target images: K must be between 1 and the "
            "number of images (set n_clusters)"
        )


def _ground_truth_scores(labels: np.ndarray, kept: np.ndarray, truth: np.ndarray | None) -> dict:
    if truth is None:
        return {}
    out = {
        "precision": pairwise_precision(labels, truth, kept),
        "recall": pairwise_recall(labels, truth, kept),
        "precision_all": pairwise_precision(labels, truth),
    }
    out.update(clustering_scores(labels, truth))
    return out


def _clean(v: Any) -> Any:
    """JSON-safe value: NaN -> None, numpy scalars -> Python numbers."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


class _Run:
    """The run folder: configuration, history, state and checkpoint, written atomically.

    Under torchrun only rank 0 reads and writes it; the other ranks hold the same history
    in memory (broadcast from rank 0) and their writes are no-ops."""

    def __init__(self, run_dir: Path, cfg: Config, fresh: bool, data_key: str) -> None:
        self.dir = run_dir
        self.cfg = cfg
        self.data: dict = distributed.on_main(self._open, fresh, data_key)

    def _open(self, fresh: bool, data_key: str) -> dict:
        run_dir, cfg = self.dir, self.cfg
        run_dir.mkdir(parents=True, exist_ok=True)
        hist_path = run_dir / HISTORY
        if fresh:
            for name in (HISTORY, CONFIG, STATE, CHECKPOINT, TRACE, *PENDING.values()):
                (run_dir / name).unlink(missing_ok=True)
        if hist_path.exists():
            self.data = read_history(hist_path)
            old = Config.load(run_dir / CONFIG)
            if fingerprint(old) != fingerprint(cfg):
                have, want = deciding_settings(old), deciding_settings(cfg)
                diff = sorted(k for k in want.keys() | have.keys() if have.get(k) != want.get(k))
                raise TCULError(
                    f"{run_dir} holds a run with other settings ({', '.join(diff)}): use another "
                    "output folder or start over (--fresh)"
                )
            if self.data.get("data_key") != data_key:
                raise TCULError(
                    f"{run_dir} holds a run on other data (the target dataset or world has "
                    "changed since): use another output folder or start over (--fresh)"
                )
        else:
            self.data = {"status": "new", "baseline": {}, "iterations": []}
        self.data["data_key"] = data_key
        cfg.save(run_dir / CONFIG)
        return self.data

    @property
    def iterations(self) -> list[dict]:
        return self.data["iterations"]

    def save_history(self, status: str) -> None:
        self.data["status"] = status
        distributed.main_only(write_json, self.dir / HISTORY, _clean(self.data))

    def load_trace(self) -> dict[str, np.ndarray]:
        path = self.dir / TRACE
        return _read_arrays(path) if distributed.is_main() and path.exists() else {}

    def commit(self, it: int, model: ReidNet, centers: np.ndarray, z: np.ndarray,
               trace: dict[str, np.ndarray], record: dict | None) -> None:
        """Store iteration ``it`` (0: the initialisation) as one step: see :data:`PENDING`."""
        if record is not None:
            self.iterations.append(record)
        distributed.main_only(self._write, it, model, centers, z, trace)

    def _write(self, it: int, model: ReidNet, centers: np.ndarray, z: np.ndarray,
               trace: dict[str, np.ndarray]) -> None:
        stamp = {STAMP: np.int64(it)}
        save_checkpoint(self.dir / PENDING[CHECKPOINT], model, {"iteration": it},
                        input_size=(self.cfg.height, self.cfg.width))
        write_npz(self.dir / PENDING[STATE], centers=centers, features=z, **stamp)
        write_npz(self.dir / PENDING[TRACE], **trace, **stamp)
        _COMMIT_HOOK("staged", it)
        self.data["status"] = "running"
        write_json(self.dir / HISTORY, _clean(self.data))  # the commit point
        _COMMIT_HOOK("recorded", it)
        self._promote()

    def _promote(self) -> None:
        for final, pending in PENDING.items():
            if (self.dir / pending).exists():
                os.replace(self.dir / pending, self.dir / final)
                _COMMIT_HOOK(f"promoted {final}", len(self.iterations))

    def recover(self) -> tuple[int, bool]:
        """Finish or undo an interrupted commit; return the number of completed iterations
        and whether the checkpoint and state of the last one are on disk (rank 0 looks).

        Pending files of the iteration the history records are moved into place (the kill
        came after the commit point); those of a later one are deleted (it came before).
        Then the checkpoint and the state must belong to the recorded iteration, else
        TCULError (one line, the fix: ``--fresh``)."""
        return distributed.on_main(self._recover)

    def _recover(self) -> tuple[int, bool]:
        """:meth:`recover` on rank 0."""
        done = len(self.iterations)
        for name in PENDING.values():
            path = self.dir / name
            if path.exists() and _stamp(path) != done:
                path.unlink()
        self._promote()
        if not (self.dir / CHECKPOINT).exists() or not (self.dir / STATE).exists():
            return done, False
        for name in (CHECKPOINT, STATE):
            have = _stamp(self.dir / name)
            if have is not None and have != done:
                raise TCULError(
                    f"{self.dir / name} holds iteration {have} but {HISTORY} records {done} "
                    "complete: the run folder was changed by hand; start over (--fresh)"
                )
        return done, True


def _commit_hook_default(step: str, iteration: int) -> None:
    """Called between the write steps of :meth:`_Run.commit`; tests replace it to kill the
    process at every boundary."""


_COMMIT_HOOK: Callable[[str, int], None] = _commit_hook_default


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a state / trace file, without its stamp; TCULError if unreadable."""
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files if k != STAMP}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise TCULError(f"{path} is unreadable (damaged or not a kit file): delete it, or "
                        "start the run over (--fresh)") from None


def _stamp(path: Path) -> int | None:
    """The iteration a checkpoint, state or trace file belongs to (None: an older kit's
    file, which has no stamp)."""
    try:
        if path.suffix == ".pt":
            blob = torch.load(path, map_location="cpu", weights_only=True)
            it = (blob.get("meta") or {}).get("iteration") if isinstance(blob, dict) else None
            return None if it is None else int(it)
        with np.load(path) as f:
            return int(f[STAMP]) if STAMP in f.files else None
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, KeyError):
        raise TCULError(f"{path} is unreadable (damaged or not a kit file): delete it, or "
                        "start the run over (--fresh)") from None


def adapt(
    source_model: ReidNet,
    target: ReidDataset,
    cfg: Config,
    run_dir: str | Path,
    device: str | torch.device | None = None,
    *,
    progress: bool = True,
    fresh: bool = False,
    evaluate_each: bool = True,
    stop_after: int | None = None,
    log: Callable[[str], object] | None = None,
) -> AdaptResult:
    """Run Algorithm 1 on ``target.train`` from ``source_model`` (f_theta0), in ``run_dir``.

    Resumes from the last completed iteration found in ``run_dir`` (unless ``fresh``).
    ``stop_after`` ends the call after that many completed iterations (a later call resumes).
    ``evaluate_each`` evaluates the target query/gallery after every iteration (else only
    at the end). ``log`` receives one short line per iteration. The source model is not
    modified. Raises TCULError for bad settings, and after writing the history (status
    ``diverged``, last good checkpoint kept) when the loss or the features become NaN.
    """
    device = resolve_device(device if device is not None else cfg.device)
    run_dir = Path(run_dir)
    train = target.train
    n = len(train)
    _check_k(cfg, n)
    frames = None
    if target.has_frames:
        frames = np.array([r.frame for r in train], dtype=np.int64)
    elif cfg.selection == "temporal":
        select(cfg, np.zeros((0, 1)), np.zeros(0, np.int64), np.zeros((1, 1)), np.zeros(0), None)
    camids = np.array([r.camid for r in train], dtype=np.int64)
    truth = np.array([r.pid for r in train], dtype=np.int64)
    say = log or (lambda _msg: None)

    # one decision for every rank: rank 1 may look before or after rank 0 made the folder
    if not fresh and distributed.on_main(_read_only, run_dir):
        # a read-only folder (a shared class folder, a read-only mount) can still be
        # *read*: a finished run of these settings needs no write at all
        finished = _finished_run(run_dir, cfg, target, device)
        if finished is None:
            check_writable(run_dir, "run folder")  # raises the one line that says why
        say(f"{run_dir} is read-only and holds the finished run: nothing to do")
        return finished

    with distributed.main_context(lambda: folder_lock(run_dir, "run folder")):
        return _adapt(source_model, target, cfg, run_dir, device, train, frames, camids, truth,
                      say, progress=progress, fresh=fresh, evaluate_each=evaluate_each,
                      stop_after=stop_after)


def _adapt(source_model: ReidNet, target: ReidDataset, cfg: Config, run_dir: Path,
           device: torch.device, train: list, frames: np.ndarray | None, camids: np.ndarray,
           truth: np.ndarray, say: Callable[[str], object], *, progress: bool, fresh: bool,
           evaluate_each: bool, stop_after: int | None) -> AdaptResult:
    """The body of :func:`adapt`, run while it holds the run folder's lock."""
    n = len(train)
    run = _Run(run_dir, cfg, fresh, target.content_key())
    done, stored = run.recover()
    cache = resolve_cache(None, n + len(target.query) + len(target.gallery), cfg.height, cfg.width,
                          cfg.num_workers)
    trace = run.load_trace()
    model = copy.deepcopy(source_model)
    model.drop_classifier()

    def evaluate(m: ReidNet) -> dict:
        return evaluate_model(m, target, cfg, device, progress=progress, image_cache=cache)

    if done and stored:
        model, _meta = load_checkpoint(run_dir / CHECKPOINT, arch=cfg.arch, device=device)
        st = _read_arrays(run_dir / STATE)
        centers, z = st["centers"], st["features"]
        say(f"resuming {run_dir} after iteration {done}")
    else:  # initialisation: baseline features, baseline score, k-means centres (step 2)
        done = 0
        run.data["iterations"] = []
        trace = {}
        model = model_to_device(model, device)
        t0 = time.perf_counter()
        z = prepare_features(extract_features(model, train, cfg, device, progress, cache), cfg)
        if cfg.centers == "kmeans":
            centers = np.zeros((cfg.n_clusters, z.shape[1]), dtype=np.float32)  # set per iteration
        else:
            centers = distributed.on_main(kmeans_init, z, cfg.n_clusters, cfg.seed,
                                          n_iter=cfg.kmeans_iters,
                                          progress=progress).astype(np.float32)
        base = evaluate(model)
        run.data["baseline"] = {**base, "seconds": time.perf_counter() - t0}
        trace["centers_0"] = centers
        run.commit(0, model, centers, z, trace, None)
        say(f"baseline on the target: rank-1 {base['rank1']:.1f}  mAP {base['mAP']:.1f}")

    source_state = None  # PUL fine-tunes f_theta0 again in every iteration
    if cfg.finetune_from == "source":
        f0 = copy.deepcopy(source_model).drop_classifier()
        source_state = {k: v.to(device) for k, v in f0.state_dict().items()}

    for it in range(done + 1, cfg.n_iter + 1):
        if stop_after is not None and it > stop_after:
            run.save_history("stopped")
            return AdaptResult(model, centers, run.iterations, run_dir, "stopped",
                               run.data["baseline"])
        t0 = time.perf_counter()
        # (b) assignment, Eq. 1-2 (PUL-style: k-means again, centres are real images)
        if cfg.centers == "kmeans":
            res = distributed.on_main(kmeans_recluster, z, cfg.n_clusters, cfg.seed + it,
                                      n_iter=cfg.kmeans_iters)
            centers, labels = res.centers.astype(np.float32), res.labels
        else:
            labels = distributed.on_main(assign_clusters, z, centers)
        # (c) reliable samples, Eq. 3 (or similarity / none)
        kept = distributed.on_main(select, cfg, z, labels, centers, camids, frames)
        idx = np.flatnonzero(kept)
        # (d) fine-tuning, Eq. 4-5
        if source_state is not None:
            model.load_state_dict(source_state)
        skipped = ""
        stats: dict = {}
        try:
            stats = finetune(model, [train[i] for i in idx], labels[idx], cfg, device,
                             progress=progress, image_cache=cache, seed=cfg.seed + 1000 * it)
        except TooFewSamplesError as exc:
            skipped = str(exc)
            warnings.warn(f"iteration {it}: {exc}", TooFewSamplesWarning, stacklevel=2)
        except NonFiniteLossError as exc:
            run.data["error"] = str(exc)
            run.save_history("diverged")
            raise NonFiniteLossError(f"iteration {it}: {exc}") from None
        # (e) features of the fine-tuned model = step (a) of the next iteration; Eq. 6-7
        try:
            z_next = prepare_features(
                extract_features(model, train, cfg, device, progress, cache), cfg)
        except NonFiniteFeaturesError as exc:
            run.data["error"] = str(exc)
            run.save_history("diverged")
            raise NonFiniteFeaturesError(f"iteration {it}: {exc}") from None
        if cfg.centers == "update":
            centers = distributed.on_main(update_centers, centers, z_next, labels,
                                          cfg.lambda_c, cfg.beta)
        train_seconds = time.perf_counter() - t0
        scores = evaluate(model) if (evaluate_each or it == cfg.n_iter) else {}
        record = {
            "iteration": it,
            "n_reliable": int(kept.sum()),
            "n_pseudo_ids": int(len(np.unique(labels[idx]))) if idx.size else 0,
            "n_ids_trained": int(stats.get("num_ids", 0)),
            "n_clusters_used": int(len(np.unique(labels))),
            "seconds": train_seconds,
            "skipped": skipped,
            "loss": stats.get("loss"),
            "finetune_loss": cfg.finetune_loss,  # what "loss" is: triplet (Eq. 4-5) or softmax
            **distributed.on_main(_ground_truth_scores, labels, kept, truth),
            **scores,
        }
        z = z_next
        trace[f"labels_{it}"] = labels
        trace[f"kept_{it}"] = kept
        trace[f"centers_{it}"] = np.asarray(centers, dtype=np.float32)
        run.commit(it, model, centers, z, trace, record)
        prec = record.get("precision")
        say(f"iteration {it}/{cfg.n_iter}: {record['n_reliable']} reliable"
            + (f", precision {prec:.3f}" if prec is not None and np.isfinite(prec) else "")
            + (f", mAP {record['mAP']:.1f}" if "mAP" in record else "")
            + (" (fine-tuning skipped: too few samples)" if skipped else ""))
    run.save_history("complete")
    return AdaptResult(model, np.asarray(centers), run.iterations, run_dir, "complete",
                       run.data["baseline"])


def _read_only(run_dir: Path) -> bool:
    """True when the run folder exists and cannot be written to."""
    if not run_dir.is_dir():
        return False
    try:
        check_writable(run_dir, "run folder")
    except WriteError:
        return True
    return False


def _finished_run(run_dir: Path, cfg: Config, target: ReidDataset,
                  device: torch.device) -> AdaptResult | None:
    """The complete run of ``cfg`` on ``target`` in ``run_dir``, read without writing
    anything; ``None`` when the folder holds anything else (an unfinished run, other
    settings or data, pending files of an interrupted commit)."""
    if any((run_dir / p).exists() for p in PENDING.values()) or not run_complete(
            run_dir, cfg, target):
        return None
    data = read_history(run_dir / HISTORY)
    model, _meta = load_checkpoint(run_dir / CHECKPOINT, arch=cfg.arch, device=device)
    centers = _read_arrays(run_dir / STATE)["centers"]
    return AdaptResult(model, centers, data["iterations"], run_dir, "complete",
                       data["baseline"])


def run_complete(run_dir: str | Path, cfg: Config, target: ReidDataset) -> bool:
    """True when ``run_dir`` holds a finished run of ``cfg.n_iter`` iterations on ``target``
    with the settings of ``cfg`` (a missing or damaged history: False)."""
    try:
        hist = read_history(Path(run_dir) / HISTORY)
    except TCULError:
        return False
    return (hist.get("status") == "complete" and len(hist["iterations"]) == cfg.n_iter
            and hist.get("data_key") == target.content_key()
            and run_settings_match(run_dir, cfg))


def read_history(path: str | Path) -> dict:
    """A run's ``history.json``, checked: a dict with ``status`` (text), ``baseline`` (a
    dict) and ``iterations`` (records numbered 1, 2, ...). TCULError naming the file and
    the fix (``--fresh``) when it is unreadable, not UTF-8 JSON, or of another shape."""
    path = Path(path)
    fix = "delete it, or start the run over (--fresh)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TCULError(f"{path} is unreadable ({type(exc).__name__}): {fix}") from None
    problem = ""
    if not isinstance(data, dict):
        problem = f"a {type(data).__name__}, not a run record"
    elif not isinstance(data.get("iterations"), list):
        problem = "no list of iterations"
    elif not isinstance(data.get("baseline", {}), dict) or not isinstance(
            data.get("status", ""), str):
        problem = "a baseline or status of the wrong type"
    else:
        for i, rec in enumerate(data["iterations"], start=1):
            if not isinstance(rec, dict) or rec.get("iteration") != i:
                problem = f"iteration record {i} is missing or misnumbered"
                break
    if problem:
        raise TCULError(f"{path} is damaged ({problem}): {fix}")
    data.setdefault("baseline", {})
    data.setdefault("status", "new")
    return data


def load_history(run_dir: str | Path) -> dict:
    """The ``history.json`` of a run folder: ``{"status", "baseline", "iterations"}``."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        raise TCULError(f"no {HISTORY} in {run_dir}: run the adaptation there first")
    return read_history(path)


def camera_pair_history(run_dir: str | Path, target: ReidDataset) -> list[dict]:
    """Per iteration of the run in ``run_dir``: :func:`camera_pair_scores` of the pseudo-labels
    its selection kept, against ``target.train``'s true identities and cameras (what the
    fine-tuning was taught, split into pairs inside one camera and across two)."""
    trace = load_trace(run_dir)
    pids = np.array([r.pid for r in target.train])
    cams = np.array([r.camid for r in target.train])
    out = []
    it = 1
    while f"labels_{it}" in trace and f"kept_{it}" in trace:
        scores = camera_pair_scores(trace[f"labels_{it}"], pids, cams, trace[f"kept_{it}"])
        out.append({"iteration": it, **{k: (None if np.isnan(v) else float(v))
                                        for k, v in scores.items()}})
        it += 1
    return out


def run_data_matches(run_dir: str | Path, target: ReidDataset) -> bool:
    """False when ``run_dir`` holds a run computed on data other than ``target`` (a run of
    an older kit, without the record, counts as other data); True when it holds none."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return True
    try:
        return read_history(path).get("data_key") == target.content_key()
    except TCULError:
        return True  # adapt reports the unreadable file itself


def run_settings_match(run_dir: str | Path, cfg: Config) -> bool:
    """False when ``run_dir`` holds a run computed with settings other than ``cfg``'s (those
    that decide its numbers; e.g. a PUL-style run of an older kit, fine-tuned with the
    triplet loss); True when it holds none or its configuration is unreadable (then
    :func:`adapt` reports the problem itself)."""
    path = Path(run_dir) / CONFIG
    if not (Path(run_dir) / HISTORY).is_file() or not path.is_file():
        return True
    try:
        old = Config.load(path)
    except TCULError:
        return True
    return fingerprint(old) == fingerprint(cfg)


def load_trace(run_dir: str | Path) -> dict[str, np.ndarray]:
    """Per-iteration arrays of a run: ``centers_t``, ``labels_t``, ``kept_t``."""
    path = Path(run_dir) / TRACE
    if not path.is_file():
        raise TCULError(f"no {TRACE} in {run_dir}: run the adaptation there first")
    return _read_arrays(path)


__all__ = [
    "AdaptResult",
    "ImageCache",
    "NonFiniteFeaturesError",
    "TooFewSamplesWarning",
    "adapt",
    "camera_pair_history",
    "load_history",
    "load_trace",
    "prepare_features",
    "run_complete",
    "run_data_matches",
    "run_settings_match",
    "select",
]
