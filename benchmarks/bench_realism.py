"""Realism of the synthetic worlds (tcul_helpers.measurement.realism), seed by seed, against the
goals.

Goals for the classroom *target* world of every seed (issue 10; data/README.md,
"Calibration"): the whole-crop 512-bin colour histogram ranks far above chance (rank-1 >= 10,
mAP >= 5) but does not solve re-id (mAP <= 35). Real anchor: Market-1501's whole-crop
colour-names bag-of-words, rank-1 34.4 / mAP 14.1 (Zheng et al., ICCV 2015). The table also
shows the nearest-gallery-neighbour same-camera rate beside chance, the person's share of the
crop (renderer's mask), the background variation and the fragment statistics, for the
source world too. Worlds are generated into a temporary folder that is deleted afterwards,
or read from --root (a folder with <preset>-seed<S> worlds) if given. A real dataset can be
measured with ``python -m tcul_helpers world --stats --dataset market1501 --out DIR``.

    .venv/bin/python benchmarks/bench_realism.py                  # seeds 0 1 2, classroom
    .venv/bin/python benchmarks/bench_realism.py --seeds 0 --scale smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcul_helpers.data.readers import load_dataset  # noqa: E402
from tcul_helpers.data.synthetic import SCALES, make_world  # noqa: E402
from tcul_helpers.measurement import realism  # noqa: E402

COLUMNS = ("world", "rank-1", "mAP", "chance r1/mAP", "NN own cam", "chance NN", "person share",
           "bg sim within/across", "imgs/visit", "crowding")


def _row(name: str, s: dict) -> list[str]:
    r, c, t = s["retrieval"], s["crop"] or {}, s["time"] or {}
    return [name, f"{r['rank1']:.1f}", f"{r['mAP']:.1f}",
            f"{r['chance_rank1']:.1f} / {r['chance_mAP']:.1f}", f"{r['nn_same_camera']:.0f}%",
            f"{r['chance_nn_same_camera']:.0f}%", f"{c.get('person_share_mean', 0):.0f}%",
            f"{c.get('background_similarity_within_camera', 0):.3f} / "
            f"{c.get('background_similarity_across_cameras', 0):.3f}",
            f"{t.get('images_per_visit', 0):.2f}", f"{t.get('crowding_mean', 0):.2f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--scale", default="classroom", choices=SCALES)
    parser.add_argument("--presets", nargs="+", default=["target", "source"],
                        choices=["source", "target"])
    parser.add_argument("--root", type=Path, default=None,
                        help="keep the worlds here (reused when present) instead of a temp dir")
    args = parser.parse_args(argv)

    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.root or Path(tmp)
        for preset in args.presets:
            for seed in args.seeds:
                root = base / f"{preset}-seed{seed}"
                make_world(root, preset, seed, scale=args.scale, progress=False, replace=True)
                stats = realism.realism_statistics(load_dataset("synthetic", root), seed=seed)
                rows.append(_row(f"{preset} seed {seed}", stats))
                if preset == "target":
                    failed += [f"seed {seed}: {g}" for g, ok in realism.meets_goals(stats).items()
                               if not ok]
    print(f"| {' | '.join(COLUMNS)} |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print(f"| {' | '.join(row)} |")
    a = realism.REAL_ANCHOR
    print(f"\nreal anchor: {a['dataset']}: rank-1 {a['rank1']} / mAP {a['mAP']}")
    if "target" in args.presets:
        print("target goals (rank-1 >= 10, 5 <= mAP <= 35): "
              + ("PASS on every seed" if not failed else "FAIL: " + "; ".join(failed)))
    return 1 if failed and args.scale == "classroom" else 0


if __name__ == "__main__":
    raise SystemExit(main())
