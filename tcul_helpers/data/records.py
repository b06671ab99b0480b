"""The image record: one detected person box with its identity, camera and frame id."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..infra.errors import TCULError


@dataclass(frozen=True)
class ImageRecord:
    """One image of a re-id dataset.

    Attributes:
        path: absolute path of the image file.
        pid: identity label. In a training split it is relabelled to 0..P-1; in query and
            gallery it is the dataset's own id (0 = distractor in Market-1501's gallery).
        camid: camera number as written in the file name (Market ``c3`` -> 3).
        frame: the frame id ``fid(x)`` of Eq. 3, comparable only inside one camera, or
            ``None`` when the dataset has no usable frame ids (MSMT17). For Market-1501 the
            sequences of one camera are laid end to end (see ``tcul_helpers.data.readers``).
        raw_pid: identity as written in the file name.
        sequence: Market-1501 sequence number ``sN`` (``None`` elsewhere).
        raw_frame: frame number as written in the file name (``None`` when absent).
    """

    path: str
    pid: int
    camid: int
    frame: int | None
    raw_pid: int
    sequence: int | None = None
    raw_frame: int | None = None


def pids_of(records: Sequence[ImageRecord]) -> np.ndarray:
    """The identity of every record, as an int64 array."""
    return np.array([r.pid for r in records], dtype=np.int64)


def camids_of(records: Sequence[ImageRecord]) -> np.ndarray:
    """The camera of every record, as an int64 array."""
    return np.array([r.camid for r in records], dtype=np.int64)


def frames_of(records: Sequence[ImageRecord]) -> np.ndarray | None:
    """The frame id ``fid(x)`` of every record, as an int64 array; ``None`` when a record
    has none (Eq. 3 cannot run)."""
    if not _all_have_frames(records):
        return None
    return np.array([r.frame for r in records], dtype=np.int64)


def _all_have_frames(records: Sequence[ImageRecord]) -> bool:
    return bool(records) and all(r.frame is not None for r in records)


@dataclass
class ReidDataset:
    """A re-id dataset: ``train``, ``query`` and ``gallery`` lists of :class:`ImageRecord`."""

    name: str
    root: str
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    extra: dict = field(default_factory=dict)
    _key: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_train_pids(self) -> int:
        """Number of identities in the training split."""
        return len({r.pid for r in self.train})

    @property
    def has_frames(self) -> bool:
        """True when every training image has a frame id (temporal selection is possible)."""
        return _all_have_frames(self.train)

    def content_key(self) -> str:
        """A short hash of what this dataset holds: every record's file name, identity,
        camera and frame; for a synthetic world its generation request (preset, seed, knobs
        and generator version, which decide the pixels); for a real folder every file's size
        and modification time, so that an image replaced under the same name (a
        re-extraction, a repaired file) makes other data. A run or a model is reused only on
        the data it was computed on. Computed once per dataset: a dataset read from its
        folder is a snapshot of it."""
        if self._key is None:
            self._key = self._content_hash()
        return self._key

    def _content_hash(self) -> str:
        h = hashlib.sha1()
        request = (self.extra.get("manifest") or {}).get("request")
        h.update(json.dumps(request, sort_keys=True).encode())
        for split in ("train", "query", "gallery"):
            h.update(f"|{split}|".encode())
            for r in getattr(self, split):
                h.update(f"{Path(r.path).name},{r.pid},{r.camid},{r.frame};".encode())
                if request is None:
                    h.update(_file_stamp(r.path))
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """Counts of identities, images and cameras per split."""
        out: dict = {"name": self.name, "root": self.root}
        for split in ("train", "query", "gallery"):
            recs = getattr(self, split)
            out[split] = {
                "ids": len({r.pid for r in recs}),
                "images": len(recs),
                "cameras": len({r.camid for r in recs}),
            }
        return out


def _file_stamp(path: str) -> bytes:
    """Size and modification time of an image file (read from the folder, not the pixels)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise TCULError(f"cannot read image {path} ({exc.strerror}): the dataset changed "
                        "while it was read; run the command again") from None
    return f"{st.st_size},{st.st_mtime_ns};".encode()
