"""The sweeps of the paper's Fig. 4 and of "where temporal continuity breaks", cached per point.

Four sweeps, each a list of values of one setting (:func:`sweep_plan`):

* ``lambda_fr`` (TCUL): the frame window of Eq. 3, from 0 to "infinite" (10**7 frames);
* ``n_clusters`` (TCUL): K, around the true number of target training identities;
* ``crowd_density`` and ``reappear_prob`` (TCUL and SUL): knobs of the synthetic target
  world; each value has its own world under ``<out_dir>/worlds/<knob>-<value>``.

One point = one adaptation run; its result is one JSON file
``<out_dir>/<sweep>/<variant>-<value>.json`` (final rank-1/5/10 and mAP, per-iteration
reliable counts and precision, value, variant, seed, seconds). A cached point is never
recomputed unless its :func:`point_key` differs (other settings, seed or worlds). All
points share one source model, ``pipeline.run_root(cfg)/source``.

The demo computes a part of the lambda_fr and K lists (``grid="demo"``, the paper's Fig. 4
shape) into the same cache. A point at the default settings is computed once: read from the
finished run with those settings (the demo's TCUL run, :func:`point_from_run`) when there is
one, and shared between the lambda_fr and K sweeps, whose default points are the same run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..data.records import ReidDataset
from ..data.synthetic.presets import resolve_knobs
from ..infra.atomic_files import read_json_cache, write_json
from ..infra.errors import TCULError
from ..settings.config import INFINITE_FRAMES, Config, fingerprint, is_source_setting
from ..training.models import ReidNet
from . import pipeline
from .run_store import camera_pair_history, load_history, run_complete

SWEEPS = ("lambda_fr", "n_clusters", "crowd_density", "reappear_prob")
WORLD_SWEEPS = ("crowd_density", "reappear_prob")


def point_key(cfg: Config, sweep: str, value: float) -> str:
    """The cache key of one sweep point: :func:`fingerprint` of the settings plus the source
    and target worlds the point is computed on (a world regenerated with other knobs, or by
    another generator version, makes its points stale)."""
    overrides = {sweep: float(value)} if sweep in WORLD_SWEEPS else None
    worlds = [pipeline.world_key(cfg, "source"), pipeline.world_key(cfg, "target", overrides)]
    blob = json.dumps([fingerprint(cfg), worlds], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def value_name(value: Any) -> str:
    """File-name form of a value: ``100``, ``0.05``, ``10000000``, ``resnet18``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return re.sub(r"[^A-Za-z0-9._+-]+", "_", str(value)) or "_"
    v = float(value)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def _default_knob(cfg: Config, knob: str) -> float:
    return float(getattr(resolve_knobs("target", cfg.world_scale), knob))


#: the grids of the demo's Fig. 4 (a part of the full grids, so their points are shared):
#: lambda_fr below and above the default (as multiples of it) and "infinite"; K around the
#: true number of identities, as the paper's 250 / 500 / 750 / 1000 around 751
DEMO_LAMBDA_FACTORS = (0.25, 1, 4)
DEMO_K_FACTORS = (0.5, 0.75, 1.0, 1.5)
#: which points a plan holds: every sweep's full list, or the demo's Fig. 4 grids alone
GRIDS = ("full", "demo")


