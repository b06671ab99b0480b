"""The whole kit in one call: worlds -> source model -> baseline -> TCUL / SUL / PUL-style ->
figures -> ``report.md``.

Every stage is cached on disk: the worlds in their data roots, the source model and the
three adaptation runs in ``runs/<profile>/seed<S>/`` (where the command line and the
notebooks find them too), the report, results and figures in ``out_dir``. A second call
with everything computed only redraws the figures and rewrites the report (seconds).
``fresh=True`` recomputes the source model and the runs and rewrites ``out_dir``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..infra import distributed
from ..infra.atomic_files import read_json_cache, write_json
from ..infra.device import resolve_device
from ..infra.formatting import number
from ..measurement.evaluation import evaluate_model
from ..method.assignment import assign_clusters
from ..settings.config import STARTS, VARIANTS, Config, fingerprint, get_config, start_of
from ..training.models import model_to_device
from . import pipeline
from .report import write_report
from .run_store import STATE, camera_pair_history, load_history, run_complete
from .sweeps import default_dir, load_sweeps, run_sweeps

METRICS = ("rank1", "rank5", "rank10", "mAP")
FIGURE_FILES = {
    "fig2": "fig2_fragments.png",
    "fig3": "fig3_selection.png",
    "fig5": "fig5_reliable.png",
    "iterations": "iterations.png",
    "fig4a": "fig4a_lambda_fr.png",
    "fig4b": "fig4b_k.png",
    "continuity": "continuity_breaks.png",
}


class _Stages:
    """Times each stage and remembers whether it reused cached work."""

    def __init__(self, log: Callable[[str], object]) -> None:
        self.log = log
        self.data: dict[str, dict] = {}

    def run(self, name: str, fn: Callable[[], Any], reused: Callable[[], bool] | bool = False
            ) -> Any:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        flag = reused() if callable(reused) else bool(reused)
        self.data[name] = {"seconds": seconds, "reused": flag}
        self.log(f"[{name}] {seconds:.1f} s" + (" (reused)" if flag else ""))
        return out


def default_out(cfg: Config, runs: str | Path = "runs") -> Path:
    """Where ``make demo`` writes the report of ``cfg``'s profile, seed and start:
    ``runs/demo`` for the default (classroom, seed 0, the profile's start), else
    ``runs/demo-<profile>-seed<S>``; the other start adds ``-<start>``, real data
    ``-data-<hash>`` (:func:`~tcul_helpers.experiment.pipeline.data_suffix`)."""
    name = "demo" if (cfg.profile, cfg.seed) == ("classroom", 0) else (
        f"demo-{cfg.profile}-seed{cfg.seed}")
    suffix = pipeline.data_suffix(cfg, ("source", "target"))
    return Path(runs) / f"{name}{pipeline.start_suffix(cfg)}{suffix}"


def _clear(out: Path, source_dir: Path) -> None:
    """``fresh``: forget the demo's own outputs and the source model."""
    for name in ("baseline.json", "results.json", "report.md", *FIGURE_FILES.values()):
        (out / name).unlink(missing_ok=True)
    (source_dir / "model.pt").unlink(missing_ok=True)


def _world_summary(ds) -> dict:
    out = ds.summary()
    manifest = ds.extra.get("manifest") or {}
    if manifest:
        out["counts"] = manifest.get("counts")
        out["time_span_frames"] = manifest.get("time_span_frames")
    return out


def _describe_world(name: str, summary: dict) -> str:
    """One log line: identities, cameras, images per split and time span of a world."""
    train, query, gallery = summary["train"], summary["query"], summary["gallery"]
    span = summary.get("time_span_frames")
    return (f"{name} world: {train['ids']} train ids / {query['ids']} query ids, "
            f"{train['cameras']} cameras; images: train {train['images']}, "
            f"query {query['images']}, gallery {gallery['images']}"
            + (f"; time span {span:,} frames" if span else ""))


def _cached_baseline(path: Path, key: dict) -> dict | None:
    """The baseline metrics cached in ``path`` under ``key``, else None."""
    data = read_json_cache(path) or {}
    if data.get("key") != key:
        return None
    try:
        return {k: float(v) for k, v in data["metrics"].items()}
    except (KeyError, AttributeError, TypeError, ValueError):
        return None  # a pure cache: a damaged one is computed again


def _baseline(cfg: Config, model, target, out: Path, device, progress: bool) -> tuple[dict, bool]:
    path = out / "baseline.json"
    key = {"fingerprint": fingerprint(cfg), "target_root": str(cfg.target_root),
           "data": target.content_key()}
    cached = distributed.on_main(_cached_baseline, path, key)
    if cached is not None:
        return cached, True
    net = model_to_device(copy.deepcopy(model).drop_classifier(), device)
    metrics = evaluate_model(net, target, cfg, device, progress=progress)
    metrics = {k: float(metrics[k]) for k in METRICS if k in metrics}
    distributed.main_only(write_json, path, {"key": key, "metrics": metrics})
    return metrics, False


def _realism(cfg: Config, source, target, out: Path) -> dict:
    """Realism statistics of both worlds (:mod:`tcul_helpers.measurement.realism`), cached in
    ``out/realism.json`` under the worlds' data keys."""
    from ..measurement.realism import realism_statistics

    path = out / "realism.json"
    key = {"source": source.content_key(), "target": target.content_key(),
           "lambda_fr": cfg.lambda_fr}
    data = read_json_cache(path) or {}
    if data.get("key") == key and isinstance(data.get("stats"), dict):
        return data["stats"]
    stats = {name: realism_statistics(ds, lambda_fr=cfg.lambda_fr, seed=cfg.seed)
             for name, ds in (("source", source), ("target", target))}
    write_json(path, {"key": key, "stats": stats}, default=str)
    return stats


_START_KEYS = ("methods", "histories", "camera_pairs", "sweeps", "date")


def _starts(cfg: Config, out_dir: Path, runs: Path, results: dict) -> dict[str, dict]:
    """What the report compares across the two starts of f_theta0, for this profile and
    seed: this run's numbers, and the other start's from its own demo folder
    (:func:`default_out` under ``runs``) when that demo ran on the same worlds;
    ``{start: {"methods", "histories", "camera_pairs", "sweeps", "date", "out"}}``."""
    out: dict[str, dict] = {results["start"]: {k: results.get(k) for k in _START_KEYS}}
    out[results["start"]]["out"] = str(out_dir)
    for start in STARTS:
        if start in out:
            continue
        other = get_config(cfg.profile, seed=cfg.seed, start=start)
        path = default_out(other, runs) / "results.json"
        data = read_json_cache(path)
        if data is None:
            continue
        if data.get("data_keys") == results["data_keys"] and data.get("start") == start:
            out[start] = {k: data.get(k) for k in _START_KEYS}
            out[start]["out"] = str(path.parent)
    return out


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=110)
    return str(path)


