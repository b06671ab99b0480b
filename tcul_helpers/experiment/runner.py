"""The runner of Algorithm 1: :func:`adapt` runs TCUL (or its SUL / PUL-style / no-selection
variants) on a target dataset, in a run folder, from a source model f_theta0.

::

    Train f_theta0 on S                  (training.loops.train_source, before adapt)
    k-means: initialise {c_k}            (method.kmeans.kmeans_init)           step 2
    for iter = 1..N_iter:                (method.iteration.tcul_iteration, steps (a)-(e))

Everything the method needs beyond arrays lives here: the images and the network (the
fine-tuning passed to the iteration trains the model on the reliable images and extracts
the features of every image), the run folder (:class:`~tcul_helpers.experiment.run_store.RunStore`:
each iteration is committed, a stopped run resumes from its last completed iteration with
the same numbers), the scores against the ground truth, which the method never sees
(:class:`_Scores`), and several processes under torchrun.

The variant is chosen by ``cfg.selection`` (``temporal`` = Eq. 3, ``similarity`` = SUL,
``none``), ``cfg.centers`` (``update`` = Eq. 6-7, ``kmeans`` = PUL-style re-clustering),
``cfg.finetune_from`` (``previous``, or ``source`` as PUL) and ``cfg.finetune_loss``
(``triplet`` = Eq. 4-5, or PUL's ``softmax``). Features are L2-normalised once, right after
every extraction (:func:`tcul_helpers.training.features.prepare_features`), when
``cfg.l2_normalize`` (TCUL, SUL); PUL runs k-means on raw features.

Under torchrun every rank runs this loop: extraction and fine-tuning are shared by the
ranks, every rank computes the iteration's decisions from the same features, and rank 0's
labels, reliable set and centres are the ones every rank uses (``distributed.from_main``,
before fine-tuning and after the iteration); only rank 0 writes the run folder.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.records import ReidDataset, camids_of, frames_of, pids_of
from ..infra import distributed
from ..infra.array_checks import NO_FRAMES
from ..infra.atomic_files import check_writable
from ..infra.device import resolve_device
from ..infra.errors import TCULError
from ..infra.folder_lock import folder_lock
from ..infra.progress import tqdm
from ..measurement.evaluation import evaluate_model
from ..measurement.metrics import clustering_scores, pairwise_precision, pairwise_recall
from ..method.iteration import Finetune, tcul_iteration
from ..method.kmeans import kmeans_init, kmeans_recluster
from ..settings.config import Config
from ..training.features import NonFiniteFeaturesError, extract_features, prepare_features
from ..training.image_dataset import ImageCache, resolve_cache
from ..training.loops import NonFiniteLossError, TooFewSamplesError, finetune
from ..training.models import ReidNet, load_checkpoint, model_to_device
from .run_store import CHECKPOINT, STATE, RunStore, read_arrays, read_finished, read_only


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
    if cfg.n_clusters < 1 or cfg.n_clusters > len(target.train):
        raise TCULError(
            f"K={cfg.n_clusters} clusters for {len(target.train)} target images: K must be "
            "between 1 and the number of images (set n_clusters)"
        )
    if cfg.selection == "temporal" and not target.has_frames:
        raise TCULError(f"selection=temporal (Eq. 3) needs frame ids, but {NO_FRAMES} "
                        "(--set selection=similarity)")
    say = log or (lambda _msg: None)

    # one decision for every rank: rank 1 may look before or after rank 0 made the folder
    if not fresh and distributed.on_main(read_only, run_dir):
        # a read-only folder (a shared class folder, a read-only mount) can still be
        # *read*: a finished run of these settings needs no write at all
        finished = read_finished(run_dir, cfg, target, device)
        if finished is None:
            check_writable(run_dir, "run folder")  # raises the one line that says why
        say(f"{run_dir} is read-only and holds the finished run: nothing to do")
        model, centers, data = finished
        return AdaptResult(model, centers, data["iterations"], run_dir, "complete",
                           data["baseline"])

    with distributed.main_context(lambda: folder_lock(run_dir, "run folder")):
        return _adapt(source_model, target, cfg, run_dir, device, say, progress=progress,
                      fresh=fresh, evaluate_each=evaluate_each, stop_after=stop_after)


def _adapt(source_model: ReidNet, target: ReidDataset, cfg: Config, run_dir: Path,
           device: torch.device, say: Callable[[str], object], *, progress: bool, fresh: bool,
           evaluate_each: bool, stop_after: int | None) -> AdaptResult:
    """Algorithm 1, run while :func:`adapt` holds the run folder's lock."""
    run = RunStore(run_dir, cfg, fresh, target.content_key())
    step = _Steps(source_model, target, cfg, device, progress)
    scores = _Scores(target, cfg, step.evaluate, evaluate_each)
    model, centers, z, done = step.resume(run, say) or step.initialise(run, say)  # step 2
    for it in range(done + 1, cfg.n_iter + 1):
        if stop_after is not None and it > stop_after:
            return _result(run, model, centers, "stopped")
        t0 = time.perf_counter()
        labels, kept, centers, z = tcul_iteration(  # steps (b)-(e), Eq. 1-7, on (a)'s z
            z, centers, step.camids, step.frames, step.finetuner(model, it, run),
            cfg.lambda_fr, cfg.lambda_c, cfg.beta, selection=cfg.selection,
            sim_threshold=cfg.sim_threshold, recluster=step.reclusterer(it))
        labels, kept, centers = distributed.from_main((labels, kept, centers))
        record = {"iteration": it, **_counts(labels, kept), "seconds": time.perf_counter() - t0,
                  **step.trained, **scores(it, model, labels, kept)}
        run.commit(it, model, centers, z, {f"labels_{it}": labels, f"kept_{it}": kept,
                                           f"centers_{it}": np.asarray(centers, np.float32)},
                   record)
        say(_progress_line(record, cfg.n_iter))
    return _result(run, model, centers, "complete")


