"""The one device check: the paper's network on a GPU, through the kit's own code paths.

Usage: ``python benchmarks/bench_gpu.py [--ids 300] [--epochs 2]`` (``make gpu-check``).
Runs in a few minutes on one modern GPU and prints one table:

* ResNet-50 at 256x128, float16 AMP + channels-last, P x K = 16 x 8: training images/s
  through :func:`tcul_helpers.training.train_source` on a synthetic JPEG world (decoding,
  augmentation and the loader workers included), **beside the same network on synthetic
  in-memory tensors** (the ceiling of the GPU) and their ratio (goal >= 0.7);
* extraction images/s (:func:`tcul_helpers.features.extract_features`) and the peak GPU
  memory;
* one TCUL iteration with the paper profile's settings on the market-like synthetic world,
  time per stage (features, k-means, Eq. 1-3, fine-tuning, Eq. 6-7, evaluation);
* the CUDA tests (``tests/test_cuda.py``), passed / failed.

Without a CUDA device it prints one line saying so and exits 0: the script waits for the
first GPU. Multi-GPU (torchrun / DDP) is not part of the kit yet.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import time_train_steps  # noqa: E402

from tcul_helpers.algorithm import prepare_features, select  # noqa: E402
from tcul_helpers.clustering import assign_clusters, kmeans_init, update_centers  # noqa: E402
from tcul_helpers.config import get_config  # noqa: E402
from tcul_helpers.device import seed_everything  # noqa: E402
from tcul_helpers.evaluation import evaluate_model  # noqa: E402
from tcul_helpers.features import extract_features  # noqa: E402
from tcul_helpers.models import build_model, model_to_device  # noqa: E402
from tcul_helpers.pipeline import ensure_world  # noqa: E402
from tcul_helpers.training import finetune, train_source  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="source epochs timed (last counts)")
    ap.add_argument("--steps", type=int, default=30, help="steps of the in-memory ceiling")
    ap.add_argument("--workers", type=int, default=8, help="loader workers")
    ap.add_argument("--no-tests", action="store_true", help="skip tests/test_cuda.py")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device on this machine; nothing measured (run it on a GPU)")
        return
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    rows: list[tuple[str, str]] = [("device", torch.cuda.get_device_name(device)),
                                   ("torch", torch.__version__)]
    home = Path(tempfile.mkdtemp(prefix="tcul-gpu-"))
    cfg = get_config("paper", source="synthetic", target="synthetic", world_scale="classroom",
                     source_root=str(home / "src"), target_root=str(home / "tgt"),
                     source_epochs=args.epochs, num_workers=args.workers, imagenet_init=False)
    source = ensure_world(cfg, "source", progress=False)
    target = ensure_world(cfg, "target", progress=False)
    cfg = cfg.replace(n_clusters=target.num_train_pids)
    rows.append(("worlds", f"source {len(source.train)} / target {len(target.train)} train "
                           f"images, {cfg.height}x{cfg.width}"))

    # 1. training through the kit's loop, beside the in-memory ceiling
    torch.cuda.reset_peak_memory_stats()
    model, hist = train_source(source.train, cfg, device, progress=False)
    kit = hist["images_per_s"][-1]
    seed_everything(0)
    ceiling_net = model_to_device(build_model("resnet50", hist["num_classes"], cfg.embedding_dim),
                                  device)
    ceiling = time_train_steps(ceiling_net, device, (cfg.height, cfg.width),
                               (cfg.batch_ids, cfg.num_instances_source), hist["num_classes"],
                               args.steps, True, True)
    del ceiling_net
    rows += [("train img/s, kit loop (JPEG, workers)", f"{kit:.0f}"),
             ("train img/s, in-memory tensors (ceiling)", f"{ceiling:.0f}"),
             ("ratio kit / ceiling (goal >= 0.7)", f"{kit / ceiling:.2f}"),
             ("AMP steps skipped (last epoch)", str(hist["amp_skipped_steps"][-1]))]

    # 2. extraction
    z, secs = _timed(lambda: extract_features(model, target.train, cfg, device, progress=False))
    rows.append(("extraction img/s", f"{len(target.train) / secs:.0f}"))

    # 3. one TCUL iteration, stage by stage
    net = model.drop_classifier()
    stages: dict[str, float] = {}
    z = prepare_features(z, cfg)
    stages["(a) features"] = secs
    centers, stages["k-means init"] = _timed(lambda: kmeans_init(z, cfg.n_clusters, cfg.seed,
                                                                 n_iter=cfg.kmeans_iters))
    camids = np.array([r.camid for r in target.train])
    frames = np.array([r.frame for r in target.train])
    def assign_and_select():
        lab = assign_clusters(z, centers)
        return lab, select(cfg, z, lab, centers, camids, frames)

    (labels, kept), stages["(b)-(c) Eq. 1-3"] = _timed(assign_and_select)
    idx = np.flatnonzero(kept)
    _, stages["(d) fine-tuning, Eq. 4-5"] = _timed(lambda: finetune(
        net, [target.train[i] for i in idx], labels[idx], cfg, device, progress=False))
    z2, stages["(e) features"] = _timed(lambda: prepare_features(
        extract_features(net, target.train, cfg, device, progress=False), cfg))
    _, stages["(e) Eq. 6-7"] = _timed(lambda: update_centers(centers, z2, labels, cfg.lambda_c,
                                                             cfg.beta))
    scores, stages["evaluation"] = _timed(lambda: evaluate_model(net, target, cfg, device,
                                                                progress=False))
    rows += [(f"iteration: {k}", f"{v:.1f} s") for k, v in stages.items()]
    rows += [("iteration: reliable images", f"{kept.sum()} of {len(kept)}"),
             ("iteration: target mAP after it", f"{scores['mAP']:.1f}"),
             ("peak GPU memory", f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")]

    # 4. the CUDA tests
    if not args.no_tests:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_cuda.py"],
                              cwd=REPO, capture_output=True, text=True)
        rows.append(("tests/test_cuda.py", proc.stdout.strip().splitlines()[-1]))
    rows.append(("multi-GPU (DDP)", "not in the kit yet"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
