"""The command line: ``python -m tcul_helpers <command>`` (or ``tcul <command>``).

Every command takes a profile (``--profile``, default ``$TCUL_PROFILE`` or ``classroom``)
and ``--set key=value`` overrides; results go to stdout, progress bars to stderr. Bad input
(:class:`~tcul_helpers.infra.errors.TCULError` or a bad option) prints one line ``error: ...`` to
stderr and exits with code 2; Ctrl-C exits with 130 and the run can be resumed.

Under ``torchrun --nproc_per_node N`` the commands in :data:`DISTRIBUTED_COMMANDS` run on N
ranks (:mod:`tcul_helpers.infra.distributed`): rank 0 prints, shows progress and writes; the
other ranks compute their share silently.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import signal
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..data.readers import DATASETS, load_dataset
from ..data.synthetic.presets import PRESETS
from ..infra.device import DEVICE_CHOICES
from ..infra.errors import TCULError
from ..settings.config import (
    PROFILES,
    STARTS,
    VARIANTS,
    Config,
    get_config,
    is_source_setting,
    parse_set,
    variant_settings,
)

PROG = "python -m tcul_helpers"

#: the commands that run on several ranks under torchrun (the others run in one process)
DISTRIBUTED_COMMANDS = ("source", "adapt", "demo", "evaluate")

DESCRIPTION = """\
TCUL: Temporal Continuity based Unsupervised Learning for person re-identification.

The method runs in stages, each cached on disk so that it runs once:
  1. world    - synthetic camera networks (a labelled source domain, an unlabelled target)
  2. source   - the source baseline f_theta0, trained with labels on the source domain
  3. adapt    - Algorithm 1 on the target: k-means centres -> assign (Eq. 1-2) ->
                reliable samples by temporal continuity (Eq. 3) -> fine-tune (Eq. 4-5) ->
                update the centres (Eq. 6-7), repeated n_iter times (variants: TCUL, SUL, PUL)
  4. evaluate - rank-1/5/10 and mAP of a checkpoint on the target query/gallery
