"""CPU speed of the compact CNN against the MobileNetV2 ImageNet start, side by side, and
the roofline: how much of the machine each reaches, and how much of the step the kit's loop.

For each network and input size: training images/s (forward + CE + batch-hard triplet +
backward + SGD step, batch 64 = 16 identities x 4 images, the classroom P x M) and
extraction images/s (eval mode, no grad, batch 256) on random tensors in memory, with
``torch.set_num_threads(2)`` (a classroom laptop). Networks: ``compact`` and
``mobilenet_v2`` (ImageNet weights from the installed package) at the classroom input
64x32, and ``mobilenet_v2`` at 128x64. Prints the figures and the ratios to compact.

The networks take one step each in turn (train steps first, then extraction steps), and
each figure is the batch over the median step time: load from other processes then falls
on every network alike, and short disturbances do not count.

The roofline, in the same run: each step's cost in FLOPs (PyTorch's FLOP counter,
forward + backward for training, forward for extraction), the GFLOP/s each network achieves
beside the machine's own peak (a 2048 x 2048 matrix product, fp32 and bf16, same threads),
and, with ``--loop``, the kit's own source training (``train_source`` on the classroom
source world, from the cache, with its augmentation, sampler and logging) in images trained
per second beside the in-memory step of the same network: the loop / step ratio.

Every step runs in the kit's memory format and precision (channels-last, fp32).
``--formats`` also times the classroom-size steps contiguous (fp32) and channels-last with
bf16 autocast. ``--compile`` times ``torch.compile`` of the classroom-size training steps:
the compilation's seconds against the seconds the compiled step saves per image.

Usage: ``python benchmarks/bench_archs.py [--threads 2] [--seconds 25] [--min-cycles 8]
[--loop] [--loop-epochs 3] [--formats] [--compile]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from tcul_helpers.infra.device import seed_everything
from tcul_helpers.method.triplet_loss import baseline_loss
from tcul_helpers.training.models import (
    build_model,
    check_weights_hash,
    load_imagenet_state,
    mobilenet_v2_weights_file,
)

P, M = 16, 4  # batch 64
EVAL_BATCH = 256
NUM_CLASSES = 200  # the classroom source world's training identities
EMBEDDING_DIM = 128  # the classroom profile's

CASES = (("compact", (64, 32), False), ("mobilenet_v2", (64, 32), True),
         ("mobilenet_v2", (128, 64), True))


def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                       transposed, _output_padding, _groups, output_mask, out_shape=None,
                       **_kwargs) -> int:
    """FLOPs of a convolution's backward: the input gradient and the weight gradient each
    cost what the forward costs. PyTorch's own formula ignores ``groups`` there and counts a
    depthwise convolution of C channels as a dense one (its backward C + 1 times its
    forward, where it is 2 times), which inflates MobileNetV2's training cost several
    times over. For ``groups=1`` the two formulas agree."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


#: memory format and precision of a step: the kit's (channels-last, fp32), then the
#: contiguous layout and channels-last with bf16 autocast (``--formats`` times those too)
MODES = ("fp32 channels-last", "fp32 contiguous", "bf16 channels-last")