def _figures(cfg: Config, target, out: Path, tcul_dir: Path, histories: dict, sweeps: dict,
             results: dict) -> dict[str, str]:
    from ..data.records import camids_of, frames_of
    from ..figures.fragments import plot_fragments
    from ..figures.iterations import plot_iteration_metrics, plot_reliable_counts
    from ..figures.selection import pick_example_group, plot_cluster_selection
    from ..method.selection import temporal_anchors

    figs: dict[str, str] = {}
    train = target.train
    camids = camids_of(train)
    cams, counts = np.unique(camids, return_counts=True)
    cam = int(cams[np.argmax(counts)])
    figs["fig2"] = _save(plot_fragments(train, cam, max_images=40), out / FIGURE_FILES["fig2"])

    # Fig. 3: Eq. 3 with the final TCUL model's features and centres (state.npz)
    with np.load(tcul_dir / STATE) as st:
        z, centers = st["features"], st["centers"]
    labels = assign_clusters(z, centers)
    frames = frames_of(train)
    truth = np.array([r.raw_pid for r in train])
    sel = temporal_anchors(z, labels, centers, camids, frames, cfg.lambda_fr)
    k, j = pick_example_group(sel, labels, camids, truth)
    figs["fig3"] = _save(plot_cluster_selection(train, sel, labels, k, j, truth=truth),
                         out / FIGURE_FILES["fig3"])
    results["fig3_note"] = (
        f"Cluster {k}, camera {j}: Eq. 3 applied with the final TCUL model's features and "
        f"centres at lambda_fr = {cfg.lambda_fr}; true identities are written above the "
        "images (the method never sees them).")

    figs["fig5"] = _save(plot_reliable_counts(histories), out / FIGURE_FILES["fig5"])
    figs["iterations"] = _save(plot_iteration_metrics(histories),
                               out / FIGURE_FILES["iterations"])
    figs.update(_sweep_figures(sweeps, out))
    return figs


