"""Feature extraction: the embeddings ``z_i = f(x_i)`` of a list of images.

Step (a) of Algorithm 1 and the retrieval features of the evaluation. The rows follow the
order of ``records``; the features are the raw embeddings (the first FC of the head).
:func:`prepare_features` is the one place where they are L2-normalised, right after an
extraction, for the method (when ``cfg.l2_normalize``) and for the evaluation. Under
torchrun each rank extracts its contiguous share of ``records`` and every rank receives
all rows (:mod:`tcul_helpers.infra.distributed`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.records import ImageRecord
from ..infra import distributed
from ..infra.device import autocast, is_cuda, memory_format, resolve_device, use_amp
from ..infra.errors import TCULError
from ..infra.progress import tqdm
from ..settings.config import Config
from .image_dataset import ImageCache, resized_dataset, resolve_cache
from .transforms import normalize_batch


class NonFiniteFeaturesError(TCULError):
    """The model produced NaN or infinite features: training diverged."""


def prepare_features(z: np.ndarray, l2_normalize: bool) -> np.ndarray:
    """Extracted features ready for use: float32, finite (else
    :class:`NonFiniteFeaturesError`), and with ``l2_normalize`` every row divided by its
    norm (clamped at 1e-12)."""
    z = np.asarray(z, dtype=np.float32)
    if not np.isfinite(z).all():
        raise NonFiniteFeaturesError(
            "the model produced NaN or infinite features: training diverged; use the last "
            "good checkpoint or a lower learning rate")
    if l2_normalize:
        z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z


def _embedding_dim(model: nn.Module) -> int | None:
    dim = getattr(model, "embedding_dim", None)
    return int(dim) if dim is not None else None


def extract_features(
    model: nn.Module,
    records: Sequence[ImageRecord],
    cfg: Config,
    device: torch.device | str,
    progress: bool = True,
    image_cache: ImageCache | None = None,
) -> np.ndarray:
    """The embeddings ``f(x_i)`` of ``records`` as an N x D float32 array, in records order.

    Runs the model in eval mode under ``torch.inference_mode`` in batches of
    ``cfg.eval_batch_size`` (evaluation transforms: resize + normalise), with
    ``cfg.num_workers`` loader workers, channels-last inputs; on CUDA it pins memory and,
    when ``cfg.amp``, float16 autocast. The model's train/eval mode is restored afterwards.
    ``image_cache``: an :class:`ImageCache` (of the config's size) reuses decoded images
    across calls; ``None`` decodes each image for this single pass.
    """
    device = resolve_device(device)
    if cfg.eval_batch_size < 1:
        raise TCULError(f"eval_batch_size must be >= 1, got {cfg.eval_batch_size}")
    records = list(records)
    if not records:
        dim = _embedding_dim(model)
        if dim is None:
            raise TCULError("no records to extract features from: pass a non-empty list")
        return np.zeros((0, dim), dtype=np.float32)
    n = len(records)
    start, stop = distributed.shard_bounds(n)  # (0, n) in a single process
    records = records[start:stop]
    cache = None
    if image_cache is not None:
        cache = resolve_cache(image_cache, len(records), cfg.height, cfg.width,
                              cfg.num_workers)
    cuda = is_cuda(device)
    dataset = resized_dataset(records, cfg.height, cfg.width, cache=cache, progress=progress)
    workers = max(0, int(cfg.num_workers))
    loader = DataLoader(
        dataset,
        batch_size=cfg.eval_batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=cuda,
    )
    amp = use_amp(device, cfg.amp)
    fmt = memory_format(device)
    out = np.empty((len(records), _embedding_dim(model) or 0), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for images, _labels, index in tqdm(loader, desc="features", disable=not progress,
                                               leave=False):
                images = normalize_batch(images.to(device, non_blocking=cuda, memory_format=fmt))
                with autocast(device, amp):
                    emb = model(images)
                if isinstance(emb, tuple):
                    emb = emb[0]
                emb = emb.float().cpu().numpy()
                if out.shape[1] != emb.shape[1]:
                    out = np.empty((len(records), emb.shape[1]), dtype=np.float32)
                out[index.numpy()] = emb
    finally:
        model.train(was_training)
    return distributed.gather_rows(out, n)
