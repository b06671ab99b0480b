"""Speed of the synthetic world generator (tcul_helpers.synthetic.make_world).

Target: the classroom *target* world (200 train ids, 100 test ids, 6 cameras, ~5k JPEG
crops) is generated in under 30 s on 2 CPU cores. For each scale and preset it prints the
images written, the seconds taken and images per second; then a PASS/FAIL line for the
classroom target world against the 30 s target. Worlds are written to a temporary folder
that is deleted afterwards.

Run from the repository root (other processes on the machine slow it down):
    .venv/bin/python benchmarks/bench_world.py                       # smoke + classroom
    .venv/bin/python benchmarks/bench_world.py --scales classroom market-like
    .venv/bin/python benchmarks/bench_world.py --workers 1           # one process
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcul_helpers.synthetic import SCALES, make_world  # noqa: E402

TARGET_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["smoke", "classroom"], choices=SCALES)
    parser.add_argument("--presets", nargs="+", default=["source", "target"],
                        choices=["source", "target"])
    parser.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: make_world's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    print(f"CPU cores available: {cores}; workers: {args.workers or 'auto'}")
    print(f"{'scale':<12} {'preset':<7} {'train':>7} {'query':>6} {'gallery':>8} {'total':>7} "
          f"{'seconds':>8} {'img/s':>7}")
    classroom_target = None
    with tempfile.TemporaryDirectory(prefix="tcul_bench_world_") as tmp:
        for scale in args.scales:
            for preset in args.presets:
                out = make_world(Path(tmp) / f"{scale}_{preset}", preset, args.seed, scale=scale,
                                 progress=False, workers=args.workers)
                n = sum(out["images"].values())
                secs = out["seconds"]
                print(f"{scale:<12} {preset:<7} {out['images']['train']:>7} "
                      f"{out['images']['query']:>6} {out['images']['gallery']:>8} {n:>7} "
                      f"{secs:>8.2f} {n / secs:>7.0f}")
                if scale == "classroom" and preset == "target":
                    classroom_target = secs
    if classroom_target is None:
        print("classroom target world not run: no PASS/FAIL (add --scales classroom)")
        return 0
    ratio = classroom_target / TARGET_SECONDS
    verdict = "PASS" if classroom_target < TARGET_SECONDS else "FAIL"
    print(f"{verdict}: classroom target world in {classroom_target:.2f} s, target < "
          f"{TARGET_SECONDS:.0f} s ({ratio:.2f}x of the budget, on {cores} cores)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
