"""Image transforms: resize, normalisation, and the paper's augmentation (flip, random erasing).

Each image is decoded and resized alone (:func:`build_resize`, to ``cfg.height x cfg.width``),
and stays uint8 until its batch is formed. The float work is done on the whole batch, on the
device that trains: :func:`normalize_batch` (ImageNet normalisation) and, for training,
:func:`augment_batch` (Sec. 4.1): a horizontal flip with probability ``cfg.flip``, then
random erasing with probability ``cfg.random_erasing`` (Zhong et al., as torchvision's
``RandomErasing``: an area of 2-33% of the image, aspect ratio 0.3-3.3, set to 0, i.e. the
ImageNet mean after normalisation). Each image of the batch gets its own random draws, from
a ``torch.Generator`` that the training loop seeds.
"""

from __future__ import annotations

import functools

import torch
from torchvision.transforms import v2

from ..infra.errors import TCULError
from ..settings.config import Config

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_probability(name: str, p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise TCULError(f"{name} must be a probability in [0, 1], got {p}")
    return float(p)


def build_resize(height: int, width: int) -> v2.Compose:
    """An image (PIL or uint8 ``3 x H x W`` tensor) -> a uint8 tensor resized to
    ``height x width`` (bilinear with antialiasing): the first step of :func:`build_transforms`.

    The image cache of :mod:`tcul_helpers.training.image_dataset` stores images after this step, so
    cached and freshly decoded images go through exactly the same pixels.
    """
    if height < 1 or width < 1:
        raise TCULError(f"bad image size {height}x{width}: use positive height and width")
    return v2.Compose([v2.ToImage(), v2.Resize((int(height), int(width)),
                                               interpolation=v2.InterpolationMode.BILINEAR,
                                               antialias=True)])


def build_transforms(cfg: Config, normalize: bool = True) -> v2.Compose:
    """One image (PIL or uint8 ``3 x H x W`` tensor) -> resized to ``cfg.height x cfg.width``
    and normalised (float32), as one image of a batch goes through :func:`normalize_batch`;
    ``normalize=False`` stops at the resized uint8 tensor (what the training and extraction
    loaders return)."""
    steps: list = [build_resize(cfg.height, cfg.width)]
    if normalize:
        steps += [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    return v2.Compose(steps)


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """A uint8 batch ``N x 3 x H x W`` (on its device) -> float32 ``(x / 255 - mean) / std``,
    the ImageNet normalisation; the memory format is kept."""
    mean, std = _mean_std_255(images.device)
    return (images.float() - mean) / std


#: random erasing's range of the erased area (a fraction of the image) and of its aspect
#: ratio (height / width), and how many boxes it draws until one fits (Zhong et al.)
ERASE_SCALE = (0.02, 0.33)
ERASE_RATIO = (0.3, 3.3)
ERASE_ATTEMPTS = 10


def augment_batch(images: torch.Tensor, cfg: Config, generator: torch.Generator) -> torch.Tensor:
    """The training augmentation of a normalised batch ``N x 3 x H x W``: each image flipped
    left-right with probability ``cfg.flip``, then one box of it erased (set to 0) with
    probability ``cfg.random_erasing``. The draws come from ``generator`` (on the CPU), so the
    same seed gives the same augmentation on every device."""
    flip = _check_probability("flip", cfg.flip)
    erase = _check_probability("random_erasing", cfg.random_erasing)
    n, _c, h, w = images.shape
    dev = images.device
    flipped = (torch.rand(n, generator=generator) < flip).to(dev)
    images = torch.where(flipped.view(n, 1, 1, 1), images.flip(-1), images)
    # each image's box as a mask, built on the device from the four numbers per image
    top, left, box_h, box_w = (t.to(dev).view(n, 1, 1)
                               for t in erasing_boxes(n, h, w, erase, generator))
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = ((rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w))
    return images.masked_fill(inside.unsqueeze(1), 0.0)


def erasing_boxes(n: int, height: int, width: int, p: float, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random erasing's box for each of ``n`` images: ``(top, left, box_h, box_w)``, each an
    int64 vector; ``box_h = box_w = 0`` where an image is not erased.

    An image is erased with probability ``p``. Its box is the first of
    :data:`ERASE_ATTEMPTS` draws that fits inside the image: an area drawn uniformly in
    :data:`ERASE_SCALE` of the image's, an aspect ratio drawn log-uniformly in
    :data:`ERASE_RATIO`, and a uniform position; when none fits, the image is left as is.
    """
    erased = torch.rand(n, generator=generator) < p
    area = height * width * torch.empty(n, ERASE_ATTEMPTS).uniform_(*ERASE_SCALE,
                                                                      generator=generator)
    log_ratio = torch.empty(n, ERASE_ATTEMPTS).uniform_(
        *(float(torch.tensor(r).log()) for r in ERASE_RATIO), generator=generator)
    box_h = torch.round(torch.sqrt(area * log_ratio.exp())).long()
    box_w = torch.round(torch.sqrt(area / log_ratio.exp())).long()
    fits = (box_h < height) & (box_w < width)
    first = fits.int().argmax(1, keepdim=True)  # the first attempt that fits (0 if none)
    box_h = box_h.gather(1, first).squeeze(1)
    box_w = box_w.gather(1, first).squeeze(1)
    keep = erased & fits.any(1)
    box_h, box_w = box_h * keep, box_w * keep
    u = torch.rand(2, n, generator=generator)
    top = (u[0] * (height - box_h + 1)).long()
    left = (u[1] * (width - box_w + 1)).long()
    return top, left, box_h, box_w


@functools.cache
def _mean_std_255(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet mean and std in pixel units, made once per device: building them from
    Python lists on every batch was a blocking host-to-GPU copy in the hot loop."""
    def per_channel(values: tuple[float, ...]) -> torch.Tensor:
        return (torch.tensor(values) * 255).view(1, 3, 1, 1).to(device)

    return per_channel(IMAGENET_MEAN), per_channel(IMAGENET_STD)