Around them: sweep (one parameter), config (the resolved settings), demo and sweeps
(the whole experiment and the report's parameter sweeps), prepare (all a lab reads).

Profiles: smoke (seconds), classroom (minutes on a laptop CPU, the default), paper (the
paper's hyper-parameters on Market-1501 / DukeMTMC-reID)."""

EPILOG = f"""\
examples:
  {PROG} config --profile smoke --set lambda_fr=50
  {PROG} world --profile smoke
  {PROG} source --profile smoke --evaluate
  {PROG} adapt --profile smoke --variant tcul
  {PROG} adapt --variant sul --iterations 3 --fresh
  {PROG} adapt --set selection=none
  {PROG} evaluate runs/classroom/seed0/tcul/model_last.pt --json
  {PROG} sweep --param lambda_fr --values 50,100,200
  {PROG} demo --seed 1

`{PROG} <command> --help` describes each command's options."""


class _UsageError(Exception):
    """A bad command line (argparse's error), reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing the usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


# ----------------------------------------------------------------------------- parsing
def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    g = common.add_argument_group("common options")
    g.add_argument("--profile", choices=PROFILES, default=None,
                   help="smoke | classroom | paper (default: $TCUL_PROFILE or classroom)")
    g.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set lambda_fr=150 (repeatable; "
                        "`config --list` shows every key)")
    g.add_argument("--seed", type=_non_negative_int, default=None, metavar="N",
                   help="random seed (default: the profile's, 0)")
    g.add_argument("--start", choices=STARTS, default=None,
                   help="f_theta0's start: scratch or imagenet (ImageNet weights; the CPU "
                        "profiles use MobileNetV2, shipped offline; default: the profile's, "
                        "scratch on smoke/classroom, imagenet on paper). --set after it "
                        "overrides single settings")
    g.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                   help="auto (CUDA when available), cpu or cuda (default: auto)")
    g.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (each command names its default)")
    g.add_argument("--runs", type=Path, default=Path("runs"), metavar="DIR",
                   help="root of the cached runs: <runs>/<profile>/seed<S>/... (default: runs)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m tcul_helpers`` with all its subcommands."""
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    common = _common_options()

    def add(name: str, help_: str, description: str, epilog: str) -> argparse.ArgumentParser:
        description = "\n".join(textwrap.fill(par, 88) for par in description.split("\n"))
        return sub.add_parser(name, parents=[common], help=help_, description=description,
                              epilog=f"examples:\n{epilog}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("world", "generate the synthetic source and target worlds",
            "Generate (or reuse) the synthetic camera-network worlds of the profile and print "
            "their summaries: identities, cameras, images per split and time span.\n"
            "--out DIR is the world's root for one preset (with --preset both: DIR/source and "
            "DIR/target).",
            f"  {PROG} world --profile smoke\n"
            f"  {PROG} world --preset target --knob crowd_density=4 --out data/crowded\n"
            f"  {PROG} world --stats --preset target\n"
            f"  {PROG} world --stats --dataset market1501 --out data/market1501")
    p.add_argument("--preset", choices=(*PRESETS, "both"), default="both",
                   help="which world (default: both)")
    p.add_argument("--knob", dest="knobs", action="append", default=[], metavar="NAME=VALUE",
                   help="override a world knob, e.g. crowd_density=4, reappear_prob=0.2, "
                        "transit_frames=20,150 (repeatable)")
    p.add_argument("--overwrite", action="store_true",
                   help="regenerate a world whose root holds another world")
    p.add_argument("--stats", action="store_true",
                   help="also print the realism statistics (tcul_helpers.measurement.realism): "
                        "whole-crop "
                        "colour-histogram re-id beside chance, the person's share of the crop, "
                        "background variation, fragments and crowding")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="with --stats: read this dataset from --out instead of generating "
                        "(e.g. a real Market-1501 folder, to hold the world against it)")
    p.add_argument("--json", action="store_true", help="with --stats: print JSON")
    p.set_defaults(handler=cmd_world)

    p = add("source", "train (or reuse) the source baseline f_theta0",
            "Train the source model f_theta0 on the labelled source world (step 1 of "
            "Algorithm 1), or reuse it when it was trained with the same settings.\n"
            "Default --out: <runs>/<profile>/seed<S>/source.",
            f"  {PROG} source --profile smoke --evaluate")
    p.add_argument("--evaluate", action="store_true",
                   help="also print the baseline (direct transfer) on the target")
    p.set_defaults(handler=cmd_source)

    p = add("adapt", "run Algorithm 1 (TCUL / SUL / PUL) on the target",
            "Adapt the source model to the unlabelled target with Algorithm 1 and print one "
            "row per iteration. A stopped run resumes from its last completed iteration.\n"
            "Variants: tcul (temporal selection, Eq. 3), sul (similarity selection), pul "
            "(PUL-style: k-means every iteration, fine-tuned from f_theta0); no selection at "
            "all: --set selection=none.\n"
            "Default --out: <runs>/<profile>/seed<S>/<variant>.",
            f"  {PROG} adapt --profile smoke\n"
            f"  {PROG} adapt --variant sul --iterations 3 --fresh\n"
            f"  {PROG} adapt --profile paper --stop-after 4   (then again without it)\n"
            f"  {PROG} adapt --set selection=none --set n_clusters=150")
    p.add_argument("--variant", choices=tuple(VARIANTS), default="tcul",
                   help="method variant (default: tcul)")
    p.add_argument("--iterations", type=_non_negative_int, default=None, metavar="N",
                   help="number of iterations N_iter (shortcut for --set n_iter=N)")
    p.add_argument("--fresh", action="store_true",
                   help="start over instead of resuming the run in the output folder")
    p.add_argument("--stop-after", type=_non_negative_int, default=None, metavar="N",
                   help="stop once N iterations are complete (e.g. to fit a job's time "
                        "limit); the same command without it resumes there")
    p.set_defaults(handler=cmd_adapt)

    p = add("evaluate", "rank-1/5/10 and mAP of a checkpoint on the target",
            "Evaluate a saved model (model.pt, model_last.pt) on the profile's target "
            "query/gallery: rank-1, rank-5, rank-10 and mAP in percent.",
            f"  {PROG} evaluate runs/classroom/seed0/tcul/model_last.pt\n"
            f"  {PROG} evaluate runs/smoke/seed0/source/model.pt --profile smoke --json")
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a kit checkpoint file")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(handler=cmd_evaluate)

    p = add("sweep", "adapt once per value of one parameter",
            "Run the adaptation once per value of one setting (or world knob: crowd_density, "
            "reappear_prob) and print the final mAP and rank-1 of each. Each value is a "
            "point of the sweeps' cache, <param>/<variant>-<value>.json, shared with the "
            "sweeps command and the notebooks.\n"
            "Default --out: <runs>/<profile>/seed<S>/sweeps (sweeps-<start> for the "
            "profile's other start).",
            f"  {PROG} sweep --param lambda_fr --values 50,100,200\n"
            f"  {PROG} sweep --param n_clusters --values 100,200,400 --variant sul")
    p.add_argument("--param", required=True, metavar="NAME",
                   help="the setting to vary: lambda_fr, n_clusters, lambda_c, sim_threshold, ...")
    p.add_argument("--values", required=True, metavar="V1,V2,...",
                   help="comma-separated values, e.g. 50,100,200")
    p.add_argument("--variant", choices=tuple(VARIANTS), default="tcul",
                   help="method variant (default: tcul)")
    p.add_argument("--fresh", action="store_true", help="start every run over")
    p.set_defaults(handler=cmd_sweep)

    p = add("config", "print the resolved configuration",
            "Print the fully resolved configuration of the profile with the overrides applied, "
            "as JSON (--list: one field per line).",
            f"  {PROG} config --profile paper\n"
            f"  {PROG} config --profile smoke --set lambda_fr=50 --list")
    p.add_argument("--list", action="store_true", help="list every field with its value")
    p.set_defaults(handler=cmd_config)

    p = add("demo", "the whole experiment, written up in a report",
            "Run every stage (worlds, source model, TCUL and its variants, and on the CPU "
            "profiles the Fig. 4 grid of lambda_fr and K) and write the report. Default "
            "--out: <runs>/demo for the classroom profile and seed 0, else "
            "<runs>/demo-<profile>-seed<S>.",
            f"  {PROG} demo --profile smoke\n  {PROG} demo --seed 1 --fresh\n"
            f"  {PROG} demo --no-sweeps   (no Fig. 4 grid: 3 of the 5 claims decided)")
    p.add_argument("--fresh", action="store_true", help="start over instead of reusing runs")
    p.add_argument("--no-sweeps", action="store_true",
                   help="skip the Fig. 4 grid (lambda_fr, K); the report draws the points "
                        "`make sweeps` cached")
    p.set_defaults(handler=cmd_demo)

    p = add("sweeps", "the report's parameter sweeps",
            "Run the parameter sweeps of the report (lambda_fr, K, crowd density, "
            "reappearance), cached. Default --out: <runs>/<profile>/seed<S>/sweeps "
            "(the profile's other start: sweeps-<start>).",
            f"  {PROG} sweeps --profile classroom\n  {PROG} sweeps --only lambda_fr")
    p.add_argument("--only", default=None, metavar="NAME[,NAME]",
                   help="run only these sweeps (comma-separated)")
    p.set_defaults(handler=cmd_sweeps)

    p = add("prepare", "compute everything the notebooks read, before a lab",
            "Compute, once, everything the teaching notebooks read for a profile and seed: "
            "the worlds, the sweeps of Fig. 4 (lambda_fr and K), f_theta0 from both starts "
            "and the demo of each start (TCUL, SUL, PUL-style, the report). A stopped "
            "preparation resumes where it stopped; a prepared one is reused in seconds. "
            "Outputs: <runs>/<profile>/seed<S>/ and the demo folders.",
            f"  {PROG} prepare\n  {PROG} prepare --profile smoke --seed 1\n"
            f"  {PROG} prepare --world-sweeps   (also crowd density and re-appearance)")
    p.add_argument("--world-sweeps", action="store_true",
                   help="also the crowd-density and re-appearance sweeps (notebook 08's "
                        "world explorers)")
    p.set_defaults(handler=cmd_prepare)
    return parser


# ----------------------------------------------------------------------------- helpers
def build_config(args: argparse.Namespace, variant: str | None = None,
                 **extra: Any) -> Config:
    """The configuration of ``args``: profile, ``--set``, ``--seed``, ``--device``, ``extra``."""
    overrides: dict[str, Any] = parse_set(args.sets)
    if "profile" in overrides:
        raise TCULError("set the profile with --profile, not --set profile=...")
    if variant is not None and "variant" in overrides:
        raise TCULError("choose the variant with --variant, not --set variant=...")
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.device is not None:
        overrides["device"] = args.device
    if "start" in overrides:
        raise TCULError("choose the start with --start, not --set start=...")
    if args.start is not None:
        overrides["start"] = args.start
    overrides.update(extra)
    if variant is not None:
        overrides["variant"] = variant
    # absolute roots: runs written here match the notebooks' (which start in notebooks/)
    return get_config(args.profile, **overrides).absolute_roots()


def _progress(args: argparse.Namespace) -> bool:
    from ..infra.distributed import is_main

    return not args.quiet and is_main()


def _fmt(value: Any, digits: int = 1) -> str:
    """A score in the command line's tables: ``-`` when missing."""
    from ..infra.formatting import number

    return number(value, digits, missing="-")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _parse_knobs(items: list[str]) -> dict[str, Any]:
    """``["name=value"]`` to typed knob overrides: JSON values, ``a,b`` pairs, else strings."""
    out: dict[str, Any] = {}
    for key, text in parse_set(items).items():
        text = text.strip()
        try:
            out[key] = json.loads(text)
            continue
        except json.JSONDecodeError:
            pass
        parts = [p.strip() for p in text.split(",")]
        if len(parts) > 1 and all(re.fullmatch(r"-?\d+", p) for p in parts):
            out[key] = [int(p) for p in parts]
        else:
            out[key] = text
    return out


def _datasets(cfg: Config, args: argparse.Namespace) -> Callable[[str], Any]:
    """``preset -> dataset`` of ``cfg``, each read (or generated) once per command: a real
    folder's listing and content key serve both its run folder's name and the run."""
    from . import pipeline

    return functools.cache(lambda preset: pipeline.ensure_world(cfg, preset,
                                                                progress=_progress(args)))


def _load_source_model(cfg: Config, args: argparse.Namespace, out_dir: Path | None = None,
                       datasets: Callable[[str], Any] | None = None):
    """(f_theta0, its folder): trained on the source world, or reused from disk."""
    from . import pipeline

    datasets = datasets or _datasets(cfg, args)
    source = datasets("source")
    out = out_dir if out_dir is not None else pipeline.source_dir(cfg, args.runs, datasets)
    model = pipeline.ensure_source_model(cfg, source, out, device=cfg.device,
                                         progress=_progress(args), log=print)
    return model, out


def _run_adaptation(cfg: Config, model: Any, target: Any, run_dir: Path,
                    args: argparse.Namespace, fresh: bool, stop_after: int | None = None):
    """Algorithm 1 with ``cfg`` (its variant applied once, by :func:`build_config`). The
    kit's own run folder, named after the settings and the data, is started over when its
    run was computed on data that are gone (a world regenerated in place); a folder the user
    named (``--out``) is never started over unasked."""
    from . import pipeline

    return pipeline.run_adaptation(cfg, model, target, run_dir, device=cfg.device,
                                   progress=_progress(args), fresh=fresh, log=print,
                                   stop_after=stop_after,
                                   restart_on_other_data=args.out is None)


def _check_output(cfg: Config, args: argparse.Namespace, done: Path | None = None) -> None:
    """Refuse, before minutes of training, an output folder (``--out``, else ``--runs``)
    the results could not be written to: a file, read-only, or too little free space for
    two checkpoints (the committed one and the next iteration's). ``done``: a file whose
    presence says the results may already be there (a read-only shared folder is then read
    without writing, and anything missing is refused with the same one line). Under
    torchrun rank 0 looks, and every rank stops with its one line."""
    from ..infra.distributed import on_main

    on_main(_check_output_here, cfg, args, done)


def _check_output_here(cfg: Config, args: argparse.Namespace, done: Path | None) -> None:
    """:func:`_check_output` in this process."""
    from ..infra.atomic_files import check_writable
    from ..training.models import checkpoint_bytes

    folder = args.out if args.out is not None else args.runs
    try:
        check_writable(folder, "output folder",
                       2 * checkpoint_bytes(cfg.arch, cfg.embedding_dim))
    except TCULError:
        if done is None or not done.is_file():
            raise


# ----------------------------------------------------------------------------- commands
def _print_world(summary: dict) -> None:
    how = "reused" if summary.get("reused") else f"generated in {summary['seconds']:.1f} s"
    ims = summary["images"]
    print(f"{summary['preset']} world ({summary['scale']}, seed {summary['seed']}): "
          f"{summary['root']} [{how}]")
    print(f"  identities: {summary['ids']['train']} train, {summary['ids']['test']} test; "
          f"cameras: {summary['cameras']}")
    print(f"  images: train {ims['train']}, query {ims['query']}, gallery {ims['gallery']}")
    print(f"  time span: {summary['time_span_frames']:,} frames")


def cmd_world(args: argparse.Namespace) -> int:
    """Generate or reuse the synthetic worlds and print their summaries."""
    from ..data.synthetic import make_world
    from . import pipeline

    cfg = build_config(args)
    knobs = _parse_knobs(args.knobs)
    if args.dataset is not None or args.json:
        if not args.stats:
            raise TCULError("--dataset and --json go with --stats (the realism statistics)")
    if args.dataset is not None:
        if args.out is None:
            raise TCULError("--dataset needs --out DIR, the dataset's root folder")
        if knobs:
            raise TCULError("--knob sets a generated world's knobs: it does not go with "
                            "--dataset, which reads a folder")
        _print_stats(load_dataset(args.dataset, args.out), cfg, args)
        return 0
    presets = ("source", "target") if args.preset == "both" else (args.preset,)
    for preset in presets:
        name = cfg.source if preset == "source" else cfg.target
        root = args.out
        if root is not None and args.preset == "both":
            root = root / preset
        if name != "synthetic":
            if knobs:
                raise TCULError(f"the {preset} dataset of profile {cfg.profile} is the real "
                                f"{name}: world knobs apply to synthetic worlds only")
            ds = pipeline.ensure_world(cfg, preset, progress=_progress(args), root=root)
            s = ds.summary()
            print(f"{preset} dataset {name} (real, nothing generated): {s['root']}")
            print(f"  identities: {s['train']['ids']} train; cameras: {s['train']['cameras']}")
            print(f"  images: train {s['train']['images']}, query {s['query']['images']}, "
                  f"gallery {s['gallery']['images']}")
            if args.stats:
                _print_stats(ds, cfg, args)
            continue
        if root is None:
            root = pipeline.world_root(cfg, preset)
        try:
            summary = make_world(root, preset, cfg.seed, scale=cfg.world_scale,
                                 progress=_progress(args), overwrite=args.overwrite, **knobs)
        except TCULError as exc:  # name the command line's switch, not the function's
            raise TCULError(str(exc).replace(" (Python: make_world(..., overwrite=True))", "")
                            ) from None
        _print_world(summary)
        if args.stats:
            _print_stats(load_dataset("synthetic", root), cfg, args)
    return 0


def _print_stats(ds: Any, cfg: Config, args: argparse.Namespace) -> None:
    from ..measurement.realism import format_statistics, realism_statistics

    stats = realism_statistics(ds, lambda_fr=cfg.lambda_fr, seed=cfg.seed)
    print(json.dumps(stats, indent=1) if args.json else format_statistics(stats))


def cmd_source(args: argparse.Namespace) -> int:
    """Train or reuse f_theta0; optionally print its direct-transfer score on the target."""
    from ..infra.device import resolve_device
    from ..measurement.evaluation import evaluate_model
    from . import pipeline

    cfg = build_config(args)
    data = _datasets(cfg, args)
    _check_output(cfg, args,
                  (args.out or pipeline.source_dir(cfg, args.runs, data)) / "source.json")
    model, out = _load_source_model(cfg, args, args.out, data)
    print(f"source model: {out / 'model.pt'}")
    if args.evaluate:
        target = data("target")
        scores = evaluate_model(model, target, cfg, resolve_device(cfg.device),
                                progress=_progress(args))
        print(f"baseline on the target ({target.name}): rank-1 {scores['rank1']:.1f}  "
              f"rank-5 {scores['rank5']:.1f}  rank-10 {scores['rank10']:.1f}  "
              f"mAP {scores['mAP']:.1f}")
    return 0


def _history_table(history: list[dict], baseline: dict) -> str:
    rows = [["0", "-", "-", "-", "-", _fmt(baseline.get("mAP")), _fmt(baseline.get("rank1"))]]
    for r in history:
        rows.append([str(r["iteration"]), str(r["n_reliable"]), str(r["n_pseudo_ids"]),
                     _fmt(r.get("precision"), 3), _fmt(r.get("nmi"), 3),
                     _fmt(r.get("mAP")), _fmt(r.get("rank1"))])
    return _table(["iteration", "reliable", "pseudo-ids", "precision", "NMI", "mAP", "rank-1"],
                  rows)


def cmd_adapt(args: argparse.Namespace) -> int:
    """Algorithm 1 for one variant; prints the per-iteration table."""
    from . import pipeline
    from .run_store import HISTORY

    extra = {} if args.iterations is None else {"n_iter": args.iterations}
    cfg = build_config(args, variant=args.variant, **extra)
    data = _datasets(cfg, args)
    run_dir = args.out or pipeline.variant_dir(cfg, args.variant, args.runs, data)
    _check_output(cfg, args, Path(run_dir) / HISTORY)
    model, _ = _load_source_model(cfg, args, datasets=data)
    target = data("target")
    result = _run_adaptation(cfg, model, target, run_dir, args, args.fresh,
                             stop_after=args.stop_after)
    print()
    print(_history_table(result.history, result.baseline))
    print(f"status: {result.status}")
    print(f"history: {Path(run_dir) / HISTORY}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint on the target query/gallery."""
    from ..infra.device import resolve_device
    from ..measurement.evaluation import evaluate_model
    from ..training.models import load_checkpoint
    from . import pipeline

    cfg = build_config(args)
    device = resolve_device(cfg.device)
    model, meta = load_checkpoint(args.checkpoint, arch=cfg.arch, device=device)
    cfg = _checkpoint_input_size(cfg, model, args)
    target = pipeline.ensure_world(cfg, "target", progress=_progress(args))
    scores = evaluate_model(model, target, cfg, device, progress=_progress(args))
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "arch": cfg.arch,
                          "dataset": target.name, "target_root": target.root, "meta": meta,
                          **scores}, indent=2))
        return 0
    print(f"checkpoint {args.checkpoint} ({cfg.arch}) on {target.name} {target.root}: "
          f"{len(target.query)} queries, {len(target.gallery)} gallery images")
    print(_table(["rank-1", "rank-5", "rank-10", "mAP"],
                 [[_fmt(scores[k]) for k in ("rank1", "rank5", "rank10", "mAP")]]))
    return 0