def sweep_plan(cfg: Config, target: ReidDataset, grid: str = "full") -> dict[str, dict]:
    """The values of every sweep for ``cfg``'s profile: ``{sweep: {"param", "variants",
    "values", "true_value"}}``. ``smoke`` runs 2 values per sweep, other profiles the
    full lists; ``grid="demo"`` keeps lambda_fr and K only, at :data:`DEMO_LAMBDA_FACTORS`
    (and "infinite") and :data:`DEMO_K_FACTORS`. ``true_value`` is the number of target
    training identities for K, the world's default for the world knobs and ``cfg.lambda_fr``
    for lambda_fr."""
    if grid not in GRIDS:
        raise TCULError(f"unknown sweep grid {grid!r}: use one of {', '.join(GRIDS)}")
    small = cfg.profile == "smoke"
    lam = cfg.lambda_fr
    n_ids = target.num_train_pids
    n_images = len(target.train)
    if small:
        lam_values = [int(round(0.25 * lam)), INFINITE_FRAMES]
        k_factors = [0.5, 1.0]
    elif grid == "demo":
        lam_values = sorted({int(round(f * lam)) for f in DEMO_LAMBDA_FACTORS}
                            | {INFINITE_FRAMES})
        k_factors = list(DEMO_K_FACTORS)
    else:
        lam_values = sorted({int(round(f * lam)) for f in (0, 0.1, 0.25, 0.5, 1, 2, 4, 10)}
                            | {INFINITE_FRAMES})
        k_factors = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    ks = sorted({min(n_images, max(2, int(round(f * n_ids)))) for f in k_factors})
    crowd = _default_knob(cfg, "crowd_density")
    reappear = _default_knob(cfg, "reappear_prob")
    if small:
        crowd_values = [round(crowd * 0.5, 3), round(crowd * 2, 3)]
        reappear_values = [0.0, 0.5]
    else:
        crowd_values = sorted({round(crowd * f, 4) for f in (0.5, 1, 2, 4, 8, 16)})
        reappear_values = sorted({0.0, reappear, 0.15, 0.3, 0.6})
    plan = {
        "lambda_fr": {"param": "lambda_fr", "variants": ["tcul"], "values": lam_values,
                      "true_value": float(lam)},
        "n_clusters": {"param": "n_clusters", "variants": ["tcul"], "values": ks,
                       "true_value": float(n_ids)},
        "crowd_density": {"param": "crowd_density", "variants": ["tcul", "sul"],
                          "values": crowd_values, "true_value": crowd},
        "reappear_prob": {"param": "reappear_prob", "variants": ["tcul", "sul"],
                          "values": reappear_values, "true_value": reappear},
    }
    if grid == "demo":
        return {name: plan[name] for name in ("lambda_fr", "n_clusters")}
    return plan


def point_path(out_dir: str | Path, sweep: str, variant: str, value: Any) -> Path:
    """``<out_dir>/<sweep>/<variant>-<value>.json``."""
    return Path(out_dir) / sweep / f"{variant}-{value_name(value)}.json"


def _source(cfg: Config, source_dir: str | Path | None, device: Any, progress: bool,
            log: Callable[[str], object] | None) -> ReidNet:
    src = pipeline.ensure_world(cfg, "source", progress=progress)
    out = Path(source_dir) if source_dir is not None else pipeline.source_dir(cfg)
    return pipeline.ensure_source_model(cfg, src, out, device=device, progress=progress, log=log)


def _world(cfg: Config, sweep: str, value: float, out_dir: Path, progress: bool
           ) -> ReidDataset:
    if sweep in WORLD_SWEEPS:
        root = out_dir / "worlds" / f"{sweep}-{value_name(value)}"
        # the sweep's own folder: a world of an older calibration there is regenerated
        return pipeline.ensure_world(cfg, "target", progress=progress,
                                     world_overrides={sweep: float(value)}, root=root,
                                     replace=True)
    return pipeline.ensure_world(cfg, "target", progress=progress)


def _typed(cfg: Config, setting: str, value: Any) -> Any:
    """``value`` for an integer setting as an integer (a slider or a plot gives floats)."""
    current = getattr(cfg, setting, None)
    if (isinstance(current, int) and not isinstance(current, bool)
            and isinstance(value, int | float) and not isinstance(value, bool)):
        return int(value)
    return value


