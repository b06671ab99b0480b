"""Device choice, seeding and the speed switches (channels-last, AMP on CUDA).

Every random step of the kit takes a seed; :func:`seed_everything` seeds Python, NumPy and
torch (CPU and CUDA) at once so that the same seed on CPU gives the same numbers.
Images and convolution weights are laid out channels-last on every device (on a CPU,
oneDNN's convolutions are faster that way: ``benchmarks/bench_archs.py --formats``).
Mixed precision (float16 autocast) is used on CUDA only.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from .errors import TCULError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.

    ``"cuda:1"`` style names are accepted too. Asking for CUDA on a machine without it raises
    :class:`~tcul_helpers.infra.errors.TCULError`.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise TCULError(f"bad device {name!r}: use one of {', '.join(DEVICE_CHOICES)}")
    key = name.strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise TCULError(
                f"device {name!r} requested but CUDA is not available: set device=cpu or auto"
            )
        dev = torch.device(key)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise TCULError(
                f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices): "
                "use cuda or cuda:0"
            )
        return dev
    raise TCULError(f"bad device {name!r}: use one of {', '.join(DEVICE_CHOICES)}")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device) with ``seed``.

    With ``deterministic=True`` torch is also asked for deterministic algorithms
    (``torch.use_deterministic_algorithms(True, warn_only=True)``, cuDNN benchmark off);
    on a CPU the kit's training is reproducible without it.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TCULError(f"bad seed {seed!r}: use an integer, e.g. seed=0")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for DataLoader worker seeds)."""
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def is_cuda(device: torch.device | str) -> bool:
    """True when ``device`` is a CUDA device."""
    return torch.device(device).type == "cuda"


def use_amp(device: torch.device | str, amp: bool = True) -> bool:
    """Whether mixed precision is used: only when asked for (``cfg.amp``) and on CUDA."""
    return bool(amp) and is_cuda(device)


@contextlib.contextmanager
def autocast(device: torch.device | str, enabled: bool) -> Iterator[None]:
    """``torch.autocast`` (float16) on CUDA when ``enabled``; a no-op context otherwise."""
    if enabled and is_cuda(device):
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            yield
    else:
        yield


def memory_format(device: torch.device | str) -> torch.memory_format:
    """The memory format of images and models on ``device``: ``torch.channels_last`` (CUDA
    with AMP, and oneDNN's CPU convolutions, are faster that way)."""
    del device  # the same on every device the kit runs on
    return torch.channels_last
