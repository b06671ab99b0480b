"""The run store: one adaptation run's folder, written so that a kill at any instant loses
nothing already committed.

A run folder holds ``config.json`` (the settings), ``history.json`` (the baseline and one
record per completed iteration: the commit point), ``model_last.pt`` (the last model),
``state.npz`` (the centres ``{c_k}`` and features ``z`` the next iteration starts from) and
``trace.npz`` (per iteration ``t``: ``labels_t``, ``kept_t``, ``centers_t``; ``centers_0``).
:class:`RunStore` writes them for :func:`tcul_helpers.experiment.runner.adapt`; the functions below
read them for the demo, the command line and the notebooks. A run is reused only for the
settings (:func:`tcul_helpers.settings.config.fingerprint`) and the data it was computed on.

Under torchrun only rank 0 reads and writes the folder; the other ranks hold the same
history in memory (broadcast from rank 0) and their writes are no-ops.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.records import ReidDataset, camids_of, pids_of
from ..infra import distributed
from ..infra.atomic_files import WriteError, check_writable, write_json, write_npz
from ..infra.errors import TCULError
from ..measurement.metrics import camera_pair_scores
from ..settings.config import NOT_OURS, Config, deciding_settings, fingerprint
from ..training.models import ReidNet, load_checkpoint, save_checkpoint

HISTORY = "history.json"
CONFIG = "config.json"
STATE = "state.npz"
CHECKPOINT = "model_last.pt"
TRACE = "trace.npz"
#: An iteration is committed in three steps (:meth:`RunStore.commit`): its checkpoint, state and
#: trace are written under these names, then the history records the iteration (the commit
#: point), then the files take their final names. A kill at any instant leaves either
#: iteration k-1 or iteration k on disk; the next run rolls the pending files forward (the
#: history names k) or throws them away (it names k-1).
PENDING = {CHECKPOINT: "model_last.next.pt", STATE: "state.next.npz", TRACE: "trace.next.npz"}
STAMP = "_iteration"  # the iteration a state or trace file belongs to


def _clean(v: Any) -> Any:
    """JSON-safe value: NaN -> None, numpy scalars -> Python numbers."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