_Start = tuple[ReidNet, np.ndarray, np.ndarray, int]  # model, centres, features, iterations done


class _Steps:
    """The stages of :func:`_adapt` bound to one run's data, model start and device."""

    def __init__(self, source_model: ReidNet, target: ReidDataset, cfg: Config,
                 device: torch.device, progress: bool) -> None:
        self.source, self.target, self.cfg, self.device = source_model, target, cfg, device
        self.progress = progress
        train = target.train
        self.camids, self.frames = camids_of(train), frames_of(train)
        self.cache: ImageCache | None = resolve_cache(
            None, len(train) + len(target.query) + len(target.gallery), cfg.height, cfg.width,
            cfg.num_workers)
        self.trained: dict = {}  # what the last fine-tuning did (see finetuner)
        self.source_state = None  # PUL fine-tunes f_theta0 again in every iteration
        if cfg.finetune_from == "source":
            f0 = copy.deepcopy(source_model).drop_classifier()
            self.source_state = {k: v.to(device) for k, v in f0.state_dict().items()}

    def extract(self, model: ReidNet) -> np.ndarray:
        """``z_i = f_theta(x_i)`` for every target training image (step (a)), prepared once."""
        z = extract_features(model, self.target.train, self.cfg, self.device, self.progress,
                             self.cache)
        return prepare_features(z, self.cfg.l2_normalize)

    def evaluate(self, model: ReidNet) -> dict:
        """Rank-1 / rank-5 / mAP of ``model`` on the target query / gallery (ground truth)."""
        return evaluate_model(model, self.target, self.cfg, self.device,
                              progress=self.progress, image_cache=self.cache)

    def resume(self, run: RunStore, say: Callable[[str], object]) -> _Start | None:
        """(model, centres, features, iterations done) stored in ``run``, or None."""
        done, stored = run.recover()
        if not (done and stored):
            return None
        model, _meta = load_checkpoint(run.dir / CHECKPOINT, arch=self.cfg.arch,
                                       device=self.device)
        state = read_arrays(run.dir / STATE)
        say(f"resuming {run.dir} after iteration {done}")
        return model, state["centers"], state["features"], done

    def initialise(self, run: RunStore, say: Callable[[str], object]) -> _Start:
        """Step 2: f_theta0's features, its baseline score and the k-means centres ``{c_k}``
        (PUL-style runs re-cluster in every iteration instead), committed as iteration 0."""
        run.reset()
        model = model_to_device(copy.deepcopy(self.source).drop_classifier(), self.device)
        t0 = time.perf_counter()
        z = self.extract(model)
        cfg = self.cfg
        if cfg.centers == "kmeans":
            centers = np.zeros((cfg.n_clusters, z.shape[1]), dtype=np.float32)
        else:
            centers = distributed.on_main(self.kmeans, z).astype(np.float32)
        base = self.evaluate(model)
        run.data["baseline"] = {**base, "seconds": time.perf_counter() - t0}
        run.commit(0, model, centers, z, {"centers_0": centers}, None)
        say(f"baseline on the target: rank-1 {base['rank1']:.1f}  mAP {base['mAP']:.1f}")
        return model, centers, z, 0

    def kmeans(self, z: np.ndarray) -> np.ndarray:
        """Step 2: the k-means centres ``{c_k}`` of ``z``, with a progress bar."""
        cfg = self.cfg
        with tqdm(total=cfg.kmeans_iters, desc="k-means", disable=not self.progress,
                  leave=False) as bar:
            return kmeans_init(z, cfg.n_clusters, cfg.seed, n_iter=cfg.kmeans_iters,
                               on_step=lambda _changed: bar.update())

    def reclusterer(self, it: int) -> Callable[[np.ndarray], tuple] | None:
        """PUL-style runs: iteration ``it``'s k-means, whose centres are real images (None
        for the other variants, which assign with Eq. 1-2 and update with Eq. 6-7)."""
        cfg = self.cfg
        if cfg.centers != "kmeans":
            return None

        def recluster(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            res = kmeans_recluster(z, cfg.n_clusters, cfg.seed + it, n_iter=cfg.kmeans_iters)
            return res.labels, res.centers.astype(np.float32)
        return recluster

    def finetuner(self, model: ReidNet, it: int, run: RunStore) -> Finetune:
        """Step (d) of iteration ``it`` as the iteration calls it: fine-tune ``model`` in place
        on the images ``index`` with their pseudo-labels (Eq. 4-5), then return every
        image's features under it (:meth:`extract`). What the training did is left in
        ``self.trained`` for the history: identities trained, ``skipped`` (why, when too few
        images were kept), ``loss`` and which loss (``finetune_loss``)."""
        def finetune_then_extract(index: np.ndarray, pseudo_labels: np.ndarray) -> np.ndarray:
            index, pseudo_labels = distributed.from_main((index, pseudo_labels))
            self.trained = self._train(model, index, pseudo_labels, it, run)
            try:
                return self.extract(model)
            except NonFiniteFeaturesError as exc:
                raise run.diverged(it, exc) from None
        return finetune_then_extract

    def _train(self, model: ReidNet, index: np.ndarray, pseudo_labels: np.ndarray, it: int,
               run: RunStore) -> dict:
        if self.source_state is not None:
            model.load_state_dict(self.source_state)
        stats, skipped = {}, ""
        try:
            stats = finetune(model, [self.target.train[i] for i in index], pseudo_labels,
                             self.cfg, self.device, progress=self.progress,
                             image_cache=self.cache, seed=finetune_seed(self.cfg, it))
        except TooFewSamplesError as exc:
            skipped = str(exc)
            warnings.warn(f"iteration {it}: {exc}", TooFewSamplesWarning, stacklevel=6)
        except NonFiniteLossError as exc:
            raise run.diverged(it, exc) from None
        return {"n_ids_trained": int(stats.get("num_ids", 0)), "skipped": skipped,
                "loss": stats.get("loss"), "finetune_loss": self.cfg.finetune_loss}


def finetune_seed(cfg: Config, iteration: int) -> int:
    """The seed of step (d) in iteration ``iteration``: other augmentations and batches in
    every iteration, the same on every rerun (a loop written in a notebook uses it too)."""
    return cfg.seed + 1000 * iteration


def _counts(labels: np.ndarray, kept: np.ndarray) -> dict:
    """How much of the target an iteration used: reliable images, pseudo-identities."""
    return {
        "n_reliable": int(kept.sum()),
        "n_pseudo_ids": int(len(np.unique(labels[kept]))) if kept.any() else 0,
        "n_clusters_used": int(len(np.unique(labels))),
    }


class _Scores:
    """The per-iteration hook that scores an iteration against the ground truth, which the
    method never sees: pairwise precision / recall of the kept pseudo-labels and NMI / ARI
    of the clustering (on rank 0), and the target evaluation after every iteration
    (``evaluate_each``) or only the last."""

    def __init__(self, target: ReidDataset, cfg: Config,
                 evaluate: Callable[[ReidNet], dict], evaluate_each: bool) -> None:
        self.truth = pids_of(target.train)
        self.evaluate, self.each, self.last = evaluate, evaluate_each, cfg.n_iter

    def __call__(self, it: int, model: ReidNet, labels: np.ndarray, kept: np.ndarray) -> dict:
        gt = distributed.on_main(_pseudo_label_scores, labels, kept, self.truth)
        return {**gt, **(self.evaluate(model) if self.each or it == self.last else {})}


def _pseudo_label_scores(labels: np.ndarray, kept: np.ndarray, truth: np.ndarray) -> dict:
    return {
        "precision": pairwise_precision(labels, truth, kept),
        "recall": pairwise_recall(labels, truth, kept),
        "precision_all": pairwise_precision(labels, truth),
        **clustering_scores(labels, truth),
    }


def _progress_line(record: dict, n_iter: int) -> str:
    prec = record.get("precision")
    return (f"iteration {record['iteration']}/{n_iter}: {record['n_reliable']} reliable"
            + (f", precision {prec:.3f}" if prec is not None and np.isfinite(prec) else "")
            + (f", mAP {record['mAP']:.1f}" if "mAP" in record else "")
            + (" (fine-tuning skipped: too few samples)" if record["skipped"] else ""))


def _result(run: RunStore, model: ReidNet, centers: np.ndarray, status: str) -> AdaptResult:
    run.save_history(status)
    return AdaptResult(model, np.asarray(centers), run.iterations, run.dir, status,
                       run.data["baseline"])


__all__ = [
    "AdaptResult",
    "TooFewSamplesWarning",
    "adapt",
    "finetune_seed",
]
