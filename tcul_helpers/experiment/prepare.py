"""One instructor command before a lab: compute everything the notebooks read.

``python -m tcul_helpers prepare`` (``make prepare``) fills the run store of one profile and
seed so that no notebook waits and none shows an empty table: the worlds, the sweeps of
Fig. 4 (lambda_fr and K), f_theta0 from both starts and the demo of each start (TCUL, SUL
and PUL-style, the two-starts table, the claims). Every step is the cached command it names
(``sweeps``, ``demo``), so a stopped preparation resumes where it stopped and a prepared
home is reused in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..settings.config import STARTS, Config, apply_overrides, start_of, start_settings
from . import demo, pipeline, sweeps

#: The sweeps a lab needs: the two panels of Fig. 4 (notebook 08 and the report's claims).
FIG4_SWEEPS = ("lambda_fr", "n_clusters")


def preparation_steps(cfg: Config, runs: str | Path = "runs", world_sweeps: bool = False
                      ) -> list[tuple[str, Callable[[bool, Callable[[str], object] | None], Any]]]:
    """The steps of :func:`prepare_lab` in order: ``[(title, step(progress, log))]``. The
    profile's own start comes last, so that its demo report holds both starts and the sweeps."""
    runs = Path(runs)
    own = pipeline.start_suffix(cfg) == ""
    own_start = start_of(cfg)
    other_start = next(s for s in STARTS if s != own_start)
    other = apply_overrides(cfg, start_settings(cfg.profile, other_start))
    only = sweeps.SWEEPS if world_sweeps else FIG4_SWEEPS

    def sweep_step(progress, log):
        return sweeps.run_sweeps(cfg, sweeps.default_dir(cfg, runs), progress=progress,
                                 device=cfg.device, only=only, log=log,
                                 source_dir=pipeline.source_dir(cfg, runs),
                                 shared_runs=sweeps.default_runs(cfg, runs))

    def demo_step(c: Config, fig4: bool | None):
        def step(progress, log):
            return demo.run_demo(c, demo.default_out(c, runs), progress=progress, device=c.device,
                                 log=log, sweeps_dir=sweeps.default_dir(c, runs), runs=runs,
                                 fig4=fig4)
        return step

    names = ", ".join(only)
    steps = [(f"sweeps ({names}), {own_start} start", sweep_step),
             # the other start's demo is read beside this one's: without its own Fig. 4 grid
             (f"demo, {other_start} start", demo_step(other, fig4=False)),
             (f"demo, {own_start} start", demo_step(cfg, fig4=None))]  # the demo's own rule
    if not own:  # a --start other than the profile's: its demo is the one the notebooks skip
        steps[1], steps[2] = steps[2], steps[1]
    return steps


def prepare_lab(cfg: Config, runs: str | Path = "runs", *, world_sweeps: bool = False,
                progress: bool = True, log: Callable[[str], object] | None = print
                ) -> dict[str, float]:
    """Run every step of :func:`preparation_steps`; returns ``{step: seconds}`` (a step read
    from the cache takes seconds)."""
    say = log or (lambda _m: None)
    steps = preparation_steps(cfg, runs, world_sweeps)
    times: dict[str, float] = {}
    for i, (title, step) in enumerate(steps, 1):
        say(f"== prepare {i}/{len(steps)}: {title}")
        t0 = time.perf_counter()
        step(progress, log)
        times[title] = time.perf_counter() - t0
    return times


__all__ = ["FIG4_SWEEPS", "prepare_lab", "preparation_steps"]