class Case:
    """One network at one input size and mode (:data:`MODES`), with its batches and
    optimiser, ready to be timed."""

    def __init__(self, arch: str, size: tuple[int, int], imagenet: bool,
                 mode: str = MODES[0]) -> None:
        seed_everything(0)
        self.arch, self.size, self.mode = arch, size, mode
        self.model = build_model(arch, NUM_CLASSES, EMBEDDING_DIM, imagenet_init=imagenet)
        self.params = sum(p.numel() for p in self.model.parameters()) / 1e6
        self.x_train = torch.randn(P * M, 3, *size)
        self.y = torch.randperm(NUM_CLASSES)[:P].repeat_interleave(M)
        self.x_eval = torch.randn(EVAL_BATCH, 3, *size)
        if "channels-last" in mode:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x_train = self.x_train.contiguous(memory_format=torch.channels_last)
            self.x_eval = self.x_eval.contiguous(memory_format=torch.channels_last)
        self.bf16 = mode.startswith("bf16")
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-2, momentum=0.9,
                                   weight_decay=5e-4)
        self.times: dict[str, list[float]] = {"train": [], "extract": []}

    @property
    def label(self) -> str:
        mode = "" if self.mode == MODES[0] else f" {self.mode}"
        return f"{self.arch} {self.size[0]}x{self.size[1]}{mode}"

    def autocast(self) -> torch.autocast:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self) -> None:
        """Forward + CE + batch-hard triplet + backward + SGD step on P x M images."""
        self.model.train()
        with self.autocast():
            emb, logits = self.model(self.x_train)
            loss = baseline_loss(emb.float(), logits.float(), self.y, 0.5)[0]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def extract_step(self) -> None:
        """Eval-mode forward pass without gradients on 256 images."""
        self.model.eval()
        with torch.no_grad(), self.autocast():
            self.model(self.x_eval)

    def flops(self, kind: str) -> float:
        """FLOPs per image of one ``kind`` step (PyTorch's FLOP counter, its convolution
        backward counted per group, :func:`conv_backward_flop`; the optimiser's update is
        not counted)."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(
            display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flop})
        if kind == "train":
            self.model.train()
            with counter:
                emb, logits = self.model(self.x_train)
                baseline_loss(emb, logits, self.y, 0.5)[0].backward()
            self.opt.zero_grad(set_to_none=True)
            return counter.get_total_flops() / (P * M)
        self.model.eval()
        with counter, torch.no_grad():
            self.model(self.x_eval)
        return counter.get_total_flops() / EVAL_BATCH

    def timed(self, kind: str) -> None:
        """One step of ``kind`` (train | extract), its wall-clock seconds recorded."""
        step = self.train_step if kind == "train" else self.extract_step
        t0 = time.perf_counter()
        step()
        self.times[kind].append(time.perf_counter() - t0)

    def rate(self, kind: str, q: float = 0.5) -> float:
        """Images/s of the ``q``-quantile step time of ``kind`` (0.5: the median step)."""
        batch = P * M if kind == "train" else EVAL_BATCH
        return batch / float(np.quantile(self.times[kind], q))


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 3.0) -> float:
    """GFLOP/s of an ``n`` x ``n`` matrix product in ``dtype`` (the best of repeated runs):
    the machine's practical peak for dense work at the current thread count."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def kit_loop_rate(arch: str, epochs: int) -> tuple[float, float, float]:
    """Images trained per second by the kit's own source training of ``arch`` (classroom
    profile, its input size and batch; the classroom source world, generated if missing)
    over ``epochs`` epochs: in the epochs alone, and with the one decoding of the images into
    the cache before them; and the seconds the whole call took."""
    from tcul_helpers.experiment.pipeline import ensure_world
    from tcul_helpers.settings.config import get_config
    from tcul_helpers.training.loops import train_source

    start = "imagenet" if arch == "mobilenet_v2" else "scratch"
    cfg = get_config("classroom", start=start, source_epochs=epochs, device="cpu",
                     num_workers=0)
    assert cfg.arch == arch and (cfg.batch_ids, cfg.num_instances_source) == (P, M)
    source = ensure_world(cfg, "source", progress=False)
    t0 = time.perf_counter()
    _model, hist = train_source(source.train, cfg, torch.device("cpu"), progress=False)
    seconds = time.perf_counter() - t0
    images = hist["batches_per_epoch"] * P * M * epochs
    return images / sum(hist["seconds"]), images / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--seconds", type=float, default=25.0,
                        help="seconds of interleaved steps for each of train and extract")
    parser.add_argument("--min-cycles", type=int, default=8,
                        help="at least this many steps of every network and kind")
    parser.add_argument("--loop", action="store_true",
                        help="also time the kit's own source training (the loop / step ratio)")
    parser.add_argument("--formats", action="store_true",
                        help="also time the 64x32 steps channels-last, fp32 and bf16 autocast")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile on the 64x32 training steps: its compile "
                             "time against the seconds it saves in a classroom run")
    parser.add_argument("--loop-epochs", type=int, default=3,
                        help="epochs of the kit's source training per network (3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    print(f"== CPU, {torch.get_num_threads()} threads; train: batch {P}x{M}={P * M}, SGD; "
          f"extract: batch {EVAL_BATCH}, eval, no grad; embedding {EMBEDDING_DIM}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(above about 0.5, other processes share the CPU and slow every figure)")
    t0 = time.perf_counter()
    path = mobilenet_v2_weights_file()
    check_weights_hash(path)
    load_imagenet_state("mobilenet_v2", path)
    print(f"mobilenet_v2 ImageNet weights: {path.name} (sha256 ok), found + checked + loaded "
          f"in {time.perf_counter() - t0:.2f}s")
    cases = [Case(arch, size, imagenet) for arch, size, imagenet in CASES]
    if args.formats:
        cases += [Case(arch, size, imagenet, mode) for arch, size, imagenet in CASES
                  for mode in MODES[1:] if size == (64, 32)]
    for case in cases:  # warm-up: first calls allocate and pick kernels
        for _ in range(2):
            case.train_step()
            case.extract_step()
    # one step of every network in turn, so that any other load on the machine falls on
    # all of them alike; the median step time then ignores the disturbed steps
    for kind in ("train", "extract"):
        start, cycles = time.perf_counter(), 0
        while cycles < args.min_cycles or time.perf_counter() - start < args.seconds:
            for case in cases:
                case.timed(kind)
            cycles += 1
    base = cases[0]
    n_steps = ", ".join(f"{len(c.times['train'])}/{len(c.times['extract'])}" for c in cases)
    print(f"median step of interleaved steps (train/extract steps per network: {n_steps})")
    print()
    print(f"{'network':<40}{'params':>9}{'train img/s':>13}{'x compact':>11}"
          f"{'extract img/s':>15}{'x compact':>11}")
    for c in cases:
        train, extract = c.rate("train"), c.rate("extract")
        print(f"{c.label:<40}{c.params:>8.2f}M{train:>13.0f}"
              f"{train / base.rate('train'):>11.3f}{extract:>15.0f}"
              f"{extract / base.rate('extract'):>11.3f}")
    mb64, mb128 = cases[1], cases[2]
    print()
    print(f"mobilenet_v2 128x64 vs 64x32: train x{mb128.rate('train') / mb64.rate('train'):.2f}, "
          f"extract x{mb128.rate('extract') / mb64.rate('extract'):.2f}")
    print("spread, img/s of the slow (90th percentile) .. fast (10th percentile) step:")
    for c in cases:
        print(f"  {c.label:<40} train {c.rate('train', 0.9):6.0f} .. {c.rate('train', 0.1):6.0f}"
              f"   extract {c.rate('extract', 0.9):6.0f} .. {c.rate('extract', 0.1):6.0f}")
    roofline(cases, args)
    if args.compile:
        compiled(cases)
    print(f"load average at end: {os.getloadavg()[0]:.2f}; "
          f"total {time.perf_counter() - t_start:.0f}s")


