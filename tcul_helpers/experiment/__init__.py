"""Runs of the method: the runner of Algorithm 1 (``adapt``) and its run folder, the cached
stages (worlds, source model, runs), the parameter sweeps, the demo and its report, and
the command line."""