def _checkpoint_input_size(cfg: Config, model: Any, args: argparse.Namespace) -> Config:
    """``cfg`` at the input size the checkpoint was trained at: a network scored at another
    size gives plausible but wrong numbers. A size set by hand (--set height/width) that
    differs is refused."""
    size = getattr(model, "trained_input_size", None)
    if size is None or size == (cfg.height, cfg.width):
        return cfg
    given = parse_set(args.sets)
    if "height" in given or "width" in given:
        raise TCULError(
            f"checkpoint {args.checkpoint} was trained at {size[0]}x{size[1]} but "
            f"--set asks for {cfg.height}x{cfg.width}: drop --set height/width (the "
            "checkpoint's size is used) or evaluate a checkpoint of that size")
    print(f"using the checkpoint's input size {size[0]}x{size[1]} "
          f"(the {cfg.profile} profile's is {cfg.height}x{cfg.width})", file=sys.stderr)
    return cfg.replace(height=size[0], width=size[1])


def cmd_sweep(args: argparse.Namespace) -> int:
    """Adapt once per value of ``--param``, each value a cached point of
    :func:`tcul_helpers.experiment.sweeps.run_point`; print the table."""
    from . import sweeps

    param = args.param.strip()
    if param in ("profile", "variant"):
        raise TCULError(f"{param} cannot be swept here: use --{param} with one value per run")
    values = [v.strip() for v in args.values.split(",") if v.strip()]
    if not values:
        raise TCULError("--values is empty: give comma-separated values, e.g. 50,100,200")
    base = build_config(args)
    own = sorted(set(parse_set(args.sets)) & set(variant_settings(args.variant, base.profile)))
    if own:
        raise TCULError(f"--set {', '.join(own)}: the sweep runs --variant {args.variant} with "
                        "its own value; sweep it with --param, or choose another --variant")
    _check_output(base, args)
    # every value is checked before anything runs
    typed = [_world_knob_value(base, param, v) if param in sweeps.WORLD_SWEEPS
             else getattr(build_config(args, **{param: v}), param) for v in values]
    out = args.out or sweeps.default_dir(base, args.runs)
    shared = None if is_source_setting(param) else _load_source_model(base, args)[0]
    points = [sweeps.run_point(base, param, args.variant, v, out, source_model=shared,
                               progress=_progress(args), device=base.device, fresh=args.fresh)
              for v in typed]
    print()
    print(_table([param, "mAP", "rank-1", "baseline mAP"],
                 [[sweeps.value_name(v), _fmt(p["mAP"]), _fmt(p["rank1"]),
                   _fmt(p["baseline"]["mAP"])] for v, p in zip(typed, points, strict=True)]))
    print(f"points: {Path(out) / param}")
    return 0


