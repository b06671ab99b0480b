"""Wall time of every teaching notebook, run top to bottom on one profile (default classroom).

Usage: ``python benchmarks/bench_notebooks.py [--profile classroom] [--only 03,04] [--write]``

Each notebook runs in a fresh kernel, in numerical order, twice over:

* **cached**: in the kit's home (the repository, or ``$TCUL_HOME``), reusing what
  ``make prepare`` and the earlier notebooks computed there, as in a prepared lab;
* **cold**: in a new empty home, where the first notebooks compute the worlds, the source
  model and the runs that the later ones reuse (``--no-cold`` skips this pass).

``--alone`` adds a third pass, **alone**: each notebook in its *own* new empty home, as a
student who opens only that notebook on a fresh laptop (it computes everything it needs).

``--write`` puts both times into each notebook's header line ("Compute time (classroom,
2 CPU cores): ...") and changes nothing else in the file. Prints one line per
notebook, the totals and the ratio of the slowest notebook to a 90-minute lab.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import tempfile
from pathlib import Path

import nbformat

from tcul_helpers.settings.config import PROFILES
from tcul_helpers.teaching.notebook_runner import TIME_LINE, execute_notebook

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
LAB_SECONDS = 90 * 60


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def write_time(path: Path, text: str) -> None:
    """Replace what follows the time label on the header line of ``path``."""
    nb = nbformat.read(path, as_version=4)
    cell = nb.cells[0]
    line = f"{TIME_LINE} {text}"
    new, n = re.subn(re.escape(TIME_LINE) + r".*", lambda _m: line, cell.source, count=1)
    if n != 1:
        raise SystemExit(f"{path.name}: no line starting with {TIME_LINE!r} in the first cell")
    cell.source = new
    nbformat.write(nb, path)


def run_all(paths: list[Path], profile: str, home: str | None, timeout: int, label: str
            ) -> dict[str, float]:
    """Execute ``paths`` in order in ``home``; ``{notebook name: seconds}``."""
    times: dict[str, float] = {}
    for path in paths:
        _nb, seconds = execute_notebook(path, profile, home=home, timeout=timeout)
        times[path.name] = seconds
        print(f"{label:<7} {path.name:<45} {_fmt(seconds):>9}", flush=True)
    print(f"{label:<7} {'total':<45} {_fmt(sum(times.values())):>9}")
    return times


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the benchmark; returns ``{"cached": {name: s}, "cold": {name: s}}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="classroom", choices=PROFILES)
    parser.add_argument("--only", default=None, help="comma-separated numbers, e.g. 03,04")
    parser.add_argument("--no-cold", action="store_true", help="skip the empty-home pass")
    parser.add_argument("--alone", action="store_true",
                        help="also run each notebook alone in its own empty home")
    parser.add_argument("--write", action="store_true",
                        help="write the measured times into the notebooks' header lines")
    parser.add_argument("--timeout", type=int, default=3600, help="per cell, seconds")
    args = parser.parse_args(argv)
    if args.write and (args.profile != "classroom" or args.no_cold):
        parser.error("--write records classroom times of both passes")

    paths = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        wanted = {s.strip() for s in args.only.split(",")}
        paths = [p for p in paths if p.name[:2] in wanted]
    result = {"cached": run_all(paths, args.profile, os.environ.get("TCUL_HOME"),
                                args.timeout, "cached")}
    if not args.no_cold:
        cold_home = tempfile.mkdtemp(prefix="tcul-home-")
        result["cold"] = run_all(paths, args.profile, cold_home, args.timeout, "cold")
    if args.alone:
        result["alone"] = {}
        for path in paths:
            result["alone"].update(run_all([path], args.profile,
                                           tempfile.mkdtemp(prefix="tcul-home-"), args.timeout,
                                           "alone"))
    slowest = max(t for times in result.values() for t in times.values())
    print(f"slowest notebook / 90-minute lab: {slowest / LAB_SECONDS:.3f}")
    if args.write:  # the date and this script are in the output above, not in the notebooks
        for name, cached in result["cached"].items():
            write_time(NB_DIR / name, f"**{_fmt(cached)}** after `make prepare`, "
                                      f"**{_fmt(result['cold'][name])}** without it")
    print(f"measured {dt.datetime.now().isoformat(timespec='minutes')}")
    return result


if __name__ == "__main__":
    main()
