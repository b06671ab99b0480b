"""What reading a real dataset and its content key cost at Market-1501's size.

A real folder's content key (``ReidDataset.content_key``) covers every file's name,
identity, camera, frame, size and modification time, so that an image replaced under the
same name makes other data; it reads the folder listing and one ``stat`` per file, never the
pixels. This builds a Market-1501-sized folder of empty files (12,936 train, 3,368 query and
19,732 gallery names; the key does not open them) in a temporary folder and times, side by
side in one run: listing and parsing the names (``load_dataset``), the key without the
file stamps (names and labels only, as before), and the key with them (best of 3: the
folder's metadata is in the page cache, as on a second call).

    .venv/bin/python benchmarks/bench_data_key.py
    .venv/bin/python benchmarks/bench_data_key.py --scale 0.1      # a tenth of Market
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcul_helpers.data.readers import load_dataset  # noqa: E402

MARKET = {"bounding_box_train": (12_936, 751), "query": (3_368, 750),
          "bounding_box_test": (19_732, 750)}


def build(root: Path, scale: float) -> int:
    """Empty files named as Market-1501's, ``scale`` times its counts; returns the total."""
    total = 0
    for folder, (n, ids) in MARKET.items():
        (root / folder).mkdir(parents=True)
        n = max(2, int(n * scale))
        for i in range(n):
            pid = 2 + (i % ids) * 2
            cam = 1 + i % 6
            (root / folder / f"{pid:04d}_c{cam}s1_{i:06d}_01.jpg").touch()
        total += n
    return total


def names_only_key(ds) -> str:
    """The key as it was before the file stamps: names, identities, cameras and frames."""
    h = hashlib.sha1()
    for split in ("train", "query", "gallery"):
        for r in getattr(ds, split):
            h.update(f"{Path(r.path).name},{r.pid},{r.camid},{r.frame};".encode())
    return h.hexdigest()[:16]


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of Market-1501's image counts (default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "market"
        n = build(root, args.scale)
        t_load, ds = timed(lambda: load_dataset("market1501", root))
        t_names, _ = timed(lambda: names_only_key(ds))
        # a copy of the dataset each time: the key is kept once computed
        t_key, _ = timed(lambda: dataclasses.replace(ds).content_key())
        print(f"{n:,} images (Market-1501 x {args.scale:g}), best of 3, this machine:")
        print(f"  list and parse the folders (load_dataset)     {t_load:7.3f} s")
        print(f"  content key, names and labels only            {t_names:7.3f} s")
        print(f"  content key with size and mtime (the kit's)   {t_key:7.3f} s")
        print(f"  the stamps' extra cost: {t_key - t_names:.3f} s "
              f"({(t_key - t_names) / n * 1e6:.1f} us per image); "
              f"key / listing = {t_key / t_load:.2f}")


if __name__ == "__main__":
    main()
