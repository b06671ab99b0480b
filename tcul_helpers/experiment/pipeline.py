"""The stages of a whole experiment, each cached on disk so that it runs once.

``worlds`` (synthetic data) -> ``source model`` (f_theta0, step 1 of Algorithm 1) ->
``adapt`` (TCUL / SUL / PUL-style, :mod:`tcul_helpers.experiment.runner`) -> results. The demo, the
sweeps, the command line and the notebooks all go through these functions, so a notebook
opened first computes what it needs (with progress bars) and a second call reuses it.

Folder layout (``runs`` is ignored by git)::

    data/generated/<scale>/{source,target}[-seed<S>]   synthetic worlds
    runs/<profile>/seed<S>/source/model.pt             f_theta0 (+ config.json, history.json)
    runs/<profile>/seed<S>/<variant>/                   one adaptation run (runner.py)

On real datasets every folder name ends in ``-data-<hash>`` (:func:`data_suffix`): runs on
different data never share a folder.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..data.readers import load_dataset
from ..data.records import ReidDataset
from ..data.synthetic import make_world, world_request
from ..infra import distributed
from ..infra.atomic_files import read_json_cache, write_json
from ..infra.device import resolve_device
from ..infra.folder_lock import folder_lock
from ..settings.config import (
    VARIANTS,
    Config,
    fingerprint,
    get_config,
    source_settings,
    start_of,
    variant_settings,
)
from ..training.loops import train_source
from ..training.models import ReidNet, load_checkpoint, save_checkpoint
from .run_store import run_data_matches, run_settings_match
from .runner import AdaptResult, adapt


def world_root(cfg: Config, preset: str, seed: int | None = None) -> Path:
    """Where the synthetic ``preset`` world of ``cfg`` lives (seed 0 has no suffix)."""
    base = Path(cfg.source_root if preset == "source" else cfg.target_root)
    seed = cfg.seed if seed is None else seed
    return base if seed == 0 else base.with_name(f"{base.name}-seed{seed}")


def ensure_world(cfg: Config, preset: str, *, progress: bool = True,
                 world_overrides: dict[str, Any] | None = None,
                 root: str | Path | None = None, replace: bool | None = None) -> ReidDataset:
    """The ``preset`` (``source`` / ``target``) dataset of ``cfg``: a synthetic world is
    generated on first use (seed ``cfg.seed``; ``world_overrides`` set knobs, e.g.
    ``crowd_density``); a real dataset is read from its root. ``replace``: regenerate a
    synthetic world of other knobs found at the root (default: only in the kit's own
    folder, i.e. when ``root`` is not given); otherwise such a world raises TCULError."""
    name = cfg.source if preset == "source" else cfg.target
    if name != "synthetic":
        return load_dataset(name, root or (cfg.source_root if preset == "source"
                                          else cfg.target_root))
    # the kit's own folders follow the current defaults: a stale world there is replaced;
    # a folder the user named (--set target_root=...) is never regenerated unasked
    if replace is None:
        replace = root is None and _kit_world_folder(cfg, preset)
    root = Path(root) if root is not None else world_root(cfg, preset)
    # under torchrun rank 0 generates the world, then the other ranks find it made
    distributed.main_first(make_world, root, preset, cfg.seed, scale=cfg.world_scale,
                           progress=progress and distributed.is_main(), replace=replace,
                           **(world_overrides or {}))
    return load_dataset("synthetic", root)


def _kit_world_folder(cfg: Config, preset: str) -> bool:
    """Whether ``cfg``'s ``preset`` world lives in the kit's own folder
    (``data/generated/<scale>/<preset>[-seed<S>]``, in whatever home)."""
    kit = get_config("classroom", world_scale=cfg.world_scale, seed=cfg.seed)
    own = world_root(kit, preset).parts
    return Path(world_root(cfg, preset)).parts[-len(own):] == own


def world_key(cfg: Config, preset: str, world_overrides: dict[str, Any] | None = None
              ) -> dict | None:
    """What decides the content of ``cfg``'s ``preset`` world (its generation request) for a
    synthetic dataset, without generating it; ``None`` for a real dataset."""
    name = cfg.source if preset == "source" else cfg.target
    if name != "synthetic":
        return None
    return world_request(preset, cfg.world_scale, cfg.seed, **(world_overrides or {}))


def run_root(cfg: Config, runs: str | Path = "runs") -> Path:
    """``runs/<profile>/seed<S>``: the folder of one profile and seed."""
    return Path(runs) / cfg.profile / f"seed{cfg.seed}"


def start_suffix(cfg: Config) -> str:
    """``""`` for the profile's own start of f_theta0, ``-imagenet`` / ``-scratch`` for the
    other one: the one place that names the folders of the two starts apart (the source
    model, the demo report, the sweeps), so that both can be kept and compared."""
    start = start_of(cfg)
    return "" if start == start_of(get_config(cfg.profile)) else f"-{start}"


#: Gives the dataset of a preset (``source`` / ``target``) when a caller already holds it.
Datasets = Callable[[str], ReidDataset]


def data_suffix(cfg: Config, presets: Sequence[str], datasets: Datasets | None = None) -> str:
    """``""`` when the datasets of ``presets`` are synthetic worlds (their content follows
    from ``cfg``'s world settings, which the folder names and fingerprints already hold);
    else ``-data-<hash>``, a short hash of the real datasets' content keys (file names,
    labels, sizes and modification times), so that runs on different data, or on a folder
    whose images were replaced, never share a folder. ``datasets`` gives a dataset already
    read; otherwise it is read from its root (a listing, not the pixels)."""
    keys = []
    for preset in presets:
        name = cfg.source if preset == "source" else cfg.target
        if name == "synthetic":
            continue
        ds = datasets(preset) if datasets is not None else load_dataset(
            name, cfg.source_root if preset == "source" else cfg.target_root)
        keys.append(f"{preset}:{ds.content_key()}")
    if not keys:
        return ""
    return "-data-" + hashlib.sha1("|".join(keys).encode()).hexdigest()[:8]


def source_dir(cfg: Config, runs: str | Path = "runs", datasets: Datasets | None = None
               ) -> Path:
    """``runs/<profile>/seed<S>/source[-<start>][-data-<hash>]``: the folder of f_theta0
    (the hash of the source dataset, :func:`data_suffix`)."""
    suffix = data_suffix(cfg, ("source",), datasets)
    return run_root(cfg, runs) / f"source{start_suffix(cfg)}{suffix}"


def variant_dir(run_cfg: Config, variant: str, runs: str | Path = "runs",
                datasets: Datasets | None = None) -> Path:
    """The folder of one adaptation run of ``variant`` with the settings ``run_cfg`` (the
    variant's own settings applied, as :func:`variant_config` gives them):
    ``runs/<profile>/seed<S>/<variant>`` with the profile's settings, where the demo,
    ``python -m tcul_helpers adapt`` and the notebooks share it; a variant setting changed
    by hand adds ``-<setting>-<value>`` (``tcul-selection-none``), and any other change a
    ``-<settings hash>``, so that such a run never meets the default one; real data add
    ``-data-<hash>`` (:func:`data_suffix`)."""
    own = VARIANTS[variant]
    parts = [variant] + [f"{k}-{getattr(run_cfg, k)}".lower() for k, v in own.items()
                         if getattr(run_cfg, k) != v]
    default = variant_config(get_config(run_cfg.profile, seed=run_cfg.seed), variant)
    if fingerprint(run_cfg.replace(**own)) != fingerprint(default):
        parts.append(fingerprint(run_cfg)[:8])
    suffix = data_suffix(run_cfg, ("source", "target"), datasets)
    return run_root(run_cfg, runs) / ("-".join(parts) + suffix)


#: How long a second process waits for the one training the same source model (seconds).
SOURCE_LOCK_WAIT = 3600.0


def ensure_source_model(
    cfg: Config,
    source: ReidDataset,
    out_dir: str | Path,
    *,
    device: Any = None,
    progress: bool = True,
    log: Callable[[str], object] | None = None,
) -> ReidNet:
    """f_theta0: load ``out_dir/model.pt`` if it was trained with the same source settings
    on the same source data, else train it on ``source.train`` (:func:`train_source`) and
    save it there. Under torchrun rank 0 decides and writes, and the ranks train together."""
    out = Path(out_dir)
    ckpt = out / "model.pt"
    device = resolve_device(device if device is not None else cfg.device)
    want = {**source_settings(cfg), "data": source.content_key()}

    def stored() -> ReidNet | None:  # on every rank: rank 0 reads the folder, the rest follow
        model = distributed.main_only(_stored_source_model, out, want, cfg, device, log)
        if not distributed.on_main(lambda: model is not None):
            return None
        return model if model is not None else load_checkpoint(ckpt, arch=cfg.arch,
                                                               device=device)[0]

    # a stored model is read without the lock (a read-only shared folder needs no write)
    model = stored()
    if model is not None:
        return model
    # one trainer per folder: a second process waits, then reuses what the first trained
    with distributed.main_context(lambda: folder_lock(out, "source-model folder",
                                                      wait=SOURCE_LOCK_WAIT, log=log)):
        model = stored()
        if model is not None:
            return model
        t0 = time.perf_counter()
        model, hist = train_source(source.train, cfg, device, progress=progress)
        distributed.main_only(_save_source_model, out, model, want, hist, cfg,
                              time.perf_counter() - t0)
        if log:
            log(f"trained the source model in {time.perf_counter() - t0:.0f} s -> {ckpt}")
        return model


def _stored_source_model(out: Path, want: dict, cfg: Config, device: Any,
                         log: Callable[[str], object] | None) -> ReidNet | None:
    """The f_theta0 in ``out`` when it was trained with the settings and data ``want``."""
    ckpt, meta_path = out / "model.pt", out / "source.json"
    if not (ckpt.exists() and meta_path.exists()):
        return None
    if not _same_source(read_json_cache(meta_path) or {}, want):
        return None
    model, meta = load_checkpoint(ckpt, arch=cfg.arch, device=device)
    # the checkpoint's own record must agree too: source.json is written after model.pt,
    # so a kill between them leaves a new model.pt beside an old source.json (or a model.pt
    # copied in by hand)
    if _same_source(meta, want):
        if log:
            log(f"reusing the source model {ckpt}")
        return model
    if log:
        log(f"{ckpt} was trained with other settings than {meta_path} says: training it again")
    return None


def _same_source(record: dict, want: dict) -> bool:
    """Whether a stored model's record names the settings and data ``want`` (a record of an
    older kit also names the source root, which the data's content key now stands for)."""
    settings = record.get("settings")
    return isinstance(settings, dict) and {
        k: v for k, v in settings.items() if k != "source_root"} == want


def _save_source_model(out: Path, model: ReidNet, want: dict, hist: dict, cfg: Config,
                       seconds: float) -> None:
    """``out/model.pt`` and then ``out/source.json`` (the record that makes it reusable)."""
    save_checkpoint(out / "model.pt", model, {"stage": "source", "settings": want},
                    input_size=(cfg.height, cfg.width))
    write_json(out / "source.json", {"settings": want, "seconds": seconds,
                                     "history": {k: v for k, v in hist.items() if k != "pids"}})


def variant_config(cfg: Config, variant: str, **overrides: Any) -> Config:
    """``cfg`` with the selection / centre / fine-tuning settings of ``variant``, then
    ``overrides`` (which win: ``variant_config(cfg, "tcul", selection="none")`` is TCUL's
    loop without selection). The one place a variant is applied to a configuration
    (``get_config(variant=...)`` applies it in the same order)."""
    return cfg.replace(**{**variant_settings(variant, cfg.profile), **overrides})


def _restart_reason(run_dir: str | Path, run_cfg: Config, target: ReidDataset) -> str:
    """Why the run in ``run_dir`` cannot be continued (other data / settings), or ``""``."""
    if not run_data_matches(run_dir, target):
        return "on other data"
    if not run_settings_match(run_dir, run_cfg):
        return "with other settings"
    return ""


def run_adaptation(
    run_cfg: Config,
    source_model: ReidNet,
    target: ReidDataset,
    run_dir: str | Path,
    *,
    restart_on_other_data: bool = False,
    **kwargs: Any,
) -> AdaptResult:
    """:func:`tcul_helpers.experiment.runner.adapt` with ``run_cfg`` as given (a variant's settings
    already applied, by :func:`variant_config` or ``get_config(variant=...)``).
    ``restart_on_other_data``: a run in ``run_dir`` computed on other data (e.g. a world
    regenerated with new knobs) or with other settings (e.g. by an older kit whose variant
    trained otherwise) is started over instead of refused; the kit's own folders under
    ``runs/`` (demo, notebooks), named after their settings, use it; a folder the user named
    does not."""
    if restart_on_other_data:
        log = kwargs.get("log")
        reason = distributed.on_main(_restart_reason, run_dir, run_cfg, target)
        if reason:
            if log:
                log(f"{run_dir} was computed {reason}: starting it over")
            kwargs["fresh"] = True
    return adapt(source_model, target, run_cfg, run_dir, **kwargs)
