"""Image transforms: resize, the paper's augmentation (flip, random erasing), normalisation.

Training (Sec. 4.1): resize to ``cfg.height x cfg.width``, horizontal flip with probability
``cfg.flip``, ImageNet normalisation, then random erasing with probability
``cfg.random_erasing`` (Zhong et al.; erased pixels are set to 0, i.e. the ImageNet mean
after normalisation). Evaluation: resize and normalise only. All of it is torchvision's
``transforms.v2``; the random choices use torch's global generator (or the DataLoader
worker's), so they follow :func:`tcul_helpers.infra.device.seed_everything`.

On a GPU the loader workers stop at uint8 (``normalize=False``) and :func:`normalize_batch`
converts and normalises the whole batch on the device: the float work leaves the CPU (it
was about half of a worker's time per 256x128 image) and a quarter of the bytes cross to
the GPU. Random erasing then writes the mean pixel, which normalises to 0 up to rounding
(at most 0.009). The CPU path is unchanged.
"""

from __future__ import annotations

import functools

import torch
from torchvision.transforms import v2

from ..infra.errors import TCULError
from ..settings.config import Config

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the ImageNet mean as a uint8 pixel: what random erasing writes before normalisation
IMAGENET_MEAN_UINT8 = tuple(round(255 * m) for m in IMAGENET_MEAN)


def _check_probability(name: str, p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise TCULError(f"{name} must be a probability in [0, 1], got {p}")
    return float(p)


def build_resize(height: int, width: int) -> v2.Resize:
    """The resize step alone (bilinear with antialiasing), as used by :func:`build_transforms`.

    The image cache of :mod:`tcul_helpers.training.image_dataset` stores images after this step, so
    cached and freshly decoded images go through exactly the same pixels.
    """
    if height < 1 or width < 1:
        raise TCULError(f"bad image size {height}x{width}: use positive height and width")
    return v2.Resize((int(height), int(width)), interpolation=v2.InterpolationMode.BILINEAR,
                     antialias=True)


def build_transforms(cfg: Config, train: bool, normalize: bool = True) -> v2.Compose:
    """Transforms for a PIL image or a uint8 ``3 x H x W`` tensor -> normalised float tensor
    (``normalize=False``: a uint8 tensor, for :func:`normalize_batch` on the GPU).

    ``train=True`` adds horizontal flip (``p=cfg.flip``) and random erasing
    (``p=cfg.random_erasing``), the augmentation of the paper's fine-tuning step.
    """
    steps: list = [
        v2.ToImage(),
        build_resize(cfg.height, cfg.width),
    ]
    if train:
        flip = _check_probability("flip", cfg.flip)
        if flip > 0:
            steps.append(v2.RandomHorizontalFlip(p=flip))
    if normalize:
        steps += [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    if train:
        erase = _check_probability("random_erasing", cfg.random_erasing)
        if erase > 0:
            steps.append(v2.RandomErasing(p=erase, scale=(0.02, 0.33), ratio=(0.3, 3.3),
                                          value=0 if normalize else list(IMAGENET_MEAN_UINT8)))
    return v2.Compose(steps)


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """A uint8 batch ``N x 3 x H x W`` (on its device) as :func:`build_transforms` would have
    normalised it on the CPU: float32, ``(x / 255 - mean) / std``; the memory format is kept."""
    mean, std = _mean_std_255(images.device)
    return (images.float() - mean) / std


@functools.cache
def _mean_std_255(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet mean and std in pixel units, made once per device: building them from
    Python lists on every batch was a blocking host-to-GPU copy in the hot loop."""
    def per_channel(values: tuple[float, ...]) -> torch.Tensor:
        return (torch.tensor(values) * 255).view(1, 3, 1, 1).to(device)

    return per_channel(IMAGENET_MEAN), per_channel(IMAGENET_STD)