def run_point(
    cfg: Config,
    sweep: str,
    variant: str,
    value: Any,
    out_dir: str | Path,
    *,
    source_model: ReidNet | None = None,
    target: ReidDataset | None = None,
    true_value: float | None = None,
    progress: bool = True,
    device: Any = None,
    log: Callable[[str], object] | None = print,
    source_dir: str | Path | None = None,
    fresh: bool = False,
) -> dict:
    """One sweep point: the cached JSON if present (unless ``fresh``), else one adaptation
    run of ``variant`` with ``sweep`` set to ``value``, written to :func:`point_path`.

    ``sweep`` is a world knob of :data:`WORLD_SWEEPS` (the point runs on its own world) or
    any setting of :class:`~tcul_helpers.settings.config.Config` (``value`` already of its type; it
    wins over the variant's own settings). ``target`` defaults to the point's world;
    ``source_model`` to the shared source model, or, for a setting that decides f_theta0,
    to one trained for this value under ``<out_dir>/<sweep>/source-<value>``."""
    out_dir = Path(out_dir)
    path = point_path(out_dir, sweep, variant, value)
    key = point_key(cfg, sweep, value)
    cached = read_json_cache(path) if path.exists() and not fresh else None
    if cached is not None and cached.get("key") == key:
        cached["cached"] = True
        return cached
    if cached is not None and log:
        log(f"{path} was computed with other settings or worlds: recomputing it")
    setting = {} if sweep in WORLD_SWEEPS else {sweep: _typed(cfg, sweep, value)}
    run_cfg = pipeline.variant_config(cfg, variant, **setting)  # TCULError: unknown setting
    if target is None:
        target = _world(cfg, sweep, value, out_dir, progress)
    if source_model is None:
        if is_source_setting(sweep):
            source_dir = out_dir / sweep / f"source-{value_name(value)}"
        source_model = _source(run_cfg, source_dir, device, progress, log)
    run_dir = out_dir / sweep / "runs" / f"{variant}-{value_name(value)}"
    t0 = time.perf_counter()
    res = pipeline.run_adaptation(run_cfg, source_model, target, run_dir, device=device,
                                  progress=progress, fresh=True, evaluate_each=False)
    seconds = time.perf_counter() - t0
    point = _point(cfg, sweep, variant, value, key, true_value, target, res.history,
                   res.baseline, camera_pair_history(run_dir, target), seconds)
    write_json(path, point)
    shutil.rmtree(run_dir, ignore_errors=True)  # checkpoints are not needed once cached
    if log:
        log(f"{sweep} {variant} {value_name(value)}: mAP {point['mAP']:.1f} ({seconds:.0f} s)")
    point["cached"] = False
    return point


def point_from_run(cfg: Config, sweep: str, variant: str, run_dir: str | Path, out_dir: str | Path,
                   target: ReidDataset, true_value: float | None = None) -> dict:
    """The point of ``sweep`` at ``cfg``'s own value, read from the finished run of
    ``variant`` with ``cfg``'s settings in ``run_dir`` (the demo's run: the same adaptation
    run, not computed twice), and cached as :func:`run_point` caches a point."""
    value = getattr(cfg, sweep)
    hist = load_history(run_dir)
    seconds = sum(float(it.get("seconds") or 0.0) for it in hist["iterations"])
    point = _point(cfg, sweep, variant, value, point_key(cfg, sweep, value), true_value, target,
                   hist["iterations"], hist["baseline"], camera_pair_history(run_dir, target),
                   seconds)
    point["run_dir"] = str(run_dir)
    write_json(point_path(out_dir, sweep, variant, value), point)
    point["cached"] = False
    return point


def _point(cfg: Config, sweep: str, variant: str, value: Any, key: str,
           true_value: float | None, target: ReidDataset, history: list[dict],
           baseline: dict, camera_pairs: list[dict], seconds: float) -> dict:
    """A sweep point's record: the last iteration's metrics and each iteration's selection."""
    final = history[-1] if history else dict(baseline)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    point = {
        "sweep": sweep,
        "param": sweep,
        "variant": variant,
        "value": float(value) if number else value,
        "true_value": true_value,
        "seed": cfg.seed,
        "profile": cfg.profile,
        "fingerprint": fingerprint(cfg),
        "key": key,
        "rank1": final.get("rank1"),
        "rank5": final.get("rank5"),
        "rank10": final.get("rank10"),
        "mAP": final.get("mAP"),
        "baseline": {k: baseline.get(k) for k in ("rank1", "rank5", "rank10", "mAP")},
        "n_reliable": [h.get("n_reliable") for h in history],
        "precision": [h.get("precision") for h in history],
        "recall": [h.get("recall") for h in history],
        # the last iteration's kept pairs split by camera (the run folder may be deleted)
        "camera_pairs": (camera_pairs or [None])[-1],
        "n_train_ids": target.num_train_pids,
        "n_train_images": len(target.train),
        "seconds": seconds,
    }
    if "manifest" in target.extra:
        point["world_measured"] = target.extra["manifest"].get("measured")
    return point