def roofline(cases: list[Case], args: argparse.Namespace) -> None:
    """Each network's achieved GFLOP/s beside the machine's matmul peak; with ``--loop``,
    the kit's loop beside the in-memory step."""
    peak32 = matmul_peak(torch.float32)
    peak16 = matmul_peak(torch.bfloat16)
    print()
    print(f"machine peak, 2048x2048 matmul, {torch.get_num_threads()} threads: "
          f"fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s (bf16 / fp32 "
          f"{peak16 / peak32:.2f})")
    print("(the share is of the fp32 peak, or of the bf16 peak for a bf16 step)")
    print(f"{'network':<40}{'train GFLOP/img':>16}{'GFLOP/s':>9}{'of peak':>9}"
          f"{'extract GFLOP/img':>19}{'GFLOP/s':>9}{'of peak':>9}")
    for c in cases:
        ft, fe = c.flops("train") / 1e9, c.flops("extract") / 1e9
        gt, ge = ft * c.rate("train"), fe * c.rate("extract")
        peak = peak16 if c.bf16 else peak32
        print(f"{c.label:<40}{ft:>16.3f}{gt:>9.1f}{gt / peak:>9.0%}"
              f"{fe:>19.3f}{ge:>9.1f}{ge / peak:>9.0%}")
    if not args.loop:
        return
    print()
    print(f"the kit's loop (train_source, classroom, {args.loop_epochs} epochs from the cache: "
          "sampler, batches, augmentation, loss, logging) beside its in-memory step; "
          "'+ decode' adds the one decoding of the images before the first epoch:")
    print(f"{'network':<40}{'loop img/s':>11}{'step img/s':>11}{'loop / step':>12}"
          f"{'+ decode':>10}{'seconds':>9}")
    for c in cases:
        if c.size != (64, 32) or c.mode != MODES[0]:  # the kit's classroom size and mode
            continue
        loop, with_decode, seconds = kit_loop_rate(c.arch, args.loop_epochs)
        step = c.rate("train")
        print(f"{c.label:<40}{loop:>11.0f}{step:>11.0f}{loop / step:>12.2f}"
              f"{with_decode / step:>10.2f}{seconds:>9.1f}")

def compiled(cases: list[Case], steps: int = 30) -> None:
    """``torch.compile`` of each 64x32 network's training step in the kit's mode: the
    seconds of the first compiled steps (the compilation) and the compiled step's img/s
    beside the eager one, and how many images a run must train before compiling pays."""
    print()
    print(f"torch.compile (default mode) of the training step, {steps} steps each after the "
          "compilation:")
    print(f"{'network':<40}{'compile s':>10}{'eager img/s':>12}{'compiled img/s':>15}"
          f"{'pays after':>14}")
    for c in cases:
        if c.size != (64, 32) or c.mode != MODES[0]:
            continue
        case = Case(c.arch, c.size, imagenet=c.arch == "mobilenet_v2")
        case.model = torch.compile(case.model)
        t0 = time.perf_counter()
        for _ in range(3):  # the first calls compile (train mode, then its backward)
            case.train_step()
        compile_s = time.perf_counter() - t0
        for _ in range(steps):
            case.timed("train")
        fast, eager = case.rate("train"), c.rate("train")
        saved = 1 / eager - 1 / fast  # seconds saved per image trained
        pays = f"{compile_s / saved:,.0f} img" if saved > 0 else "never"
        print(f"{c.label:<40}{compile_s:>10.1f}{eager:>12.0f}{fast:>15.0f}{pays:>14}")


if __name__ == "__main__":
    main()
