"""Wall time of the whole demo (``tcul_helpers.experiment.demo.run_demo``) per stage, against the
target.

Usage: ``python benchmarks/bench_demo.py [--profile classroom] [--seed 0] [--start imagenet]
[--out DIR] [--fresh-worlds] [--no-sweeps]``. Runs the demo from scratch (fresh source
model, runs and Fig. 4 points; the synthetic worlds are reused if they exist, unless
``--fresh-worlds`` generates them anew inside the output folder, as on a fresh clone) and
prints the seconds per stage, the total and its ratio to the 10-minute target.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from tcul_helpers.experiment.demo import run_demo  # noqa: E402
from tcul_helpers.settings.config import PROFILES, STARTS, get_config  # noqa: E402

TARGET_SECONDS = 600.0  # the demo should finish in 10 minutes on a laptop CPU


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns ``{"stages": {name: seconds}, "total": s, "ratio": r}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="classroom", choices=PROFILES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", choices=STARTS, default=None,
                        help="f_theta0's start (default: the profile's)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="output folder (default: a new temp dir)")
    parser.add_argument("--sweeps-dir", default=None,
                        help="where the Fig. 4 points are cached (default: a new folder in the "
                             "output folder, so that every point is computed)")
    parser.add_argument("--no-sweeps", action="store_true", help="skip the Fig. 4 grid")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--fresh-worlds", action="store_true",
                        help="generate the synthetic worlds anew in the output folder")
    args = parser.parse_args(argv)

    start = {"start": args.start} if args.start else {}
    cfg = get_config(args.profile, seed=args.seed, **start)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-demo-"))
    if args.fresh_worlds:
        cfg = cfg.replace(source_root=str(out / "data" / "source"),
                          target_root=str(out / "data" / "target"))
    t0 = time.perf_counter()
    results = run_demo(cfg, out, fresh=True, progress=not args.quiet, device=args.device,
                       sweeps_dir=args.sweeps_dir or out / "sweeps",
                       fig4=False if args.no_sweeps else None,
                       command=f"python benchmarks/bench_demo.py --profile {args.profile}")
    total = time.perf_counter() - t0
    stages = results["stage_seconds"]
    print(f"\nrun_demo, profile {args.profile}, seed {args.seed}, start {results['start']}, "
          f"device {results['device']}")
    for name, seconds in stages.items():
        print(f"  {name:<14} {seconds:8.1f} s")
    print(f"  {'total':<14} {total:8.1f} s")
    ratio = total / TARGET_SECONDS
    print(f"ratio to the {TARGET_SECONDS / 60:.0f}-minute target: {ratio:.2f} "
          f"({'within' if ratio <= 1 else 'OVER'} target)")
    print(f"output: {out}")
    return {"stages": stages, "total": total, "ratio": ratio}


if __name__ == "__main__":
    main()