def run_sweeps(
    cfg: Config,
    out_dir: str | Path,
    *,
    progress: bool = True,
    device: Any = None,
    only: Iterable[str] | None = None,
    log: Callable[[str], object] | None = print,
    source_dir: str | Path | None = None,
    grid: str = "full",
    source_model: ReidNet | None = None,
    shared_runs: Mapping[str, str | Path] | None = None,
) -> dict:
    """Run (or read from the cache) every point of the sweeps named in ``only`` (default:
    all four) on ``grid`` (:func:`sweep_plan`). Returns ``{sweep: [point, ...]}``; each point
    has ``cached`` True when it was read from disk.

    ``shared_runs`` maps a variant to the folder of its run with ``cfg``'s own settings
    (the demo's runs): a point at ``cfg``'s own value is read from that run when it is
    finished (:func:`point_from_run`) instead of being computed again. ``source_model``:
    f_theta0 when the caller has it already."""
    names = list(SWEEPS if only is None else only)
    bad = [s for s in names if s not in SWEEPS]
    if bad:
        raise TCULError(f"unknown sweep(s) {', '.join(bad)}: use {', '.join(SWEEPS)}")
    out_dir = Path(out_dir)
    target = pipeline.ensure_world(cfg, "target", progress=progress)
    plan = sweep_plan(cfg, target, grid)
    names = [n for n in names if n in plan]
    model = source_model
    # per variant, a point already had at cfg's own settings (cached, or computed here): the
    # point of every other setting sweep at its own value is the same run
    own = {variant: point for name, spec in plan.items() if _at_own_value(cfg, name)
           for variant in spec["variants"]
           if (point := _cached(cfg, out_dir, name, variant, getattr(cfg, name))) is not None}
    results: dict[str, list[dict]] = {}
    for name in names:
        spec = plan[name]
        for value in visit_order(spec["values"], spec["true_value"]):
            for variant in spec["variants"]:
                point = _cached(cfg, out_dir, name, variant, value)
                if point is not None:
                    point = {**point, "cached": True}
                elif (run_dir := _shared_run(cfg, name, variant, value, shared_runs,
                                             target)) is not None:
                    point = point_from_run(cfg, name, variant, run_dir, out_dir, target,
                                           spec["true_value"])
                elif _at_own_value(cfg, name, value) and variant in own:
                    point = _same_run(cfg, own[variant], name, out_dir, spec["true_value"])
                else:
                    if model is None:
                        model = _source(cfg, source_dir, device, progress, log)
                    point = run_point(
                        cfg, name, variant, value, out_dir, source_model=model,
                        target=None if name in WORLD_SWEEPS else target,
                        true_value=spec["true_value"], progress=progress, device=device,
                        log=log, source_dir=source_dir)
                if _at_own_value(cfg, name, value):
                    own.setdefault(variant, point)
                results.setdefault(name, []).append(point)
        results[name].sort(key=lambda p: (p.get("variant", ""), p["value"]))
    return results


def _cached(cfg: Config, out_dir: Path, sweep: str, variant: str, value: Any) -> dict | None:
    """The cached point of ``(sweep, variant, value)`` if it was computed with ``cfg``'s
    settings on its worlds (:func:`point_key`), else None."""
    path = point_path(out_dir, sweep, variant, value)
    cached = read_json_cache(path) if path.exists() else None
    if cached is None or cached.get("key") != point_key(cfg, sweep, value):
        return None
    return cached


def _at_own_value(cfg: Config, sweep: str, value: Any = None) -> bool:
    """Whether the point of setting ``sweep`` at ``value`` (default: its own) runs with
    ``cfg``'s settings unchanged; a world knob's points always change the world."""
    if sweep in WORLD_SWEEPS or not hasattr(cfg, sweep):
        return False
    return value is None or float(value) == float(getattr(cfg, sweep))


def _same_run(cfg: Config, point: dict, sweep: str, out_dir: Path,
              true_value: float | None) -> dict:
    """``point`` (a run with ``cfg``'s own settings, of another sweep) as the point of
    ``sweep`` at ``cfg``'s own value, cached as :func:`run_point` caches a point: the same
    adaptation run, not computed twice."""
    value = getattr(cfg, sweep)
    same = {k: v for k, v in point.items() if k != "cached"}
    same.update(sweep=sweep, param=sweep, value=float(value), true_value=true_value,
                key=point_key(cfg, sweep, value),
                same_run_as=point.get("same_run_as", point["sweep"]))
    write_json(point_path(out_dir, sweep, same["variant"], value), same)
    return {**same, "cached": False}


