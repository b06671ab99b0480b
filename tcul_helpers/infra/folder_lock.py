"""One writer per folder: a run folder, a source-model folder or a world root.

:func:`folder_lock` takes an exclusive lock on ``<folder>/.lock`` for as long as a stage
writes there. A second writer does not mix its files in: it waits up to ``wait`` seconds,
then stops with one line naming the owner (pid, host, command) and the way out. The lock is
the operating system's (``fcntl.flock``), so it ends with its process however that process
ends (Ctrl-C, kill -9, a closed laptop lid followed by a reboot): there is no stale lock to
clean up. The file's text only says who holds it, for the message.

On systems without ``fcntl`` (Windows) the lock is a no-op: one writer per folder is then
the user's to keep.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .atomic_files import write_error
from .errors import TCULError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
_HELD: dict[str, int] = {}  # lock files this process holds -> depth (the lock is re-entrant)


class FolderBusyError(TCULError):
    """Another process is writing in the folder."""


def _owner(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process"


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "folder", wait: float = 0.0,
                poll: float = 0.5, lock_path: str | Path | None = None,
                log: Callable[[str], object] | None = None) -> Iterator[Path]:
    """Hold the exclusive write lock of ``folder`` in the ``with`` block.

    The lock file is ``<folder>/.lock`` (created with the folder) or ``lock_path``. ``what``
    names the folder in the message (``run folder``, ``world``); ``wait`` is how many
    seconds to wait for another owner (``log`` hears once that it waits) before
    :class:`FolderBusyError`. Re-entrant within one process.
    """
    folder = Path(folder)
    path = Path(lock_path) if lock_path is not None else folder / LOCK_NAME
    if folder.exists() and not folder.is_dir():
        raise TCULError(f"{what} {folder} is a file, not a folder: choose a folder "
                        "(--out / --runs)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path.parent, exc) from None
    key = str(path.resolve())
    if fcntl is None or key in _HELD:  # Windows, or this process holds it already
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_error(path.parent, exc) from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FolderBusyError(
                        f"{what} {folder} is being written by {_owner(path)}: wait until it "
                        "finishes, or use another output folder"
                    ) from None
                if log and not told:
                    log(f"waiting for {_owner(path)} to finish writing {what} {folder}")
                    told = True
                time.sleep(poll)
        cmd = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:120] if sys.argv else ""
        os.ftruncate(fd, 0)
        # a path in the command line may hold bytes that are not UTF-8 (decoded by Python as
        # surrogates): the lock's note keeps them escaped instead of failing the command
        note = f"pid {os.getpid()} on {socket.gethostname()} ({cmd})\n"
        os.pwrite(fd, note.encode("utf-8", "backslashreplace"), 0)
        _HELD[key] = 1
        try:
            yield path
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["LOCK_NAME", "FolderBusyError", "folder_lock"]
