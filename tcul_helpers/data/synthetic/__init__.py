"""The synthetic camera-network world: the kit's embedded, download-free dataset.

A believable miniature of a real camera network (people with clothes, bags and hair
walking past cameras with their own viewpoint, scene, light and image quality), written
in Market-1501's folders and file names with a ``manifest.json`` of ground truth, so that
TCUL runs on a laptop CPU and every claim can be checked against the true identities.

    >>> from tcul_helpers.data.synthetic import make_world
    >>> make_world("data/generated/classroom/target", "target", scale="classroom")

Modules: :mod:`.presets` (knobs, scales, domains), :mod:`.appearance` (people),
:mod:`.cameras` (viewpoints, scenes, camera styles), :mod:`.timeline` (routes, visits,
sequences, detections: the time model behind temporal continuity), :mod:`.render`
(pixels), :mod:`.world` (``make_world``, folders, manifest, reuse).
"""

from __future__ import annotations

from .presets import KNOB_NAMES, PRESETS, SCALES, WorldKnobs, resolve_knobs
from .world import GENERATOR_VERSION, make_world, world_request

__all__ = [
    "GENERATOR_VERSION",
    "KNOB_NAMES",
    "PRESETS",
    "SCALES",
    "WorldKnobs",
    "make_world",
    "resolve_knobs",
    "world_request",
]
