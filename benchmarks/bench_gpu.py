"""The one device check: the paper's network on a GPU, through the kit's own code paths.

Usage: ``python benchmarks/bench_gpu.py`` (``make gpu-check``). Runs in a few minutes on one
modern GPU and prints one table, a row as soon as it is measured (a section that fails
prints its one-line error in its row and the others still run):

* ResNet-50 at 256x128, float16 AMP + channels-last, P x M = 16 x 8: training images/s
  through :func:`tcul_helpers.training.loops.train_source` on a synthetic JPEG world (decoding,
  augmentation and the loader workers included), **beside the same network on synthetic
  in-memory tensors** (the ceiling of the GPU) and their ratio (goal >= 0.7);
* extraction images/s (:func:`tcul_helpers.training.features.extract_features`) and the peak GPU
  memory;
* the CUDA tests (``tests/test_cuda.py``), passed / failed;
* one TCUL iteration with the paper profile's settings (20 fine-tuning epochs) on the
  market-like synthetic world (751 + 750 identities, as Market-1501), time per stage
  (features, k-means, Eq. 1-3, fine-tuning, Eq. 6-7, evaluation);
* with more than one GPU: the same short ``adapt`` run by ``torchrun --nproc_per_node N``
  (DDP) and by one process: wall times, and whether iteration 1's pseudo-labels agree.

Without a CUDA device it prints one line saying so and exits 0. ``--dry-run`` runs the
same code on the CPU at toy sizes (smoke world, 64x32, a few steps), to check the script
itself before spending GPU time; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import sync, time_train_steps  # noqa: E402

from tcul_helpers.experiment.pipeline import ensure_world  # noqa: E402
from tcul_helpers.experiment.run_store import TRACE  # noqa: E402
from tcul_helpers.infra.device import seed_everything  # noqa: E402
from tcul_helpers.measurement.evaluation import evaluate_model  # noqa: E402
from tcul_helpers.method.assignment import assign_clusters  # noqa: E402
from tcul_helpers.method.center_update import update_centers
from tcul_helpers.method.kmeans import kmeans_init  # noqa: E402
from tcul_helpers.method.selection import select_temporal  # noqa: E402
from tcul_helpers.settings.config import get_config  # noqa: E402
from tcul_helpers.training.features import extract_features, prepare_features  # noqa: E402
from tcul_helpers.training.loops import finetune, train_source  # noqa: E402
from tcul_helpers.training.models import build_model, model_to_device  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WIDTH = 50


def row(key: str, value: object) -> None:
    """One line of the table, printed at once (a run cut short keeps what it measured)."""
    print(f"{key:<{WIDTH}}  {value}", flush=True)


def section(name: str, fn: Callable[[], None]) -> None:
    """Run one section; an error becomes that section's row instead of ending the script."""
    t0 = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the table goes on
        row(f"{name}: FAILED", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    row(f"({name}: {time.perf_counter() - t0:.0f} s wall)", "")


def _timed(device: torch.device, fn: Callable[[], object]) -> tuple[object, float]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def _config(args: argparse.Namespace, home: Path, scale: str):
    """The paper profile on the synthetic worlds of ``scale`` (toy sizes with --dry-run)."""
    toy = dict(height=64, width=32, batch_ids=4, num_instances_source=4, batch_instances=4,
               eval_batch_size=64, kmeans_iters=5) if args.dry_run else {}
    return get_config("paper", source="synthetic", target="synthetic", world_scale=scale,
                      source_root=str(home / scale / "src"),
                      target_root=str(home / scale / "tgt"),
                      source_epochs=args.epochs, num_workers=args.workers,
                      imagenet_init=False, device=args.device_name, seed=0, **toy)


def bench_training(args, home, device, state) -> None:
    """Section 1: the kit's training loop beside the in-memory ceiling; extraction."""
    cfg = _config(args, home, args.train_scale)
    source = ensure_world(cfg, "source", progress=False)
    target = ensure_world(cfg, "target", progress=False)
    row("training worlds", f"{args.train_scale}: source {len(source.train)} / target "
                           f"{len(target.train)} train images at {cfg.height}x{cfg.width}")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model, hist = train_source(source.train, cfg, device, progress=False)
    # over all epochs, the workers' start-up included: one loader iterator serves every
    # epoch, so a single short epoch could be served from batches queued during the one
    # before (8 workers x 2 prefetched batches outnumber a 13-batch classroom epoch)
    seconds = sum(hist["seconds"])
    images = sum(r * t for r, t in zip(hist["images_per_s"], hist["seconds"], strict=True))
    kit = images / seconds
    row("train img/s, kit loop (JPEG, workers)",
        f"{kit:.0f} ({len(hist['seconds'])} epochs x {hist['batches_per_epoch']} batches, "
        f"{seconds:.1f} s)")
    seed_everything(0)
    net = model_to_device(build_model(cfg.arch, hist["num_classes"], cfg.embedding_dim), device)
    cuda = device.type == "cuda"
    ceiling = time_train_steps(net, device, (cfg.height, cfg.width),
                               (cfg.batch_ids, cfg.num_instances_source), hist["num_classes"],
                               args.steps, cuda, cuda)
    del net
    row("train img/s, in-memory tensors (ceiling)", f"{ceiling:.0f}")
    row("ratio kit / ceiling (goal >= 0.7)", f"{kit / ceiling:.2f}")
    row("AMP steps skipped (GradScaler's start-up)", hist["amp_skipped_steps"][-1])
    z, secs = _timed(device, lambda: extract_features(model, target.train, cfg, device,
                                                      progress=False))
    row("extraction img/s", f"{len(target.train) / secs:.0f}")
    if cuda:
        row("peak GPU memory (training, extraction)",
            f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    state["model"] = model


def bench_iteration(args, home, device, state) -> None:
    """Section 3: one TCUL iteration of the paper profile, stage by stage."""
    cfg = _config(args, home, args.scale)
    source = ensure_world(cfg, "source", progress=False)
    target = ensure_world(cfg, "target", progress=False)
    row(f"iteration world ({args.scale})",
        f"target {len(target.train)} train / {len(target.query)} query / "
        f"{len(target.gallery)} gallery images, {target.num_train_pids} ids")
    cfg = cfg.replace(n_clusters=target.num_train_pids, target_epochs=args.target_epochs)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = state.get("model")
    if model is None or args.scale != args.train_scale:  # f_theta0 of this world's source
        model, _ = train_source(source.train, cfg.replace(source_epochs=1), device,
                                progress=False)
    net = model.drop_classifier()
    stages: dict[str, float] = {}

    def features():
        return prepare_features(extract_features(net, target.train, cfg, device,
                                                 progress=False), cfg.l2_normalize)

    z, stages["(a) features"] = _timed(device, features)
    centers, stages["k-means init (K = #ids)"] = _timed(
        device, lambda: kmeans_init(z, cfg.n_clusters, cfg.seed, n_iter=cfg.kmeans_iters))
    camids = np.array([r.camid for r in target.train])
    frames = np.array([r.frame for r in target.train])

    def assign_and_select():
        lab = assign_clusters(z, centers)
        return lab, select_temporal(z, lab, centers, camids, frames, cfg.lambda_fr)

    (labels, kept), stages["(b)-(c) Eq. 1-3"] = _timed(device, assign_and_select)
    idx = np.flatnonzero(kept)
    stats, stages[f"(d) fine-tuning, Eq. 4-5 ({cfg.target_epochs} epochs)"] = _timed(
        device, lambda: finetune(net, [target.train[i] for i in idx], labels[idx], cfg, device,
                                 progress=False))
    z2, stages["(a) features of the fine-tuned model"] = _timed(device, features)
    _, stages["(e) Eq. 6-7"] = _timed(device, lambda: update_centers(
        centers, z2, labels, cfg.lambda_c, cfg.beta))
    scores, stages["evaluation (query x gallery)"] = _timed(
        device, lambda: evaluate_model(net, target, cfg, device, progress=False))
    for key, secs in stages.items():
        row(f"iteration: {key}", f"{secs:.1f} s")
    row("iteration: total", f"{sum(stages.values()):.1f} s")
    row("iteration: fine-tuning img/s", f"{stats['images_per_s']:.0f}"
        if "images_per_s" in stats else "n/a")
    row("iteration: reliable images", f"{int(kept.sum())} of {len(kept)}")
    row("iteration: target mAP after it", f"{scores['mAP']:.1f}")
    if device.type == "cuda":
        row("peak GPU memory (iteration)",
            f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def bench_tests(args) -> None:
    """Section 2: tests/test_cuda.py in its own process."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_cuda.py"], cwd=REPO, capture_output=True, text=True,
                          timeout=args.tests_timeout)
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    row("tests/test_cuda.py", lines[-1])
    if proc.returncode not in (0, 5):
        print(proc.stdout[-3000:], proc.stderr[-2000:], sep="\n", flush=True)


def _adapt_command(home: Path, out: Path, device: str, dry_run: bool) -> list[str]:
    sets = ["source=synthetic", "target=synthetic", "world_scale=smoke", "n_clusters=50",
            "target_epochs=2", "source_epochs=2", "imagenet_init=False",
            "num_workers=4", f"source_root={home}/ddp/src", f"target_root={home}/ddp/tgt"]
    if dry_run:
        sets += ["height=64", "width=32", "n_clusters=12", "eval_batch_size=64"]
    cmd = ["-m", "tcul_helpers", "adapt", "--profile", "paper", "--iterations", "2",
           "--device", device, "--quiet", "--runs", str(home / "ddp" / "runs"),
           "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def bench_ddp(args, home, nproc: int) -> None:
    """Section 4: ``torchrun --nproc_per_node N`` against one process, same f_theta0."""
    device = args.device_name
    single, multi = home / "ddp" / "single", home / "ddp" / "multi"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    times = {}
    for name, out, launcher in (
            ("1 process", single, [sys.executable]),
            (f"torchrun x {nproc}", multi, [sys.executable, "-m", "torch.distributed.run",
                                            "--nproc_per_node", str(nproc)])):
        t0 = time.perf_counter()
        proc = subprocess.run(launcher + _adapt_command(home, out, device, args.dry_run),
                              cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=args.tests_timeout)
        times[name] = time.perf_counter() - t0
        status = proc.stdout.strip().splitlines()[-2:] if proc.returncode == 0 else \
            (proc.stderr.strip().splitlines() or ["?"])[-1:]
        row(f"DDP: adapt, {name}", f"{times[name]:.0f} s (incl. source model), rc "
                                   f"{proc.returncode}: {' | '.join(status)[:120]}")
        if proc.returncode:
            return
    a, b = np.load(single / TRACE), np.load(multi / TRACE)
    row("DDP: iteration-1 pseudo-labels equal", f"{(a['labels_1'] == b['labels_1']).mean():.4f}")
    from sklearn.metrics import adjusted_rand_score

    row("DDP: iteration-2 labels ARI (1 vs N ranks)",
        f"{adjusted_rand_score(a['labels_2'], b['labels_2']):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8,
                    help="source epochs timed, all of them counted (default 8)")
    ap.add_argument("--steps", type=int, default=100, help="steps of the in-memory ceiling")
    ap.add_argument("--workers", type=int, default=8, help="loader workers")
    ap.add_argument("--train-scale", default="classroom",
                    help="world of the throughput section (default classroom)")
    ap.add_argument("--scale", default="market-like",
                    help="world of the TCUL iteration (default market-like, as Market-1501)")
    ap.add_argument("--target-epochs", type=int, default=None,
                    help="fine-tuning epochs of the iteration (default: the paper's, 20)")
    ap.add_argument("--only", default="train,tests,iteration,ddp",
                    help="sections to run, comma-separated (train,tests,iteration,ddp)")
    ap.add_argument("--tests-timeout", type=int, default=300, help="seconds per subprocess")
    ap.add_argument("--dry-run", action="store_true",
                    help="the same code on the CPU at toy sizes (checks the script only)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if args.dry_run:
        args.device_name, args.steps, args.epochs = "cpu", 2, 1
        args.train_scale = args.scale = "smoke"
        args.target_epochs = args.target_epochs or 1
        args.workers = min(args.workers, 2)
    elif not torch.cuda.is_available():
        print("bench_gpu: no CUDA device on this machine; nothing measured (run it on a GPU, "
              "or --dry-run to check the script on the CPU)")
        return
    else:
        args.device_name = "cuda"
        torch.backends.cudnn.benchmark = True
    if args.target_epochs is None:
        args.target_epochs = get_config("paper").target_epochs
    device = torch.device(args.device_name)
    row("device", torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)")
    row("torch / GPUs", f"{torch.__version__} / {torch.cuda.device_count()}")
    home = Path(tempfile.mkdtemp(prefix="tcul-gpu-"))
    state: dict = {}
    try:
        # every world first, before CUDA starts: the generator forks its rendering workers
        t0 = time.perf_counter()
        for scale in {args.train_scale, args.scale} if only & {"train", "iteration"} else ():
            for preset in ("source", "target"):
                ensure_world(_config(args, home, scale), preset, progress=False)
        row("worlds generated", f"{time.perf_counter() - t0:.0f} s")
        if "train" in only:
            section("training", lambda: bench_training(args, home, device, state))
        if "tests" in only and not args.dry_run:
            section("CUDA tests", lambda: bench_tests(args))
        if "iteration" in only:
            section("iteration", lambda: bench_iteration(args, home, device, state))
        if "ddp" in only:
            nproc = 2 if args.dry_run else torch.cuda.device_count()
            if nproc > 1:
                section("DDP", lambda: bench_ddp(args, home, nproc))
            else:
                row("DDP (torchrun)", "one GPU: not run (the gloo test in the suite covers "
                                      "the DDP logic on the CPU)")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
