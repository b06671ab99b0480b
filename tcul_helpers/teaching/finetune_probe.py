"""A few SGD steps of step (d), watched batch by batch (notebook 05).

Algorithm 1's step (d) fine-tunes ``f_theta`` with the batch-hard triplet loss (Eq. 4-5) on
the reliable images and their pseudo-labels. :func:`probe_finetune` runs a short version of
it, ``steps`` SGD steps with the settings of :func:`tcul_helpers.training.loops.finetune` (the
classifier dropped, flip + random erasing, P x M batches over pseudo-labels, SGD with
``cfg.target_lr``, ``cfg.momentum``, ``cfg.weight_decay``), on a *copy* of the model, and
records for every batch what online hard mining chose, held against the true identities
that the method never sees:

* ``wrong_positive``: the fraction of anchors whose hardest positive ``p*`` (same
  pseudo-label, farthest) is **another person**: the loss then pulls two people together;
* ``wrong_negative``: the fraction whose hardest negative ``n*`` (other pseudo-label,
  closest) is **the same person**: the loss pushes one person apart.

:func:`mined_distances` embeds fixed P x M batches without augmentation and returns
``d(a, p*)`` and ``d(a, n*)`` per anchor, to compare a model before and after the steps.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.records import ImageRecord
from ..infra.device import make_generator, memory_format, resolve_device, seed_everything
from ..infra.errors import TCULError
from ..infra.progress import tqdm
from ..method.triplet_loss import TripletMining, batch_hard_triplet_loss
from ..settings.config import Config
from ..training.features import extract_features
from ..training.image_dataset import ImageCache, resized_dataset
from ..training.models import ReidNet, model_to_device
from ..training.sampler import IdentitySampler, apply_singleton_rule
from ..training.transforms import augment_batch, normalize_batch


@dataclass
class ProbeResult:
    """Per-step records of :func:`probe_finetune` and the fine-tuned copy of the model."""

    model: ReidNet
    loss: list[float] = field(default_factory=list)
    active_fraction: list[float] = field(default_factory=list)
    wrong_positive: list[float] = field(default_factory=list)
    wrong_negative: list[float] = field(default_factory=list)
    num_images: int = 0
    num_ids: int = 0
    seconds: float = 0.0


def mining_errors(mined: TripletMining, truth: np.ndarray) -> tuple[float, float]:
    """``(wrong_positive, wrong_negative)`` of one mined batch: the fraction of valid anchors
    whose hardest positive is another true identity, and whose hardest negative is the same
    one. ``truth[b]`` is the true identity of batch image ``b``."""
    valid = mined.valid.numpy()
    if not valid.any():
        return float("nan"), float("nan")
    a = np.flatnonzero(valid)
    pos, neg = mined.positive.numpy()[a], mined.negative.numpy()[a]
    return float(np.mean(truth[pos] != truth[a])), float(np.mean(truth[neg] == truth[a]))


def _usable(records: Sequence[ImageRecord], pseudo_labels: np.ndarray, cfg: Config):
    labels = np.asarray(pseudo_labels)
    if labels.ndim != 1 or len(labels) != len(records):
        raise TCULError(f"pseudo_labels has shape {labels.shape} but there are {len(records)} "
                        "records: give one label per record")
    keep = apply_singleton_rule(labels, cfg.singletons)
    if len(np.unique(labels[keep])) < 2 or len(keep) < cfg.batch_ids * cfg.batch_instances:
        raise TCULError(f"{len(keep)} images in {len(np.unique(labels[keep]))} pseudo-identities "
                        f"cannot fill one {cfg.batch_ids}x{cfg.batch_instances} batch: keep more "
                        "images (a larger lambda_fr) or lower batch_ids")
    return keep, labels[keep].astype(np.int64)


def probe_finetune(
    model: ReidNet,
    records: Sequence[ImageRecord],
    pseudo_labels: Sequence[int] | np.ndarray,
    true_ids: Sequence[int] | np.ndarray,
    cfg: Config,
    steps: int = 40,
    seed: int = 0,
    progress: bool = True,
) -> ProbeResult:
    """``steps`` SGD steps of Eq. 4-5 on a copy of ``model`` (``model`` itself is unchanged).

    ``records[i]`` has pseudo-label ``pseudo_labels[i]`` (the reliable images of step (c))
    and true identity ``true_ids[i]`` (only measured, never used for training). Returns a
    :class:`ProbeResult` with one entry per step in ``loss``, ``active_fraction``,
    ``wrong_positive`` and ``wrong_negative``. Same seed, same numbers on a CPU.
    """
    if steps < 1:
        raise TCULError(f"steps must be at least 1, got {steps}")
    records = list(records)
    keep, labels = _usable(records, np.asarray(pseudo_labels), cfg)
    truth = np.asarray(true_ids)[keep]  # aligned with labels and the dataset
    device = resolve_device(cfg.device)
    seed_everything(seed)
    net = model_to_device(copy.deepcopy(model).drop_classifier(), device)
    dataset = resized_dataset([records[i] for i in keep], cfg.height, cfg.width, labels,
                              cache=ImageCache(cfg.height, cfg.width))
    augmentation = make_generator(seed)
    sampler = IdentitySampler(labels, cfg.batch_ids, cfg.batch_instances, seed=seed,
                              epoch=cfg.epoch)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.target_lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    out = ProbeResult(net, num_images=len(keep), num_ids=int(sampler.num_ids))
    net.train()
    bar = tqdm(total=steps, desc="fine-tuning steps", disable=not progress, leave=False)
    epoch, batches = 0, iter(())
    start = time.perf_counter()
    try:
        for _ in range(steps):
            batch = next(batches, None)
            if batch is None:  # next pass over the reliable images
                sampler.set_epoch(epoch)
                epoch += 1
                batches = iter(sampler.batches())
                batch = next(batches)
            images = torch.stack([dataset[i][0] for i in batch]).to(
                device, memory_format=memory_format(device))  # the copy's memory format
            images = augment_batch(normalize_batch(images), cfg, augmentation)
            y = torch.from_numpy(labels[batch]).to(device)
            emb = net(images)
            emb = emb[0] if isinstance(emb, tuple) else emb
            loss, mined = batch_hard_triplet_loss(emb, y, cfg.margin, return_details=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            wp, wn = mining_errors(mined, truth[batch])
            out.loss.append(float(loss.detach()))
            out.active_fraction.append(mined.active_fraction)
            out.wrong_positive.append(wp)
            out.wrong_negative.append(wn)
            bar.update(1)
    finally:
        bar.close()
    net.eval()
    out.seconds = time.perf_counter() - start
    return out


def mined_distances(
    model: ReidNet,
    records: Sequence[ImageRecord],
    pseudo_labels: Sequence[int] | np.ndarray,
    cfg: Config,
    true_ids: Sequence[int] | np.ndarray | None = None,
    n_batches: int = 10,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``d(a, p*)`` and ``d(a, n*)`` (Euclidean, on the embedding the loss sees) for every
    valid anchor of the first ``n_batches`` P x M batches over ``pseudo_labels`` (drawn with
    ``seed``, no augmentation). Returns ``{"d_ap", "d_an", "index"}``; ``index`` is the
    anchor's position in ``records``. With ``true_ids`` also ``"positive_is_same"``: whether
    the anchor's hardest positive is the same person."""
    records = list(records)
    keep, labels = _usable(records, np.asarray(pseudo_labels), cfg)
    batches = IdentitySampler(labels, cfg.batch_ids, cfg.batch_instances, seed=seed).batches()
    batches = batches[:n_batches]
    used = sorted({i for b in batches for i in b})
    z = extract_features(model, [records[keep[i]] for i in used], cfg, resolve_device(cfg.device),
                         progress=False)
    row = {i: r for r, i in enumerate(used)}
    d_ap, d_an, index, same = [], [], [], []
    for b in batches:
        emb = torch.from_numpy(z[[row[i] for i in b]])
        _, mined = batch_hard_triplet_loss(emb, torch.from_numpy(labels[b]), cfg.margin,
                                           return_details=True)
        ok = mined.valid.numpy()
        d_ap.append(mined.d_ap.numpy()[ok])
        d_an.append(mined.d_an.numpy()[ok])
        anchors = keep[np.asarray(b)]
        index.append(anchors[ok])
        same.append(anchors[mined.positive.numpy()[ok]])
    out = {"d_ap": np.concatenate(d_ap), "d_an": np.concatenate(d_an),
           "index": np.concatenate(index)}
    if true_ids is not None:
        truth = np.asarray(true_ids)
        out["positive_is_same"] = truth[np.concatenate(same)] == truth[out["index"]]
    return out


__all__ = ["ProbeResult", "mined_distances", "mining_errors", "probe_finetune"]
