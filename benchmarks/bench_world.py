"""Speed of the synthetic world generator (tcul_helpers.data.synthetic.make_world).

Targets: the classroom *target* world (200 train ids, 100 test ids, 6 cameras, ~5k JPEG
crops) is generated in under 30 s on 2 CPU cores, at >= 1,000 images/s (issue 10). For each
scale and preset it generates the world ``--repeat`` times and prints the images written,
the best and the median seconds and the best images per second (the best run is the
generator's speed: other work on the machine only ever slows a run down); then a PASS/FAIL
line per target for the classroom target world. Worlds are written to a temporary folder
(``$TMPDIR``, e.g. ``TMPDIR=/dev/shm`` to leave the disk out) that is deleted afterwards.

Run from the repository root (other processes on the machine slow it down):
    .venv/bin/python benchmarks/bench_world.py                       # smoke + classroom
    .venv/bin/python benchmarks/bench_world.py --scales classroom market-like
    .venv/bin/python benchmarks/bench_world.py --workers 1           # one process
    .venv/bin/python benchmarks/bench_world.py --repeat 5            # best of 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcul_helpers.data.synthetic import SCALES, make_world  # noqa: E402

TARGET_SECONDS = 30.0
TARGET_IMAGES_PER_S = 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["smoke", "classroom"], choices=SCALES)
    parser.add_argument("--presets", nargs="+", default=["source", "target"],
                        choices=["source", "target"])
    parser.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: make_world's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="generations per world (best counts)")
    args = parser.parse_args(argv)

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    print(f"CPU cores available: {cores}; workers: {args.workers or 'auto'}")
    print(f"{'scale':<12} {'preset':<7} {'train':>7} {'query':>6} {'gallery':>8} {'total':>7} "
          f"{'best s':>7} {'median s':>8} {'img/s':>7}")
    classroom_target = None
    with tempfile.TemporaryDirectory(prefix="tcul_bench_world_") as tmp:
        for scale in args.scales:
            for preset in args.presets:
                times = []
                for k in range(max(1, args.repeat)):
                    out = make_world(Path(tmp) / f"{scale}_{preset}_{k}", preset, args.seed,
                                     scale=scale, progress=False, workers=args.workers)
                    times.append(out["seconds"])
                n = sum(out["images"].values())
                best = min(times)
                print(f"{scale:<12} {preset:<7} {out['images']['train']:>7} "
                      f"{out['images']['query']:>6} {out['images']['gallery']:>8} {n:>7} "
                      f"{best:>7.2f} {statistics.median(times):>8.2f} {n / best:>7.0f}")
                if scale == "classroom" and preset == "target":
                    classroom_target = (best, n)
    if classroom_target is None:
        print("classroom target world not run: no PASS/FAIL (add --scales classroom)")
        return 0
    secs, n = classroom_target
    ok_time, ok_rate = secs < TARGET_SECONDS, n / secs >= TARGET_IMAGES_PER_S
    print(f"{'PASS' if ok_time else 'FAIL'}: classroom target world in {secs:.2f} s, target < "
          f"{TARGET_SECONDS:.0f} s ({secs / TARGET_SECONDS:.2f}x of the budget, on {cores} cores)")
    print(f"{'PASS' if ok_rate else 'FAIL'}: {n / secs:.0f} images/s, target >= "
          f"{TARGET_IMAGES_PER_S:.0f} ({n / secs / TARGET_IMAGES_PER_S:.2f}x)")
    return 0 if ok_time and ok_rate else 1

if __name__ == "__main__":
    raise SystemExit(main())