class RunStore:
    """The run folder: configuration, history, state and checkpoint, written atomically.

    Under torchrun only rank 0 reads and writes it; the other ranks hold the same history
    in memory (broadcast from rank 0) and their writes are no-ops."""

    def __init__(self, run_dir: Path, cfg: Config, fresh: bool, data_key: str) -> None:
        self.dir = run_dir
        self.cfg = cfg
        self.data: dict = distributed.on_main(self._open, fresh, data_key)
        self.trace: dict[str, np.ndarray] = {}  # read by recover()

    def _open(self, fresh: bool, data_key: str) -> dict:
        run_dir, cfg = self.dir, self.cfg
        run_dir.mkdir(parents=True, exist_ok=True)
        hist_path = run_dir / HISTORY
        if not hist_path.exists() and (run_dir / CONFIG).exists():
            Config.load(run_dir / CONFIG)  # a config.json not of the kit's is never replaced
        if fresh:
            for name in (HISTORY, CONFIG, STATE, CHECKPOINT, TRACE, *PENDING.values()):
                (run_dir / name).unlink(missing_ok=True)
        if hist_path.exists():
            self.data = read_history(hist_path)
            old = Config.load(run_dir / CONFIG)
            if fingerprint(old) != fingerprint(cfg):
                have, want = deciding_settings(old), deciding_settings(cfg)
                diff = sorted(k for k in want.keys() | have.keys() if have.get(k) != want.get(k))
                raise TCULError(
                    f"{run_dir} holds a run with other settings ({', '.join(diff)}): choose "
                    "another output folder (--out DIR), which keeps that run"
                )
            if self.data.get("data_key") != data_key:
                raise TCULError(
                    f"{run_dir} holds a run on other data (another dataset, or its files "
                    "have changed since): choose another output folder (--out DIR), which "
                    "keeps that run"
                )
        else:
            self.data = {"status": "new", "baseline": {}, "iterations": []}
        self.data["data_key"] = data_key
        cfg.save(run_dir / CONFIG)
        return self.data

    @property
    def iterations(self) -> list[dict]:
        return self.data["iterations"]

    def save_history(self, status: str) -> None:
        self.data["status"] = status
        distributed.main_only(write_json, self.dir / HISTORY, _clean(self.data))

    def reset(self) -> None:
        """Forget every iteration: the run starts again from its initialisation."""
        self.data["iterations"] = []
        self.trace = {}

    def diverged(self, it: int, exc: TCULError) -> TCULError:
        """Record that iteration ``it`` diverged (status ``diverged``, the last good
        checkpoint kept) and return the error to raise, prefixed with the iteration."""
        self.data["error"] = str(exc)
        self.save_history("diverged")
        return type(exc)(f"iteration {it}: {exc}")

    def commit(self, it: int, model: ReidNet, centers: np.ndarray, z: np.ndarray,
               arrays: dict[str, np.ndarray], record: dict | None) -> None:
        """Store iteration ``it`` (0: the initialisation) as one step: its model, the state
        (``centers``, ``z``) the next iteration starts from, its ``arrays`` added to the
        trace, and its ``record`` added to the history. See :data:`PENDING`."""
        self.trace.update(arrays)
        if record is not None:
            self.iterations.append(record)
        distributed.main_only(self._write, it, model, centers, z, self.trace)

    def _write(self, it: int, model: ReidNet, centers: np.ndarray, z: np.ndarray,
               trace: dict[str, np.ndarray]) -> None:
        stamp = {STAMP: np.int64(it)}
        save_checkpoint(self.dir / PENDING[CHECKPOINT], model, {"iteration": it},
                        input_size=(self.cfg.height, self.cfg.width))
        write_npz(self.dir / PENDING[STATE], centers=centers, features=z, **stamp)
        write_npz(self.dir / PENDING[TRACE], **trace, **stamp)
        _COMMIT_HOOK("staged", it)
        self.data["status"] = "running"
        write_json(self.dir / HISTORY, _clean(self.data))  # the commit point
        _COMMIT_HOOK("recorded", it)
        self._promote()

    def _promote(self) -> None:
        for final, pending in PENDING.items():
            if (self.dir / pending).exists():
                os.replace(self.dir / pending, self.dir / final)
                _COMMIT_HOOK(f"promoted {final}", len(self.iterations))

    def recover(self) -> tuple[int, bool]:
        """Finish or undo an interrupted commit; return the number of completed iterations
        and whether the checkpoint and state of the last one are on disk (rank 0 looks).

        Pending files of the iteration the history records are moved into place (the kill
        came after the commit point); those of a later one are deleted (it came before).
        Then the checkpoint and the state must belong to the recorded iteration, else
        TCULError (one line, the fix: ``--fresh``)."""
        done, stored = distributed.on_main(self._recover)
        path = self.dir / TRACE
        if distributed.is_main() and path.exists():
            self.trace = read_arrays(path)
        return done, stored

    def _recover(self) -> tuple[int, bool]:
        """:meth:`recover` on rank 0."""
        done = len(self.iterations)
        for name in PENDING.values():
            path = self.dir / name
            if path.exists() and _stamp(path) != done:
                path.unlink()
        self._promote()
        if not (self.dir / CHECKPOINT).exists() or not (self.dir / STATE).exists():
            return done, False
        for name in (CHECKPOINT, STATE):
            have = _stamp(self.dir / name)
            if have is not None and have != done:
                raise TCULError(
                    f"{self.dir / name} holds iteration {have} but {HISTORY} records {done} "
                    "complete: the run folder was changed by hand; start over (--fresh)"
                )
        return done, True


def _commit_hook_default(step: str, iteration: int) -> None:
    """Called between the write steps of :meth:`RunStore.commit`; tests replace it to kill the
    process at every boundary."""


