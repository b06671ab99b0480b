"""The two training loops: the source baseline f_theta0 and the target fine-tuning step.

* :func:`train_source` - step 1 of Algorithm 1: cross-entropy + batch-hard triplet loss
  (margin ``cfg.source_margin``) on the labelled source set, Adam (``cfg.source_lr``),
  P x M batches (``cfg.batch_ids`` x ``cfg.num_instances_source``), ``cfg.source_epochs``.
* :func:`finetune` - step (d) on the selected images with their pseudo-labels, SGD
  (``cfg.target_lr``, ``cfg.momentum``, ``cfg.weight_decay``), random erasing + flip, P x M
  batches over pseudo-labels (``cfg.batch_ids`` x ``cfg.batch_instances``),
  ``cfg.target_epochs``. The loss is ``cfg.finetune_loss``: ``triplet`` (TCUL, SUL) is the
  batch-hard triplet loss only (Eq. 4-5, margin ``cfg.margin``) on the embedding;
  ``softmax`` (PUL-style, as the public PUL code) is cross-entropy through a *fresh*
  classifier ``Dropout(0.5) -> Linear(embedding_dim, K')`` over the K' pseudo-identities
  being trained (:class:`PseudoLabelClassifier`), thrown away after the step.

Both seed torch, NumPy and the sampler from one seed, so the same seed on a CPU gives the
same weights. Images and weights are channels-last; on CUDA the loops use float16 autocast +
GradScaler (``cfg.amp``).
A non-finite loss raises :class:`NonFiniteLossError`; too few samples for one batch raise
:class:`TooFewSamplesError`; both are :class:`~tcul_helpers.infra.errors.TCULError` subclasses
that the outer loop can catch (keep the last good checkpoint / warn and skip).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..data.records import ImageRecord
from ..infra import distributed
from ..infra.device import (
    autocast,
    is_cuda,
    make_generator,
    memory_format,
    resolve_device,
    seed_everything,
    use_amp,
)
from ..infra.errors import TCULError
from ..infra.progress import tqdm
from ..method.triplet_loss import baseline_loss, batch_hard_triplet_loss
from ..settings.config import FINETUNE_LOSSES, Config
from .image_dataset import ImageCache, ImageDataset, resized_dataset, resolve_cache
from .models import ReidNet, build_model, model_to_device
from .sampler import IdentitySampler, apply_singleton_rule
from .transforms import augment_batch, normalize_batch


class NonFiniteLossError(TCULError):
    """The training loss became NaN or infinite (diverged): keep the last good checkpoint."""


class TooFewSamplesError(TCULError):
    """Fewer usable images or labels than one P x M batch needs."""


#: Under float16 AMP an overflow is routine: that many non-finite losses in a row are skipped
#: (as GradScaler skips a step with inf gradients) before training counts as diverged.
AMP_SKIP_LIMIT = 10


class OverflowGuard:
    """Decides what a non-finite loss means. In float32 (``amp=False``) it is divergence:
    :meth:`check` raises :class:`NonFiniteLossError` at once. Under float16 AMP it is first an
    overflow: the batch is skipped (``check`` returns True) and counted; only ``limit``
    consecutive skips raise. GradScaler's own skipped steps (inf gradients, seen as a scale
    that fell) are counted by :meth:`after_step`. ``skipped`` is the total."""

    def __init__(self, amp: bool, stage: str, limit: int = AMP_SKIP_LIMIT) -> None:
        self.amp, self.stage, self.limit = amp, stage, int(limit)
        self.skipped = 0
        self.in_a_row = 0

    def check(self, value: float, epoch: int, batch: int) -> bool:
        """True when the batch must be skipped; raises when training diverged."""
        if math.isfinite(value):
            self.in_a_row = 0
            return False
        if self.amp and self.in_a_row + 1 < self.limit:
            self.skipped += 1
            self.in_a_row += 1
            return True
        why = (f" in {self.limit} float16 batches in a row" if self.amp else "")
        raise NonFiniteLossError(
            f"{self.stage}: the loss became {value}{why} at epoch {epoch + 1}, batch "
            f"{batch + 1}: training diverged; lower the learning rate and keep the last good "
            "checkpoint"
        )

    def after_step(self, scale_before: float, scale_after: float) -> None:
        """Count a step that GradScaler skipped (it lowers the scale when it does)."""
        if self.amp and scale_after < scale_before:
            self.skipped += 1


#: ``loss_fn(model_output, labels) -> (loss, {name: value})`` for one batch
LossFn = Callable[[object, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]

#: dropout before PUL's fresh classifier, and the std of its N(0, std) weight init
#: (``Dropout(0.5)`` and ``RandomNormal(stddev=0.001)`` in the public ``PUL/unsupervised.py``)
PUL_DROPOUT = 0.5
PUL_INIT_STD = 0.001


class PseudoLabelClassifier(nn.Module):
    """PUL's fresh softmax head: ``Dropout(0.5) -> Linear(embedding_dim, num_classes)``.

    Weights are drawn from N(0, 0.001), biases are 0 (as PUL's ``fc8``). It lives only
    for one fine-tuning step: :func:`finetune` builds a new one each call and drops it.
    """

    def __init__(self, embedding_dim: int, num_classes: int,
                 dropout: float = PUL_DROPOUT, init_std: float = PUL_INIT_STD) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(int(embedding_dim), int(num_classes))
        nn.init.normal_(self.fc.weight, mean=0.0, std=init_std)
        nn.init.zeros_(self.fc.bias)

    @property
    def num_classes(self) -> int:
        """Number of pseudo-identities the head classifies."""
        return self.fc.out_features

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """Logits over the pseudo-identities."""
        return self.fc(self.dropout(emb))


class _WithHead(nn.Module):
    """``net`` plus a temporary head: ``forward(x) -> (embedding, head(embedding))``."""

    def __init__(self, net: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        emb = out[0] if isinstance(out, tuple) else out
        return emb, self.head(emb)


def _check_enough(n_images: int, n_ids: int, P: int, M: int, what: str, who: str,
                  m_setting: str, too_few: str) -> None:
    """TooFewSamplesError unless the images fill one P x M batch of at least 2 identities.

    ``who`` is what needs the images in the message, ``m_setting`` the setting of M, and
    ``too_few`` the fix when not even the smallest batch (2 identities x 2 images) fills.
    """
    if n_ids >= 2 and n_images >= P * M:
        return
    found = f"{what}: {n_images} images in {n_ids} identit{'y' if n_ids == 1 else 'ies'}"
    if n_ids < 2:
        raise TooFewSamplesError(
            f"{found}, but {who} needs at least 2 identities (a triplet needs a positive and a "
            f"negative): {too_few}")
    if n_images < 4:
        raise TooFewSamplesError(
            f"{found}, but {who} needs at least 4 images (the smallest batch is 2 identities "
            f"x 2 images): {too_few}")
    p, m = _smaller_batch(n_images, P, M)
    switches = f"--set {m_setting}={m}" + (f" --set batch_ids={p}" if p != P else "")
    # batch_ids also sets the source model's batches: changing it retrains the source model
    retrain = (" (a new batch_ids also trains the source model again)"
               if p != P and m_setting == "batch_instances" else "")
    raise TooFewSamplesError(
        f"{found}, but one batch of batch_ids x {m_setting} = {P}x{M} needs {P * M} images: lower "
        f"the batch, e.g. {switches}{retrain}"
    )


def _smaller_batch(n_images: int, P: int, M: int) -> tuple[int, int]:
    """A P' x M' batch that ``n_images`` (at least 4) fill, from P x M: M lowered first (not
    below 2), then P."""
    m = max(2, min(M, n_images // P))
    if P * m <= n_images:
        return P, m
    return n_images // 2, 2  # here 2 * P > n_images, so n_images // 2 < P


class _AllEpochs:
    """The batches of epochs ``0 .. epochs-1`` of a batch sampler, in one pass.

    One loader iterator then serves the whole training: its workers go on decoding across
    the epoch boundaries. A new iterator every epoch leaves the GPU idle at the start of
    each epoch while one worker decodes the first P x M images, a large share of a short
    epoch. The batches and their order are the same."""

    def __init__(self, sampler: Any, epochs: int) -> None:
        self.sampler, self.epochs = sampler, int(epochs)

    def __len__(self) -> int:
        return self.epochs * len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for epoch in range(self.epochs):
            self.sampler.set_epoch(epoch)
            yield from self.sampler


def _make_loader(dataset: ImageDataset, sampler: IdentitySampler, cfg: Config, device: torch.device,
                 seed: int, epochs: int) -> DataLoader:
    """The loader of ``epochs`` epochs of ``sampler``'s batches (this rank's share of each)."""
    workers = max(0, int(cfg.num_workers))
    return DataLoader(
        dataset,
        batch_sampler=_AllEpochs(distributed.batches(sampler), epochs),
        num_workers=workers,
        pin_memory=is_cuda(device),
        generator=make_generator(seed + distributed.rank()),
    )


def _run_epochs(
    model: nn.Module,
    loader: DataLoader,
    sampler: IdentitySampler,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    cfg: Config,
    device: torch.device,
    epochs: int,
    stage: str,
    progress: bool,
    log: Callable[[dict], object] | None,
    seed: int,
) -> dict[str, list]:
    """Shared loop: ``epochs`` passes over the P x M batches; returns per-epoch lists.

    Each batch arrives as uint8 images and is normalised and augmented on ``device``
    (:func:`~tcul_helpers.training.transforms.augment_batch`, its draws seeded by ``seed``).

    Under torchrun (:mod:`tcul_helpers.infra.distributed`) the model runs in DDP, the loader
    gives this rank its share of each batch, and the loss is that of the whole gathered
    batch, back-propagated N times over (DDP averages the N gradients)."""
    amp = use_amp(device, cfg.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    fmt = memory_format(device)
    cuda = is_cuda(device)
    history: dict[str, list] = {"epoch": [], "loss": [], "images_per_s": [], "seconds": []}
    guard = OverflowGuard(amp, stage)
    augmentation = make_generator(seed + distributed.rank())  # each rank its own draws
    net = distributed.wrap(model, device)
    scale = distributed.loss_scale()
    model.train()
    bar = tqdm(total=epochs * len(sampler), desc=stage, disable=not progress, leave=False)
    batches = iter(loader)  # every epoch's batches (_AllEpochs)
    try:
        for epoch in range(epochs):
            start = time.perf_counter()
            sums: dict[str, float] = {}
            n_batches = n_images = 0
            for batch in range(len(sampler)):
                images, labels, _index = next(batches)
                images = images.to(device, non_blocking=cuda, memory_format=fmt)
                images = augment_batch(normalize_batch(images), cfg, augmentation)
                labels = labels.to(device, non_blocking=cuda)
                with autocast(device, amp):
                    out = net(images)
                out, labels = distributed.gather_batch((out, labels))  # the whole P x M
                loss, parts = loss_fn(out, labels)
                value = distributed.agree(float(loss.detach()))  # every rank skips, or none
                optimizer.zero_grad(set_to_none=True)
                if guard.check(value, epoch, batch):  # a float16 overflow: skip this batch
                    bar.update(1)
                    continue
                scaler.scale(loss * scale).backward()
                scaler.step(optimizer)
                if amp:  # get_scale() waits for the GPU: only when there is a scale
                    scale_before = scaler.get_scale()
                    scaler.update()
                    guard.after_step(scale_before, scaler.get_scale())
                n_batches += 1
                n_images += labels.shape[0]  # the whole batch, on every rank
                for key, val in {"loss": value, **parts}.items():
                    sums[key] = sums.get(key, 0.0) + val
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{value:.3f}")
            if cuda:
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            record = {"epoch": epoch + 1, "seconds": seconds,
                      "amp_skipped_steps": guard.skipped,
                      "images_per_s": n_images / seconds if seconds > 0 else float("nan")}
            record.update({k: v / max(n_batches, 1) for k, v in sums.items()})
            for key, val in record.items():
                history.setdefault(key, []).append(val)
            if log is not None:
                log({"stage": stage, **record})
    finally:
        bar.close()
    distributed.broadcast_buffers(model)  # one model on every rank (BatchNorm statistics)
    return history


def train_source(
    records: Sequence[ImageRecord],
    cfg: Config,
    device: torch.device | str,
    progress: bool = True,
    log: Callable[[dict], object] | None = None,
    image_cache: ImageCache | bool | None = None,
    seed: int | None = None,
) -> tuple[ReidNet, dict]:
    """Train the baseline f_theta0 on labelled source ``records`` (step 1 of Algorithm 1).

    Loss: cross-entropy on the logits + batch-hard triplet loss (Eq. 4-5, margin
    ``cfg.source_margin``) on the embedding; Adam with ``cfg.source_lr``; P x M batches of
    ``cfg.batch_ids`` identities x ``cfg.num_instances_source`` images; training transforms
    (flip, random erasing); ``cfg.source_epochs`` epochs. Identities are relabelled to
    0..C-1 in sorted pid order. ``log`` (optional) is called with a dict after every epoch.

    Returns ``(model, history)``: the model in eval mode on ``device`` with its classifier,
    and per-epoch lists ``loss``, ``ce``, ``triplet``, ``accuracy`` (training batches),
    ``active_fraction`` (anchors with a positive triplet loss), ``images_per_s``,
    ``seconds``, plus ``num_classes`` and ``pids`` (the pid of each class).
    Seeds everything with ``seed`` (default ``cfg.seed``).
    """
    device = resolve_device(device)
    seed = cfg.seed if seed is None else int(seed)
    records = list(records)
    pids = np.array([r.pid for r in records], dtype=np.int64)
    classes, labels = np.unique(pids, return_inverse=True)
    P, M = cfg.batch_ids, cfg.num_instances_source
    _check_enough(len(records), len(classes), P, M, "source training", "the source dataset",
                  "num_instances_source",
                  "use another source dataset (--set source=NAME --set source_root=DIR)")
    seed_everything(seed)
    cache = resolve_cache(image_cache, len(records), cfg.height, cfg.width, cfg.num_workers)
    dataset = resized_dataset(records, cfg.height, cfg.width, labels, cache, progress)
    sampler = IdentitySampler(labels, P, M, seed=seed, epoch=cfg.epoch)
    model = build_model(cfg.arch, len(classes), cfg.embedding_dim, cfg.imagenet_init)
    model_to_device(model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.source_lr)

    def loss_fn(out, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        emb, logits = out
        total, ce, trip, mined = baseline_loss(emb, logits, y, cfg.source_margin,
                                               return_details=True)
        acc = float((logits.detach().argmax(1) == y).float().mean())
        return total, {"ce": float(ce.detach()), "triplet": float(trip.detach()),
                       "accuracy": acc, "active_fraction": mined.active_fraction}

    loader = _make_loader(dataset, sampler, cfg, device, seed, cfg.source_epochs)
    history = _run_epochs(model, loader, sampler, optimizer, loss_fn, cfg, device,
                          cfg.source_epochs, "source training", progress, log, seed)
    history["num_classes"] = len(classes)
    history["pids"] = classes.tolist()
    history["batches_per_epoch"] = len(sampler)
    model.eval()
    return model, history


def finetune(
    model: ReidNet,
    records: Sequence[ImageRecord],
    pseudo_labels: Sequence[int] | np.ndarray,
    cfg: Config,
    device: torch.device | str,
    progress: bool = True,
    image_cache: ImageCache | bool | None = None,
    seed: int | None = None,
    log: Callable[[dict], object] | None = None,
    triplet_loss: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] | None = None,
) -> dict:
    """Fine-tune ``model`` in place on the selected target images (step (d) of Algorithm 1).

    ``pseudo_labels[i]`` is the cluster ``l_i`` (Eq. 1-2) of ``records[i]``. Single-image
    pseudo-identities follow ``cfg.singletons`` (see :func:`apply_singleton_rule`). SGD
    (``cfg.target_lr``, ``cfg.momentum``, ``cfg.weight_decay``); random erasing + flip;
    P x M batches (``cfg.batch_ids`` x ``cfg.batch_instances``) over pseudo-labels;
    ``cfg.target_epochs`` epochs. The classifier is dropped first (the paper removes the
    last FC for target training). Seeds everything with ``seed`` (default ``cfg.seed``; pass
    e.g. ``cfg.seed + iteration`` for different augmentations in each iteration).

    Loss (``cfg.finetune_loss``): ``triplet`` - batch-hard triplet (Eq. 4-5, margin
    ``cfg.margin``) on the embedding, computed by ``triplet_loss(embeddings, labels, margin)``
    when given (a student's own Eq. 4-5, notebook 07), else by the kit's; ``softmax`` -
    cross-entropy through a new :class:`PseudoLabelClassifier` on the embedding, over the
    pseudo-identities left after the singleton rule, relabelled 0..K'-1 in sorted order
    (clusters with no kept image get no output). The head is trained with the network by
    the same optimiser and discarded at the end: ``model`` comes back without a classifier
    either way.

    Returns stats: ``epoch_loss`` (mean loss per epoch), ``loss`` (last epoch's),
    ``finetune_loss``, ``active_fraction`` per epoch (triplet) or ``accuracy`` per epoch
    (softmax: training batches, dropout on) and ``num_classes`` (K'), ``batches``,
    ``images``, ``images_per_s``, ``seconds``, ``num_images``/``num_ids`` (used),
    ``dropped_singletons``, ``P``, ``M``.
    Raises TooFewSamplesError when the images cannot fill one batch, NonFiniteLossError when
    the loss diverges.
    """
    device = resolve_device(device)
    seed = cfg.seed if seed is None else int(seed)
    if cfg.finetune_loss not in FINETUNE_LOSSES:
        raise TCULError(f"unknown finetune_loss {cfg.finetune_loss!r}: use one of "
                        f"{', '.join(FINETUNE_LOSSES)}")
    softmax = cfg.finetune_loss == "softmax"
    records = list(records)
    labels = np.asarray(pseudo_labels)
    if labels.ndim != 1 or len(labels) != len(records):
        raise TCULError(
            f"pseudo_labels has shape {labels.shape} but there are {len(records)} records: "
            "give one label per record"
        )
    keep = apply_singleton_rule(labels, cfg.singletons)
    used = [records[i] for i in keep]
    used_labels = labels[keep].astype(np.int64)
    if softmax:  # class indices of the fresh classifier: 0..K'-1, in sorted label order
        used_labels = np.unique(used_labels, return_inverse=True)[1].astype(np.int64)
    n_ids = len(np.unique(used_labels))
    P, M = cfg.batch_ids, cfg.batch_instances
    _check_enough(len(used), n_ids, P, M, "fine-tuning", "fine-tuning", "batch_instances",
                  "the selection kept too few; a looser one keeps more (a larger "
                  "--set lambda_fr, a lower --set sim_threshold, or --set singletons=replace)")
    seed_everything(seed)
    if isinstance(model, ReidNet):
        model.drop_classifier()
    model_to_device(model, device)
    trained: nn.Module = model
    params = list(model.parameters())
    if softmax:
        dim = int(getattr(model, "embedding_dim", cfg.embedding_dim))
        head = PseudoLabelClassifier(dim, n_ids).to(device)
        trained = _WithHead(model, head)
        params += list(head.parameters())
    cache = resolve_cache(image_cache, len(used), cfg.height, cfg.width, cfg.num_workers)
    dataset = resized_dataset(used, cfg.height, cfg.width, used_labels, cache, progress)
    sampler = IdentitySampler(used_labels, P, M, seed=seed, epoch=cfg.epoch)
    optimizer = torch.optim.SGD(params, lr=cfg.target_lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)

    def triplet_fn(out, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        emb = out[0] if isinstance(out, tuple) else out
        if triplet_loss is not None:
            return triplet_loss(emb, y, cfg.margin), {}
        loss, mined = batch_hard_triplet_loss(emb, y, cfg.margin, return_details=True)
        return loss, {"active_fraction": mined.active_fraction}

    def softmax_fn(out, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = out[1].float()
        loss = F.cross_entropy(logits, y)
        return loss, {"accuracy": float((logits.detach().argmax(1) == y).float().mean())}

    loader = _make_loader(dataset, sampler, cfg, device, seed, cfg.target_epochs)
    hist = _run_epochs(trained, loader, sampler, optimizer, softmax_fn if softmax else triplet_fn,
                       cfg, device, cfg.target_epochs, "fine-tuning", progress, log, seed)
    model.eval()
    seconds = float(sum(hist["seconds"]))
    batches = len(sampler) * cfg.target_epochs
    images = batches * sampler.batch_size
    stats = {
        "epoch_loss": hist["loss"],
        "loss": hist["loss"][-1] if hist["loss"] else float("nan"),
        "finetune_loss": cfg.finetune_loss,
        "active_fraction": hist.get("active_fraction", []),
        "batches": batches,
        "images": images,
        "images_per_s": images / seconds if seconds > 0 else float("nan"),
        "seconds": seconds,
        "num_images": len(used),
        "num_ids": n_ids,
        "dropped_singletons": len(records) - len(used),
        "P": sampler.P,
        "M": sampler.M,
    }
    if softmax:
        stats["accuracy"] = hist.get("accuracy", [])
        stats["num_classes"] = n_ids
    return stats
