"""A torch ``Dataset`` over image records, with an optional in-memory image cache.

Each item is ``(image tensor, label, index)``: ``label`` is the record's ``pid`` or, when a
``labels`` array is given, that array's entry (the pseudo-labels ``l_i`` of Eq. 1-2 during
target fine-tuning); ``index`` is the position in ``records``, so a batch can be traced back
to its images.

CPU training epochs should not decode the same JPEGs again and again: with ``cache=True``
(or a shared :class:`ImageCache`) every image is decoded once, resized to the network's
input size and kept as a uint8 ``3 x H x W`` tensor (64x32 RGB: 6 KB an image).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..data.records import ImageRecord
from ..infra.errors import TCULError
from ..infra.progress import tqdm
from .transforms import build_resize


def load_image(path: str) -> Image.Image:
    """Decode the image file ``path`` as an RGB PIL image; unreadable -> TCULError naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise TCULError(
            f"image file not found: {path}: check the dataset root or regenerate the data"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise TCULError(
            f"cannot read image {path} ({type(exc).__name__}: {exc}): replace it with a good "
            "copy (extract the dataset again), or move it out of the dataset folder"
        ) from None


class ImageCache:
    """Decoded images resized to ``(height, width)``, kept as uint8 ``3 x H x W`` tensors.

    One cache can be shared by several datasets (source training, feature extraction and
    every fine-tuning iteration of the same target set) so each JPEG is decoded once.
    """

    def __init__(self, height: int, width: int) -> None:
        self.size = (int(height), int(width))
        self._resize = build_resize(*self.size)
        self._images: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, path: object) -> bool:
        return path in self._images

    @property
    def nbytes(self) -> int:
        """Memory held by the cached pixels, in bytes."""
        return sum(t.numel() for t in self._images.values())

    def get(self, path: str) -> torch.Tensor:
        """The resized uint8 image of ``path``, decoding and storing it on first use."""
        img = self._images.get(path)
        if img is None:
            img = self._resize(load_image(path)).as_subclass(torch.Tensor).contiguous()
            self._images[path] = img
        return img

    def preload(self, paths: Iterable[str], progress: bool = True) -> None:
        """Decode every path not cached yet (shown with a progress bar)."""
        todo = [p for p in dict.fromkeys(paths) if p not in self._images]
        for path in tqdm(todo, desc="decoding images", disable=not progress or not todo,
                         leave=False):
            self.get(path)


#: ``cache=None`` (auto) caches when the decoded images need at most this many bytes
AUTO_CACHE_BYTES = 1 << 30


def resolve_cache(
    spec: ImageCache | bool | None, n_images: int, height: int, width: int, workers: int = 0
) -> ImageCache | None:
    """The cache to use: an :class:`ImageCache` as given, ``True`` a new one, ``False`` none,
    ``None`` (auto) a new one when ``n_images`` decoded images fit in
    :data:`AUTO_CACHE_BYTES` and there are no loader ``workers``. With workers (the GPU
    profiles' ``num_workers``) auto means no cache: the workers decode in parallel, where a
    cache would be filled serially in the main process and copied into every worker."""
    if isinstance(spec, ImageCache):
        if spec.size != (height, width):
            raise TCULError(
                f"image cache holds {spec.size[0]}x{spec.size[1]} images but {height}x{width} "
                "are needed: use a cache of the config's size"
            )
        return spec
    if spec is None:
        spec = workers == 0 and n_images * height * width * 3 <= AUTO_CACHE_BYTES
    return ImageCache(height, width) if spec else None


def _as_labels(labels: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != n:
        raise TCULError(
            f"labels has shape {arr.shape} but there are {n} records: give one label per record"
        )
    if n and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise TCULError(f"labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


class ImageDataset(Dataset):
    """``records[i] -> (transform(image), label, i)``, label from ``labels`` or ``record.pid``.

    Args:
        records: the images.
        transform: applied to a uint8 ``3 x H x W`` tensor (cached) or a PIL image; ``None``
            returns the uint8 tensor as is.
        labels: optional integer array, one per record (pseudo-labels); default ``pid``.
        cache: ``True`` decodes every image once now into a new :class:`ImageCache` of size
            ``image_size``; an :class:`ImageCache` is used (and filled) as given.
        image_size: ``(height, width)`` for ``cache=True``.
        progress: show a progress bar while filling the cache.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        cache: bool | ImageCache = False,
        image_size: tuple[int, int] | None = None,
        progress: bool = False,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        if labels is None:
            self.labels = np.array([r.pid for r in self.records], dtype=np.int64)
        else:
            self.labels = _as_labels(labels, len(self.records))
        if isinstance(cache, ImageCache):
            self.cache: ImageCache | None = cache
        elif cache:
            if image_size is None:
                raise TCULError("cache=True needs image_size=(height, width), e.g. (64, 32)")
            self.cache = ImageCache(*image_size)
        else:
            self.cache = None
        if self.cache is not None:
            self.cache.preload((r.path for r in self.records), progress=progress)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> torch.Tensor | Image.Image:
        """The image of record ``index`` before the transform (cached tensor or PIL image)."""
        path = self.records[index].path
        if self.cache is not None:
            return self.cache.get(path)
        img = load_image(path)
        return img if self.transform is not None else v2.functional.pil_to_tensor(img)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        img = self.load(index)
        if self.transform is not None:
            img = self.transform(img)
        if isinstance(img, torch.Tensor):
            img = img.as_subclass(torch.Tensor)
        return img, int(self.labels[index]), int(index)


def resized_dataset(
    records: Sequence[ImageRecord],
    height: int,
    width: int,
    labels: Sequence[int] | np.ndarray | None = None,
    cache: ImageCache | None = None,
    progress: bool = False,
) -> ImageDataset:
    """``records[i] -> (uint8 3 x height x width, label, i)``: the images as a batch is formed
    from them, before normalisation and augmentation (done per batch, on the device:
    :mod:`tcul_helpers.training.transforms`). With a ``cache`` every image is decoded and
    resized once, now; without one, each time it is loaded (in the loader's workers)."""
    resize = None if cache is not None else build_resize(height, width)
    return ImageDataset(records, resize, labels=labels,
                        cache=cache if cache is not None else False, progress=progress)