_COMMIT_HOOK: Callable[[str, int], None] = _commit_hook_default


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a state / trace file, without its stamp; TCULError if unreadable."""
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files if k != STAMP}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise TCULError(f"{path} is unreadable: {NOT_OURS}") from None


def _stamp(path: Path) -> int | None:
    """The iteration a checkpoint, state or trace file belongs to (None: an older kit's
    file, which has no stamp)."""
    try:
        if path.suffix == ".pt":
            blob = torch.load(path, map_location="cpu", weights_only=True)
            it = (blob.get("meta") or {}).get("iteration") if isinstance(blob, dict) else None
            return None if it is None else int(it)
        with np.load(path) as f:
            return int(f[STAMP]) if STAMP in f.files else None
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, KeyError):
        raise TCULError(f"{path} is unreadable: {NOT_OURS}") from None


def read_only(run_dir: Path) -> bool:
    """True when the run folder exists and cannot be written to."""
    if not run_dir.is_dir():
        return False
    try:
        check_writable(run_dir, "run folder")
    except WriteError:
        return True
    return False


def run_complete(run_dir: str | Path, cfg: Config, target: ReidDataset) -> bool:
    """True when ``run_dir`` holds a finished run of ``cfg.n_iter`` iterations on ``target``
    with the settings of ``cfg`` (a missing or damaged history: False)."""
    try:
        hist = read_history(Path(run_dir) / HISTORY)
    except TCULError:
        return False
    return (hist.get("status") == "complete" and len(hist["iterations"]) == cfg.n_iter
            and hist.get("data_key") == target.content_key()
            and run_settings_match(run_dir, cfg))


def read_history(path: str | Path) -> dict:
    """A run's ``history.json``, checked: a dict with ``status`` (text), ``baseline`` (a
    dict) and ``iterations`` (records numbered 1, 2, ...). TCULError naming the file and
    the fix (``--fresh``) when it is unreadable, not UTF-8 JSON, or of another shape."""
    path = Path(path)
    fix = "start the run over (--fresh)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TCULError(f"{path} is unreadable ({type(exc).__name__}): {fix}") from None
    problem = ""
    if not isinstance(data, dict):
        problem = f"a {type(data).__name__}, not a run record"
    elif not isinstance(data.get("iterations"), list):
        problem = "no list of iterations"
    elif not isinstance(data.get("baseline", {}), dict) or not isinstance(
            data.get("status", ""), str):
        problem = "a baseline or status of the wrong type"
    else:
        for i, rec in enumerate(data["iterations"], start=1):
            if not isinstance(rec, dict) or rec.get("iteration") != i:
                problem = f"iteration record {i} is missing or misnumbered"
                break
    if problem:
        raise TCULError(f"{path} is damaged ({problem}): {fix}")
    data.setdefault("baseline", {})
    data.setdefault("status", "new")
    return data


def load_history(run_dir: str | Path) -> dict:
    """The ``history.json`` of a run folder: ``{"status", "baseline", "iterations"}``."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        raise TCULError(f"no {HISTORY} in {run_dir}: run the adaptation there first")
    return read_history(path)


def camera_pair_history(run_dir: str | Path, target: ReidDataset) -> list[dict]:
    """Per iteration of the run in ``run_dir``: :func:`camera_pair_scores` of the pseudo-labels
    its selection kept, against ``target.train``'s true identities and cameras (what the
    fine-tuning was taught, split into pairs inside one camera and across two)."""
    trace = load_trace(run_dir)
    pids, cams = pids_of(target.train), camids_of(target.train)
    out = []
    it = 1
    while f"labels_{it}" in trace and f"kept_{it}" in trace:
        scores = camera_pair_scores(trace[f"labels_{it}"], pids, cams, trace[f"kept_{it}"])
        out.append({"iteration": it, **{k: (None if np.isnan(v) else float(v))
                                        for k, v in scores.items()}})
        it += 1
    return out


def run_data_matches(run_dir: str | Path, target: ReidDataset) -> bool:
    """False when ``run_dir`` holds a run computed on data other than ``target`` (a run of
    an older kit, without the record, counts as other data); True when it holds none."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return True
    try:
        return read_history(path).get("data_key") == target.content_key()
    except TCULError:
        return True  # adapt reports the unreadable file itself


def run_settings_match(run_dir: str | Path, cfg: Config) -> bool:
    """False when ``run_dir`` holds a run computed with settings other than ``cfg``'s (those
    that decide its numbers; e.g. a PUL-style run of an older kit, fine-tuned with the
    triplet loss); True when it holds none or its configuration is unreadable (then
    :func:`adapt` reports the problem itself)."""
    path = Path(run_dir) / CONFIG
    if not (Path(run_dir) / HISTORY).is_file() or not path.is_file():
        return True
    try:
        old = Config.load(path)
    except TCULError:
        return True
    return fingerprint(old) == fingerprint(cfg)


def load_trace(run_dir: str | Path) -> dict[str, np.ndarray]:
    """Per-iteration arrays of a run: ``centers_t``, ``labels_t``, ``kept_t``."""
    path = Path(run_dir) / TRACE
    if not path.is_file():
        raise TCULError(f"no {TRACE} in {run_dir}: run the adaptation there first")
    return read_arrays(path)


def read_finished(run_dir: Path, cfg: Config, target: ReidDataset,
                  device: torch.device) -> tuple[ReidNet, np.ndarray, dict] | None:
    """The model, centres and history of the complete run of ``cfg`` on ``target`` in
    ``run_dir``, read without writing anything; ``None`` when the folder holds anything else
    (an unfinished run, other settings or data, pending files of an interrupted commit)."""
    if any((run_dir / p).exists() for p in PENDING.values()) or not run_complete(
            run_dir, cfg, target):
        return None
    data = read_history(run_dir / HISTORY)
    model, _meta = load_checkpoint(run_dir / CHECKPOINT, arch=cfg.arch, device=device)
    return model, read_arrays(run_dir / STATE)["centers"], data
