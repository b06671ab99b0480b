"""The kit's one way to write a file: all of it or none of it, whoever else writes.

Every file the kit writes (histories, checkpoints, states, caches, reports, worlds'
manifests) goes through :func:`atomic_writer`: the bytes go to a temporary file with a
**unique** name in the same folder, are flushed to the disk (``fsync``), and only then
replace the destination in one step (``os.replace``, atomic on POSIX and Windows). So

* a kill at any instant leaves either the old file or the new one, never half of one;
* two processes writing the same file at once never share a temporary file: the last
  complete write wins and a reader always sees one whole version;
* a failed write (disk full, an exception while serialising) removes its temporary file
  and leaves the destination as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A file object that becomes ``path`` when the ``with`` block ends without an error.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text). The folder is created if needed.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_writer(path, "w") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | Path, data: Any, *, indent: int | None = 1, sort_keys: bool = False,
               default: Any = None) -> Path:
    """Write ``data`` as JSON (one trailing newline) to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys,
                                       default=default) + "\n")


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """``np.savez`` of ``arrays`` to ``path`` atomically (plain arrays only: it loads
    without pickle)."""
    with atomic_writer(path, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    return Path(path)


def torch_save(path: str | Path, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    with atomic_writer(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


__all__ = ["atomic_writer", "torch_save", "write_json", "write_npz", "write_text"]
