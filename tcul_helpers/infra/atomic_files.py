"""The kit's one way to write a file: all of it or none of it, whoever else writes.

Every file the kit writes (histories, checkpoints, states, caches, reports, worlds'
manifests) goes through :func:`atomic_writer`: the bytes go to a temporary file with a
**unique** name in the same folder, are flushed to the disk (``fsync``), and only then
replace the destination in one step (``os.replace``, atomic on POSIX and Windows). So

* a kill at any instant leaves either the old file or the new one, never half of one;
* two processes writing the same file at once never share a temporary file: the last
  complete write wins and a reader always sees one whole version;
* a failed write (disk full, an exception while serialising) removes its temporary file
  and leaves the destination as it was; an operating-system refusal (disk full, read-only
  or unwritable folder, a file where a folder should be) becomes :class:`WriteError`, one
  line naming the path and the way out.

:func:`check_writable` asks the same questions of an output folder *before* work starts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import TCULError

TMP_SUFFIX = ".tmp"


class WriteError(TCULError):
    """The operating system refused a write: disk full, read-only or unwritable folder."""


def write_error(path: str | Path, exc: OSError) -> WriteError:
    """One line for an OSError raised while writing ``path``: the problem and the fix."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        fix = "the disk is full: free some disk space, or choose another folder (--out / --runs)"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = ("the folder is read-only or not yours: choose a folder you can write to "
               "(--out / --runs)")
    elif code in (errno.ENOTDIR, errno.EEXIST):
        fix = "a file stands where a folder should be: choose another folder (--out / --runs)"
    else:
        fix = f"{exc.strerror or exc}: choose another folder (--out / --runs)"
    return WriteError(f"cannot write {path}: {fix}")


def check_writable(folder: str | Path, what: str = "output folder", need_bytes: int = 0) -> None:
    """Refuse, before any work, an output ``folder`` the kit could not write its results to:
    a file of that name, a read-only or unwritable folder (tried with a real temporary file,
    which also tells a read-only mount from a root user's permissions), or less free space
    than ``need_bytes``. TCULError (one line) if so; nothing is left behind."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WriteError(f"{what} {folder} is a file, not a folder: choose a folder "
                         "(--out / --runs)")
    probe_in = folder
    while not probe_in.exists():  # the nearest folder that exists is where it will be made
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise WriteError(f"{what} {folder}: {probe_in} is a file, not a folder: choose "
                         "another folder (--out / --runs)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", dir=probe_in)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise write_error(folder, exc) from None
    free = shutil.disk_usage(probe_in).free
    if need_bytes and free < need_bytes:
        raise WriteError(
            f"{what} {folder} has {free / 2**20:.0f} MB free but the run needs about "
            f"{need_bytes / 2**20:.0f} MB: free some disk space, or choose another folder "
            "(--out / --runs)")


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A file object that becomes ``path`` when the ``with`` block ends without an error.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text). The folder is created if needed.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        # text is UTF-8; a path in it that is not (bytes Python decoded as surrogates) is
        # written escaped, as the command line prints it, rather than failing the write
        text = {"encoding": "utf-8", "errors": "backslashreplace"} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise write_error(path, exc) from None
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


def read_json_cache(path: str | Path) -> dict | None:
    """The JSON object in the cache file ``path``, or None when the file is missing,
    unreadable, not UTF-8 JSON or not an object: a pure cache is then computed again."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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


__all__ = ["WriteError", "atomic_writer", "check_writable", "torch_save", "write_error",
           "write_json", "write_npz", "write_text"]
