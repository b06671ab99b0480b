"""Training and feature-extraction speed, in images per second.

CPU (always): the compact net at 64x32 (classroom profile)
  * train step on in-memory tensors (forward + CE + batch-hard triplet + backward + Adam);
  * the full fine-tuning loop (``finetune``) on generated 128x64 JPEGs with the image cache;
  * feature extraction (``extract_features``) with and without the cache.
  Target: >= 500 images/s for training on 2 CPU cores.
CUDA (when available): ResNet-50 at 256x128, batches of 16x8, AMP + channels-last, against
  float32 / contiguous for the ratio.

Usage: ``python benchmarks/bench_training.py [--threads 2] [--steps 20] [--no-cuda]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tcul_helpers.data.records import ImageRecord
from tcul_helpers.infra.device import autocast, seed_everything
from tcul_helpers.method.triplet_loss import baseline_loss, batch_hard_triplet_loss
from tcul_helpers.settings.config import get_config
from tcul_helpers.training.features import extract_features
from tcul_helpers.training.image_dataset import ImageCache
from tcul_helpers.training.loops import finetune
from tcul_helpers.training.models import build_model, model_to_device

CPU_TARGET = 500.0


def make_jpegs(folder: Path, n_ids: int, per_id: int, seed: int = 0) -> list[ImageRecord]:
    """``n_ids`` x ``per_id`` random 128x64 JPEGs (Market-1501's stored size)."""
    rng = np.random.default_rng(seed)
    records = []
    for pid in range(n_ids):
        base = rng.integers(30, 220, size=3)
        for k in range(per_id):
            arr = np.clip(base + rng.normal(0, 30, size=(128, 64, 3)), 0, 255).astype(np.uint8)
            path = folder / f"{pid:04d}_c{k % 6 + 1}_f{k:07d}.jpg"
            Image.fromarray(arr).save(path, quality=90)
            records.append(ImageRecord(str(path), pid, k % 6 + 1, k, pid))
    return records


def time_train_steps(model, device, size, batch, num_classes, steps, amp, channels_last) -> float:
    """Images/s of ``steps`` training steps (CE + triplet, Adam) on random tensors."""
    P, K = batch
    x = torch.randn(P * K, 3, *size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randperm(num_classes, device=device)[:P].repeat_interleave(K)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    model.train()

    def step() -> None:
        with autocast(device, amp):
            emb, logits = model(x)
        loss = baseline_loss(emb, logits, y, 0.5)[0]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * P * K / (time.perf_counter() - start)


def time_inference(model, device, size, batch_size, steps, amp, channels_last) -> float:
    """Images/s of eval-mode forward passes on random tensors."""
    x = torch.randn(batch_size, 3, *size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    model.eval()
    with torch.inference_mode():
        for _ in range(3):
            with autocast(device, amp):
                model(x)
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            with autocast(device, amp):
                model(x)
        sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_section(args) -> None:
    device = torch.device("cpu")
    cfg = get_config("classroom", num_workers=0)
    print(f"== CPU, {torch.get_num_threads()} threads: compact at {cfg.height}x{cfg.width}, "
          f"embedding {cfg.embedding_dim}, batch {cfg.batch_ids}x{cfg.batch_instances}")
    seed_everything(0)
    size = (cfg.height, cfg.width)
    model = build_model("compact", 200, cfg.embedding_dim)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"compact parameters: {n_params / 1e3:.0f}k")
    step = time_train_steps(model, device, size, (cfg.batch_ids, cfg.batch_instances), 200,
                            args.steps, amp=False, channels_last=False)
    print(f"train step (tensors in memory):     {step:8.0f} img/s  "
          f"(x{step / CPU_TARGET:.2f} of the {CPU_TARGET:.0f} img/s target)")
    inf = time_inference(model, device, size, cfg.eval_batch_size, max(args.steps // 2, 3),
                         amp=False, channels_last=False)
    print(f"inference (tensors in memory):      {inf:8.0f} img/s")
    if args.no_pipeline:
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        records = make_jpegs(Path(tmp), args.ids, args.per_id)
        print(f"generated {len(records)} JPEGs of 128x64 in {time.perf_counter() - t0:.1f}s")
        cache = ImageCache(cfg.height, cfg.width)
        t0 = time.perf_counter()
        cache.preload((r.path for r in records), progress=False)
        decode = len(records) / (time.perf_counter() - t0)
        print(f"decode + resize into the cache:     {decode:8.0f} img/s")
        labels = np.array([r.pid for r in records])
        ft_cfg = cfg.replace(target_epochs=args.epochs)
        model = build_model("compact", 0, cfg.embedding_dim)
        stats = finetune(model, records, labels, ft_cfg, device, progress=False,
                         image_cache=cache)
        ips = stats["images_per_s"]
        print(f"finetune loop (cached JPEGs):       {ips:8.0f} img/s  "
              f"(x{ips / CPU_TARGET:.2f} of target; {stats['batches']} batches, "
              f"{stats['seconds']:.1f}s)")
        for name, cache_arg in (("cached", cache), ("decoding", None)):
            t0 = time.perf_counter()
            extract_features(model, records, cfg, device, progress=False, image_cache=cache_arg)
            rate = len(records) / (time.perf_counter() - t0)
            print(f"extract_features ({name}):{' ' * (14 - len(name))}{rate:8.0f} img/s")


def cuda_section(args) -> None:
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    print(f"== CUDA: {torch.cuda.get_device_name(device)}; ResNet-50 at 256x128, batch 16x8")
    results = {}
    for amp, cl in ((False, False), (True, True)):
        seed_everything(0)
        model = build_model("resnet50", 751, 2048)
        if cl:
            model_to_device(model, device)
        else:
            model.to(device)
        train = time_train_steps(model, device, (256, 128), (16, 8), 751, args.steps, amp, cl)
        inf = time_inference(model, device, (256, 128), 256, args.steps, amp, cl)
        label = "AMP + channels-last" if amp else "float32, contiguous "
        results[amp] = (train, inf)
        print(f"{label}: train {train:8.0f} img/s   inference {inf:8.0f} img/s")
        del model
        torch.cuda.empty_cache()
    (t0, i0), (t1, i1) = results[False], results[True]
    print(f"speed-up of AMP + channels-last: train x{t1 / t0:.2f}, inference x{i1 / i0:.2f}")
    # the whole loss in float32 under autocast: a quick check that it stays finite
    emb = torch.randn(128, 2048, device=device, dtype=torch.float16)
    labels = torch.arange(16, device=device).repeat_interleave(8)
    value = float(batch_hard_triplet_loss(emb, labels, 0.5))
    print(f"triplet loss on float16 embeddings: {value:.3f} (finite: {np.isfinite(value)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--ids", type=int, default=150, help="identities of generated JPEGs")
    parser.add_argument("--per-id", type=int, default=8, help="JPEGs per identity")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs timed")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the JPEG loop")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU section")
    parser.add_argument("--no-cuda", action="store_true", help="skip the CUDA section")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.no_cpu:
        cpu_section(args)
    if not args.no_cuda and torch.cuda.is_available():
        cuda_section(args)
    elif not args.no_cuda:
        print("== CUDA not available: ResNet-50 benchmark skipped")


if __name__ == "__main__":
    main()