def _sweep_figures(sweeps: dict, out: Path) -> dict[str, str]:
    from matplotlib.figure import Figure

    from ..figures.sweeps import plot_sweep

    def true_value(points: list[dict]) -> float | None:
        return next((p["true_value"] for p in points if p.get("true_value") is not None), None)

    figs: dict[str, str] = {}
    for key, name in (("fig4a", "lambda_fr"), ("fig4b", "n_clusters")):
        pts = sweeps.get(name) or []
        if pts:
            tv = true_value(pts) if name == "n_clusters" else None
            figs[key] = _save(plot_sweep(pts, name, "mAP", true_value=tv,
                                         true_label="true number of identities"),
                              out / FIGURE_FILES[key])
    names = [n for n in ("crowd_density", "reappear_prob") if sweeps.get(n)]
    if names:
        fig = Figure(figsize=(6 * len(names), 4))
        for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names, strict=True):
            plot_sweep(sweeps[name], name, "mAP", true_value=true_value(sweeps[name]), ax=ax,
                       true_label="world default")
        fig.tight_layout()
        figs["continuity"] = _save(fig, out / FIGURE_FILES["continuity"])
    return figs


def run_demo(
    cfg: Config,
    out_dir: str | Path = "runs/demo",
    *,
    fresh: bool = False,
    progress: bool = True,
    device: Any = None,
    log: Callable[[str], object] | None = print,
    sweeps_dir: str | Path | None = None,
    command: str | None = None,
    runs: str | Path | None = None,
    fig4: bool | None = None,
) -> dict:
    """Run the whole demo into ``out_dir`` and return the results (also ``results.json``).

    Stages (each timed, ``reused`` when read from disk): worlds, source model, baseline,
    TCUL, SUL, PUL-style, Fig. 4, figures, report. The Fig. 4 stage (``fig4``; default: on
    the CPU profiles in one process) runs the demo's grid of lambda_fr and K
    (:func:`tcul_helpers.experiment.sweeps.run_sweeps`, ``grid="demo"``; its point at the
    default settings is the TCUL run itself) into ``sweeps_dir`` (default:
    :func:`tcul_helpers.experiment.sweeps.default_dir` under ``runs``), shared with ``make
    sweeps`` and notebook 08; the sweep figures are drawn from every point cached there for
    ``cfg``'s settings. The source
    model and the runs are cached under ``runs`` (default: ``out_dir``'s parent, so that
    ``runs/demo`` shares ``runs/<profile>/seed<S>`` with the command line and notebooks).
    The last log line is ``Report: <path>``. Under torchrun the ranks share the training
    and extraction; rank 0 alone reads and writes the caches, draws and reports.
    """
    say: Callable[[str], object] = log or (lambda _m: None)
    t_start = time.perf_counter()
    out = Path(out_dir)
    # f_theta0 and the runs live in runs/<profile>/seed<S>, shared with the CLI and notebooks
    runs_root = Path(runs) if runs is not None else out.parent
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device if device is not None else cfg.device)
    stages = _Stages(say)
    say(f"TCUL demo: profile {cfg.profile}, seed {cfg.seed} -> {out}")

    def worlds():
        return (pipeline.ensure_world(cfg, "source", progress=progress),
                pipeline.ensure_world(cfg, "target", progress=progress))

    had_worlds = all((Path(pipeline.world_root(cfg, p)) / "manifest.json").exists()
                     for p in ("source", "target"))
    source, target = stages.run("worlds", worlds, had_worlds and cfg.source == "synthetic")
    for name, ds in (("source", source), ("target", target)):
        say(_describe_world(name, _world_summary(ds)))
    datasets = {"source": source, "target": target}.__getitem__
    source_dir = pipeline.source_dir(cfg, runs_root, datasets)
    if fresh:
        distributed.main_only(_clear, out, source_dir)

    messages: list[str] = []

    def source_log(msg: str) -> None:
        messages.append(msg)
        say(msg)

    model = stages.run(
        "source model",
        lambda: pipeline.ensure_source_model(cfg, source, source_dir, device=dev,
                                             progress=progress, log=source_log),
        lambda: any(m.startswith("reusing") for m in messages))

    base_box: dict = {}

    def baseline():
        metrics, reused = _baseline(cfg, model, target, out, dev, progress)
        base_box["reused"] = reused
        return metrics

    base = stages.run("baseline", baseline, lambda: base_box["reused"])
    say(f"baseline: rank-1 {base['rank1']:.1f}  mAP {base['mAP']:.1f}")

    histories: dict[str, dict] = {}
    run_dirs: dict[str, Path] = {}
    methods: dict[str, dict] = {"baseline": base}
    for variant in VARIANTS:
        run_cfg = pipeline.variant_config(cfg, variant)
        run_dir = run_dirs[variant] = pipeline.variant_dir(run_cfg, variant, runs_root,
                                                           datasets)
        done = (not fresh) and distributed.on_main(run_complete, run_dir, run_cfg, target)
        stages.run(variant, lambda c=run_cfg, d=run_dir: pipeline.run_adaptation(
            c, model, target, d, device=dev, progress=progress, log=say, fresh=fresh,
            restart_on_other_data=True), done)
        hist = distributed.on_main(load_history, run_dir)
        histories[variant] = hist
        last = hist["iterations"][-1] if hist["iterations"] else hist["baseline"]
        methods[variant] = {k: last.get(k) for k in METRICS}
        say(f"{variant}: rank-1 {number(methods[variant]['rank1'])}  "
            f"mAP {number(methods[variant]['mAP'])}")

    if sweeps_dir is None:
        sweeps_dir = default_dir(cfg, runs_root, datasets)
    if fig4 is None:  # the paper profile's runs take hours each: `make sweeps` there
        fig4 = cfg.profile != "paper" and distributed.world_size() == 1
    if fig4:
        computed: list[str] = []  # a line per point computed now (none: all were cached)

        def point_done(msg: str) -> None:
            computed.append(msg)
            say(msg)

        stages.run("fig4 sweeps", lambda: run_sweeps(
            cfg, sweeps_dir, only=("lambda_fr", "n_clusters"), grid="demo", progress=progress,
            device=dev, log=point_done, source_dir=source_dir, source_model=model,
            shared_runs={"tcul": run_dirs["tcul"]}), lambda: not computed)

    def finish() -> dict[str, Any]:  # realism, figures and the report: rank 0 alone
        sweeps = load_sweeps(sweeps_dir, cfg)
        results: dict[str, Any] = {
            "profile": cfg.profile,
            "seed": cfg.seed,
            "config": cfg.to_dict(),
            "command": command or _invocation(),
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "device": str(dev),
            "methods": methods,
            "histories": histories,
            "camera_pairs": {v: camera_pair_history(d, target) for v, d in run_dirs.items()},
            "worlds": {"source": _world_summary(source), "target": _world_summary(target)},
            "data_keys": {"source": source.content_key(), "target": target.content_key()},
            "start": start_of(cfg),
            "realism": stages.run("realism", lambda: _realism(cfg, source, target, out)),
            "sweeps": {
                "dir": str(sweeps_dir),
                "status": {name: len(pts) for name, pts in sweeps.items()} or "not computed",
                "points": sweeps,
            },
        }
        results["starts"] = _starts(cfg, out, runs_root, results)
        figures = stages.run("figures", lambda: _figures(cfg, target, out, run_dirs["tcul"],
                                                         histories, sweeps, results))
        results["figures"] = {k: os.path.relpath(v, out) for k, v in figures.items()}

        def timings() -> None:  # the stages so far: for the report, then with the report
            results["stages"] = stages.data
            results["stage_seconds"] = {k: v["seconds"] for k, v in stages.data.items()}
            results["total_seconds"] = time.perf_counter() - t_start

        timings()
        report = stages.run("report", lambda: write_report(results, out, figures))
        timings()
        results["report"] = str(report)
        write_json(out / "results.json", results, default=str)
        say(f"total {results['total_seconds']:.1f} s")
        say(f"Report: {report}")
        return results

    return distributed.on_main(finish)


def _invocation() -> str:
    """How this process was started, as a user would type it (``python -m tcul_helpers ...``)."""
    prog = Path(sys.argv[0])
    head = ("python -m tcul_helpers" if prog.name == "__main__.py"
            else f"python {prog.name}")
    return " ".join([head, *sys.argv[1:]])


__all__ = ["FIGURE_FILES", "default_out", "run_demo"]