def _world_knob_value(cfg: Config, knob: str, text: str) -> Any:
    """One ``--values`` entry of a world knob, parsed as ``world --knob`` parses it and
    checked by the generator's own rules
    (:func:`~tcul_helpers.data.synthetic.presets.resolve_knobs`)."""
    from ..data.synthetic.presets import resolve_knobs

    value = _parse_knobs([f"{knob}={text}"])[knob]
    return getattr(resolve_knobs("target", cfg.world_scale, {knob: value}), knob)


def cmd_config(args: argparse.Namespace) -> int:
    """Print the resolved configuration."""
    cfg = build_config(args)
    data = cfg.to_dict()
    if args.list:
        width = max(len(k) for k in data)
        for key, value in data.items():
            print(f"{key.ljust(width)}  {json.dumps(value)}")
    else:
        print(json.dumps(data, indent=2, sort_keys=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole experiment (:func:`tcul_helpers.experiment.demo.run_demo`)."""
    from . import demo, sweeps
    cfg = build_config(args)
    _check_output(cfg, args)
    out = args.out or demo.default_out(cfg, args.runs)
    demo.run_demo(cfg, out_dir=out, fresh=args.fresh, progress=_progress(args),
                  device=cfg.device, sweeps_dir=sweeps.default_dir(cfg, args.runs),
                  runs=args.runs, fig4=False if args.no_sweeps else None)
    print(f"demo finished: open {Path(out) / 'report.md'}")
    return 0


def cmd_sweeps(args: argparse.Namespace) -> int:
    """The report's parameter sweeps (:func:`tcul_helpers.experiment.sweeps.run_sweeps`)."""
    from . import sweeps
    cfg = build_config(args)
    _check_output(cfg, args)
    out = args.out or sweeps.default_dir(cfg, args.runs)
    only = None
    if args.only is not None:
        only = [s.strip() for s in args.only.split(",") if s.strip()] or None
    sweeps.run_sweeps(cfg, out_dir=out, progress=_progress(args), device=cfg.device,
                      only=only, shared_runs=sweeps.default_runs(cfg, args.runs))
    print(f"sweeps finished: outputs in {out}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Everything a lab reads (:func:`tcul_helpers.experiment.prepare.prepare_lab`)."""
    from .prepare import prepare_lab
    if args.out is not None:
        raise TCULError("prepare writes where the notebooks read: choose that folder with "
                        "--runs DIR, not --out")
    cfg = build_config(args)
    _check_output(cfg, args)
    times = prepare_lab(cfg, args.runs, world_sweeps=args.world_sweeps,
                        progress=_progress(args))
    print(_table(["step", "seconds"], [[k, f"{v:.0f}"] for k, v in times.items()]))
    print(f"prepared: profile {cfg.profile}, seed {cfg.seed}, in {sum(times.values()) / 60:.1f} "
          f"min; the notebooks read it from {Path(args.runs).resolve()}")
    return 0


# ----------------------------------------------------------------------------- entry point
RESUME = "run the same command again to resume from the last completed iteration"


def _fail(message: str, every_rank: bool = False) -> int:
    """Print the one line ``error: message`` (under torchrun: rank 0 alone, as every rank
    fails with the same line, unless ``every_rank``, prefixed with the rank) and return 2."""
    from ..infra.distributed import launch_rank, launched
    from ..infra.errors import user_message

    line = f"error: {' '.join(user_message(str(message)).split())}"
    if every_rank and launched():
        line = f"error: rank {launch_rank()}: {line[len('error: '):]}"
    if every_rank or launch_rank() == 0:
        print(line, file=sys.stderr)
        _torchrun_error_file(line)
    return 2


def _torchrun_error_file(line: str) -> None:
    """Under torchrun, leave ``line`` in the rank's error file, where torchrun's summary of
    the failed ranks shows it instead of "<N/A>"."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    import time

    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"message": {"message": line, "extraInfo": {
                "py_callstack": line, "timestamp": str(int(time.time()))}}}, fh)
    except OSError:
        pass  # the summary then says <N/A>; the line was printed


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a job's time limit, ``kill``, torchrun stopping the ranks when one ended),
    handled as Ctrl-C is: every completed iteration is kept, and the command resumes."""


def _sigterm_handler(owner: int) -> Callable[[int, Any], None]:
    """The handler for process ``owner``. A process forked from it (a worker of a
    multiprocessing pool, which its pool stops with SIGTERM) inherits the handler; there
    SIGTERM keeps its default meaning, so that the worker ends quietly."""
    def on_sigterm(signum: int, _frame: Any) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise _Terminated()

    return on_sigterm


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` for the length of a command; the handler before
    it comes back afterwards (``main`` may be called inside another program, e.g. a test).
    Outside the main thread, where Python cannot set handlers, SIGTERM keeps its own."""
    try:
        previous = signal.signal(signal.SIGTERM, _sigterm_handler(os.getpid()))
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _tolerant_output() -> None:
    """Paths may hold bytes that are not UTF-8 (Python decodes them as surrogates): print
    them escaped rather than fail, whatever the terminal's encoding."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _join_ranks(args: argparse.Namespace) -> None:
    """Under torchrun: join the process group (:func:`tcul_helpers.infra.distributed.init_from_env`)
    for a command that runs on several ranks, refuse the others; silence ranks above 0."""
    from ..infra import distributed

    if not distributed.launched():
        return
    command = getattr(args, "command", None)
    if command not in DISTRIBUTED_COMMANDS:
        raise TCULError(f"{command} runs in one process: start it without torchrun "
                        f"({PROG} {command} ...); under torchrun: "
                        f"{', '.join(DISTRIBUTED_COMMANDS)}")
    device = args.device or parse_set(args.sets).get("device", "auto")
    distributed.init_from_env(device)
    if not distributed.is_main():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
        warnings.simplefilter("ignore")  # rank 0 shows the same warnings


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    _tolerant_output()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        return _fail(f"choose a command ({', '.join(_commands(parser))}); "
                     f"see `{PROG} --help`")
    with _sigterm_as_interrupt():
        return _run(handler, args)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run the command ``handler``: its exit code, or the one line of a failure."""
    from ..infra import distributed

    try:
        _join_ranks(args)
        code = handler(args)
        distributed.settle()  # every rank finished the same command: they leave together
        return code  # the outcome is decided in the finally below
    except TCULError as exc:
        _outcome_decided()
        return _fail(str(exc))
    except KeyboardInterrupt as exc:
        _outcome_decided()
        torchrun = distributed.launched()
        who = f"rank {distributed.launch_rank()} " if torchrun else ""
        why = "interrupted"
        if isinstance(exc, _Terminated):
            why = "stopped by SIGTERM" + (" (torchrun stops every rank when one ends)"
                                          if torchrun else "")
        print(f"{who}{why}: {RESUME} (--fresh starts over)", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        _outcome_decided()
        reason = distributed.lost_peer(exc)
        if reason is None:
            raise
        return _fail(f"another rank of this torchrun run stopped ({reason}): {RESUME}",
                     every_rank=True)
    finally:
        _outcome_decided()
        distributed.shutdown()


def _outcome_decided() -> None:
    """The command has its outcome (an exit code, perhaps the one line that says why): from
    here SIGTERM is ignored until the process ends. Under torchrun it comes when another rank
    has ended, while this rank says its line or leaves the group, and must not turn the one
    line into a traceback. ``main`` gives SIGTERM its own handler back on return."""
    with contextlib.suppress(ValueError):  # outside the main thread: no handler was set
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


if __name__ == "__main__":
    raise SystemExit(main())
