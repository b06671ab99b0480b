"""CPU speed of the compact CNN against the MobileNetV2 ImageNet start, side by side.

For each network and input size: training images/s (forward + CE + batch-hard triplet +
backward + SGD step, batch 64 = 16 identities x 4 images, the classroom P x M) and
extraction images/s (eval mode, no grad, batch 256) on random tensors in memory, with
``torch.set_num_threads(2)`` (a classroom laptop). Networks: ``compact`` and
``mobilenet_v2`` (ImageNet weights from the installed package) at the classroom input
64x32, and ``mobilenet_v2`` at 128x64. Prints the figures and the ratios to compact.

The networks take one step each in turn (train steps first, then extraction steps), and
each figure is the batch over the median step time: load from other processes then falls
on every network alike, and short disturbances do not count.

Usage: ``python benchmarks/bench_archs.py [--threads 2] [--seconds 25] [--min-cycles 8]``
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


class Case:
    """One network at one input size, with its batches and optimiser, ready to be timed."""

    def __init__(self, arch: str, size: tuple[int, int], imagenet: bool) -> None:
        seed_everything(0)
        self.arch, self.size = arch, size
        self.model = build_model(arch, NUM_CLASSES, EMBEDDING_DIM, imagenet_init=imagenet)
        self.params = sum(p.numel() for p in self.model.parameters()) / 1e6
        self.x_train = torch.randn(P * M, 3, *size)
        self.y = torch.randperm(NUM_CLASSES)[:P].repeat_interleave(M)
        self.x_eval = torch.randn(EVAL_BATCH, 3, *size)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-2, momentum=0.9,
                                   weight_decay=5e-4)
        self.times: dict[str, list[float]] = {"train": [], "extract": []}

    @property
    def label(self) -> str:
        return f"{self.arch} {self.size[0]}x{self.size[1]}"

    def train_step(self) -> None:
        """Forward + CE + batch-hard triplet + backward + SGD step on P x M images."""
        self.model.train()
        emb, logits = self.model(self.x_train)
        loss = baseline_loss(emb, logits, self.y, 0.5)[0]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def extract_step(self) -> None:
        """Eval-mode forward pass without gradients on 256 images."""
        self.model.eval()
        with torch.no_grad():
            self.model(self.x_eval)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--seconds", type=float, default=25.0,
                        help="seconds of interleaved steps for each of train and extract")
    parser.add_argument("--min-cycles", type=int, default=8,
                        help="at least this many steps of every network and kind")
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
    print(f"{'network':<14}{'input':>8}{'params':>9}{'train img/s':>13}{'x compact':>11}"
          f"{'extract img/s':>15}{'x compact':>11}")
    for c in cases:
        train, extract = c.rate("train"), c.rate("extract")
        print(f"{c.arch:<14}{f'{c.size[0]}x{c.size[1]}':>8}{c.params:>8.2f}M{train:>13.0f}"
              f"{train / base.rate('train'):>11.3f}{extract:>15.0f}"
              f"{extract / base.rate('extract'):>11.3f}")
    mb64, mb128 = cases[1], cases[2]
    print()
    print(f"mobilenet_v2 128x64 vs 64x32: train x{mb128.rate('train') / mb64.rate('train'):.2f}, "
          f"extract x{mb128.rate('extract') / mb64.rate('extract'):.2f}")
    print("spread, img/s of the slow (90th percentile) .. fast (10th percentile) step:")
    for c in cases:
        print(f"  {c.label:<22} train {c.rate('train', 0.9):6.0f} .. {c.rate('train', 0.1):6.0f}"
              f"   extract {c.rate('extract', 0.9):6.0f} .. {c.rate('extract', 0.1):6.0f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}; "
          f"total {time.perf_counter() - t_start:.0f}s")

if __name__ == "__main__":
    main()