def default_runs(cfg: Config, runs: str | Path = "runs",
                 datasets: pipeline.Datasets | None = None) -> dict[str, Path]:
    """The folders of the runs with ``cfg``'s own settings (the demo's, the command line's)
    that hold sweep points at the default values: ``{"tcul": runs/<profile>/seed<S>/tcul}``."""
    return {"tcul": pipeline.variant_dir(pipeline.variant_config(cfg, "tcul"), "tcul", runs,
                                         datasets)}


def _shared_run(cfg: Config, sweep: str, variant: str, value: Any,
                shared_runs: Mapping[str, str | Path] | None, target: ReidDataset
                ) -> Path | None:
    """The finished run in ``shared_runs`` that is the point ``(sweep, variant, value)``: one
    at ``cfg``'s own value of a setting (not a world knob), with ``cfg``'s settings."""
    if not shared_runs or variant not in shared_runs or not _at_own_value(cfg, sweep, value):
        return None
    run_dir = Path(shared_runs[variant])
    return run_dir if run_complete(run_dir, pipeline.variant_config(cfg, variant), target) else None


def visit_order(values: Iterable[float], true_value: float | None = None) -> list[float]:
    """The order :func:`run_sweeps` computes a sweep's points in: the value nearest
    ``true_value`` first, then both ends, then each time the value in the middle of the
    widest gap left (by position in the sorted list). A sweep stopped part-way (every point
    is cached as soon as it is done) then already spans the whole range around the default,
    instead of holding only its smallest values."""
    todo = sorted(set(values))
    if not todo:
        return []
    first = (min(range(len(todo)), key=lambda i: abs(todo[i] - true_value))
             if true_value is not None else 0)
    picked = [first] + [i for i in (0, len(todo) - 1) if i != first]
    while len(picked) < len(todo):
        done = sorted(set(picked))
        gaps = [(b - a, a, b) for a, b in zip(done, done[1:], strict=False) if b - a > 1]
        _, a, b = max(gaps, key=lambda g: (g[0], -g[1]))
        picked.append((a + b) // 2)
    return [todo[i] for i in dict.fromkeys(picked)]


def default_dir(cfg: Config, runs: str | Path = "runs",
                datasets: pipeline.Datasets | None = None) -> Path:
    """Where the sweeps of ``cfg``'s profile, seed and start are cached:
    ``runs/<profile>/seed<S>/sweeps[-<start>][-data-<hash>]`` (beside that seed's source
    model; the hash names real data, :func:`~tcul_helpers.experiment.pipeline.data_suffix`)."""
    suffix = pipeline.data_suffix(cfg, ("source", "target"), datasets)
    return pipeline.run_root(cfg, runs) / f"sweeps{pipeline.start_suffix(cfg)}{suffix}"


def load_sweeps(out_dir: str | Path, cfg: Config | None = None) -> dict[str, list[dict]]:
    """Every cached point under ``out_dir``: ``{sweep: [point, ...]}`` sorted by variant and
    value (``{}`` when nothing is cached). With ``cfg``, only the points computed with its
    settings on its worlds (same :func:`point_key`): a point of another seed, profile or
    world never mixes in."""
    out_dir = Path(out_dir)

    def wanted(name: str, p: dict | None) -> bool:
        if p is None:
            return False
        return cfg is None or p.get("key") == point_key(cfg, name, p.get("value", 0.0))

    found: dict[str, list[dict]] = {}
    if not out_dir.is_dir():
        return found
    for name in SWEEPS:
        folder = out_dir / name
        if not folder.is_dir():
            continue
        points = [p for p in (read_json_cache(f) for f in sorted(folder.glob("*.json")))
                  if wanted(name, p)]
        if points:
            found[name] = sorted(points, key=lambda p: (p.get("variant", ""), p["value"]))
    return found


__all__ = ["SWEEPS", "default_dir", "fingerprint", "load_sweeps", "point_key", "point_path",
           "run_point", "run_sweeps", "sweep_plan", "value_name", "visit_order"]
