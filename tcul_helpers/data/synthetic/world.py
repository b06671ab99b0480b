"""``make_world``: generate (or reuse) a synthetic camera network in Market-1501's format.

Layout written under ``root`` (exactly Market-1501's):

* ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with JPEG crops named
  ``PPPP_cCsS_FFFFFF_BB.jpg``: identity, camera (1-based), sequence, frame within the
  sequence (the counter restarts in every sequence), box index within that frame;
  distractors ``0000_...`` and junk ``-1_...`` in the gallery, as in Market-1501;
* ``manifest.json``: the request (preset, scale, seed, every knob), the generator version,
  counts, the time span, the cameras with their sequences, and per-identity ground truth
  (split, look-alike group, appearance, every visit with its frames).

Determinism: the same request gives byte-identical images and manifest, whatever the
number of worker processes (every image has its own generator seeded by its index).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ...infra.atomic_files import write_json
from ...infra.errors import TCULError
from ...infra.folder_lock import folder_lock
from ...infra.progress import tqdm
from .appearance import sample_appearances
from .cameras import sample_cameras
from .presets import PRESETS, WorldKnobs, resolve_knobs
from .render import RenderContext, render_image
from .timeline import VIEW_INDEX, ImagePlan, Timeline, plan_world

GENERATOR = "tcul_helpers.data.synthetic"
GENERATOR_VERSION = "2.0"
SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MARKER = ".tcul_world_incomplete"
MANIFEST = "manifest.json"
FRAME_RULE = (
    "file names hold (sequence, raw frame); the world clock frame of an image is "
    "cameras[c].sequences[s].world_start + raw - first_raw. Readers lay sequences end to end: "
    "frame = (sequence - 1) * 2,000,000 + raw (tcul_helpers.data.readers)."
)
_NAME_RE = re.compile(r"^(-1|\d{4})_c\d+s\d+_\d{6}_\d{2}\.jpg$")
_VIEW_NAMES = {v: k for k, v in VIEW_INDEX.items()}


# ------------------------------------------------------------------------ the root folder
def _request(preset: str, scale: str, seed: int, knobs_dict: dict) -> dict:
    return {"preset": preset, "scale": scale, "seed": seed, "knobs": knobs_dict,
            "generator_version": GENERATOR_VERSION}


def world_request(preset: str, scale: str, seed: int, **overrides: Any) -> dict:
    """What decides a world's content: preset, scale, seed, every knob and the generator
    version (the ``request`` of its manifest), without generating it."""
    knobs = resolve_knobs(preset, scale, overrides)
    return _request(preset, scale, seed, json.loads(json.dumps(knobs.to_dict())))


#: The way out named by every message about a damaged or other world: the CLI switch (which
#: works on a corrupt manifest too) and its Python argument.
REGENERATE = ("regenerate it with `python -m tcul_helpers world --overwrite` "
              "(Python: make_world(..., overwrite=True)) or choose another folder")


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("generator") == GENERATOR else None


def _only_generated_files(root: Path) -> bool:
    """True when every file under ``root`` is one this generator writes (its images, its
    manifest, its in-progress marker): a world whose manifest is damaged can be cleared."""
    for f in root.iterdir():
        if f.name in (MANIFEST, MARKER) or f.name.startswith("."):
            continue
        if f.name not in SPLIT_DIRS.values() or not f.is_dir():
            return False
        if not all(g.is_file() and _NAME_RE.match(g.name) for g in f.iterdir()):
            return False
    return True


def _clear_world(root: Path) -> None:
    """Delete a world this generator wrote; refuse if anything else sits in its folders."""
    ours = []
    for folder in SPLIT_DIRS.values():
        path = root / folder
        if not path.exists():
            continue
        for f in path.iterdir():
            if not (f.is_file() and _NAME_RE.match(f.name)):
                raise TCULError(
                    f"{f} was not written by the world generator: move it away or choose "
                    "another root (make_world never deletes files it did not write)"
                )
            ours.append(f)
    for f in ours:
        f.unlink()
    for folder in SPLIT_DIRS.values():
        if (root / folder).exists():
            (root / folder).rmdir()
    for name in (MANIFEST, MARKER):
        if (root / name).exists():
            (root / name).unlink()


def _count_images(root: Path) -> dict[str, int]:
    out = {}
    for split, folder in SPLIT_DIRS.items():
        path = root / folder
        out[split] = sum(1 for f in path.iterdir() if f.suffix == ".jpg") if path.is_dir() else 0
    return out


def _summary(root: Path, manifest: dict, seconds: float, reused: bool) -> dict:
    counts = manifest["counts"]
    return {
        "root": str(root),
        "preset": manifest["preset"],
        "scale": manifest["scale"],
        "seed": manifest["seed"],
        "ids": {"train": counts["train"]["ids"], "test": counts["query"]["ids"]},
        "cameras": manifest["knobs"]["n_cameras"],
        "images": {split: counts[split]["images"] for split in SPLIT_DIRS},
        "time_span_frames": manifest["time_span_frames"],
        "seconds": round(seconds, 3),
        "reused": reused,
    }


def _manifest_counts(manifest: dict) -> dict | None:
    """Images per split that a manifest records (None when it records none)."""
    try:
        return {s: int(manifest["counts"][s]["images"]) for s in SPLIT_DIRS}
    except (KeyError, TypeError, ValueError):
        return None


def _finished_world(root: Path, request: dict) -> dict | None:
    """The manifest of the complete world of ``request`` in ``root`` (its manifest, written
    last, matches and every image it counts is there), else None; reads, never writes."""
    if not root.is_dir() or (root / MARKER).exists():
        return None
    manifest = _read_manifest(root)
    if manifest is None or manifest.get("request") != request:
        return None
    return manifest if _count_images(root) == _manifest_counts(manifest) else None


def _prepare_root(root: Path, request: dict, overwrite: bool, replace: bool = False) -> dict | None:
    """Return the manifest of a reusable world, or None once ``root`` is ready to fill."""
    if root.exists() and not root.is_dir():
        raise TCULError(f"world root {root} is a file: choose a folder path")
    if not root.exists():
        return None
    manifest = _read_manifest(root)
    if manifest is not None and not (root / MARKER).exists():
        if manifest.get("request") == request and not overwrite:
            have, want = _count_images(root), _manifest_counts(manifest)
            if have == want:
                return manifest
            if not replace:
                raise TCULError(
                    f"the world in {root} is damaged ({have} images, its manifest says "
                    f"{want}): {REGENERATE}"
                )
        if not (overwrite or replace):
            r = manifest.get("request", {})
            raise TCULError(
                f"{root} holds another synthetic world (preset={r.get('preset')}, "
                f"scale={r.get('scale')}, seed={r.get('seed')}, other knobs may differ): "
                f"{REGENERATE}"
            )
        _clear_world(root)
        return None
    if (root / MARKER).exists():  # an interrupted generation of ours: clean it up
        _clear_world(root)
        return None
    if (root / MANIFEST).exists() and _only_generated_files(root):
        # a world of ours whose manifest is damaged (or of another generator version)
        if not (overwrite or replace):
            raise TCULError(f"the world in {root} has a damaged or outdated {MANIFEST}: "
                            f"{REGENERATE}")
        _clear_world(root)
        return None
    if any(root.iterdir()):
        raise TCULError(
            f"{root} is not empty and holds no synthetic world: choose an empty or new folder "
            "(make_world never deletes files it did not write)"
        )
    return None


# ------------------------------------------------------------------------- rendering
_WORKER: dict[str, Any] = {}


def _init_worker(ctx: RenderContext, root: str) -> None:
    _WORKER["ctx"] = ctx
    _WORKER["root"] = root


def _render_chunk(plans: list[ImagePlan]) -> int:
    ctx, root = _WORKER["ctx"], _WORKER["root"]
    for plan in plans:
        img, quality = render_image(ctx, plan)
        img.save(os.path.join(root, SPLIT_DIRS[plan.split], plan.name), format="JPEG",
                 quality=quality)
    return len(plans)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _pool(workers: int, ctx: RenderContext, root: Path):
    """``workers`` rendering processes (fork where the platform has it, else spawn)."""
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method).Pool(workers, _init_worker, (ctx, str(root)))


def _draw_panorama(camid: int) -> tuple[int, Any]:
    return camid, _WORKER["ctx"].panorama(camid)


def _plan_beside_panoramas(ctx: RenderContext, root: Path, workers: int, time_ss,
                           knobs: WorldKnobs) -> Timeline:
    """Plan the timeline in this process while ``workers`` processes draw the cameras'
    backgrounds (one camera each, not every camera in every worker); the backgrounds land in
    ``ctx``, so the rendering workers started afterwards receive them already drawn."""
    if workers <= 1:
        return plan_world(np.random.default_rng(time_ss), knobs, ctx.cameras)
    with _pool(workers, ctx, root) as pool:
        drawn = pool.map_async(_draw_panorama, range(1, len(ctx.cameras) + 1))
        timeline = plan_world(np.random.default_rng(time_ss), knobs, ctx.cameras)
        for camid, pano in drawn.get():
            ctx._panoramas[camid] = pano
    return timeline


def _render_all(ctx: RenderContext, root: Path, images: list[ImagePlan], workers: int,
                progress: bool, desc: str) -> None:
    chunk = 24
    chunks = [images[i:i + chunk] for i in range(0, len(images), chunk)]
    bar = tqdm(total=len(images), desc=desc, unit="img", disable=not progress)
    try:
        if workers <= 1:
            _init_worker(ctx, str(root))
            for c in chunks:
                bar.update(_render_chunk(c))
                _WRITE_HOOK("chunk")
        else:
            with _pool(workers, ctx, root) as pool:
                for n in pool.imap_unordered(_render_chunk, chunks):
                    bar.update(n)
                    _WRITE_HOOK("chunk")
    finally:
        bar.close()
        _WORKER.clear()


# ------------------------------------------------------------------------- manifest
def _manifest(preset, scale, seed, knobs, request, cameras, people, tl) -> dict:
    counts: dict[str, dict] = {}
    for split in SPLIT_DIRS:
        ims = [im for im in tl.images if im.split == split]
        persons = [im for im in ims if im.kind == "person"]
        counts[split] = {"ids": len({im.person for im in persons}), "images": len(ims),
                         "cameras": len({im.cam for im in ims})}
    gal = [im for im in tl.images if im.split == "gallery"]
    counts["gallery"]["distractors"] = sum(im.kind == "distractor" for im in gal)
    counts["gallery"]["junk"] = sum(im.kind == "junk" for im in gal)

    per_visit = Counter(im.visit for im in tl.images if im.kind == "person")
    v = tl.visits
    identities: dict[str, dict] = {}
    for p, app in enumerate(people):
        rows = np.flatnonzero(v.person == p)
        rows = rows[np.argsort(v.rec_start[rows], kind="stable")]
        visits = []
        for i in rows:
            c = int(v.cam[i])
            seqs = tl.sequences[c]
            s = max(k for k, q in enumerate(seqs) if q.start <= int(v.rec_start[i]))
            visits.append({
                "camera": c, "sequence": seqs[s].seq,
                "world_start": int(v.rec_start[i]), "world_end": int(v.rec_end[i]),
                "view": _VIEW_NAMES[int(v.view[i])], "reappearance": bool(v.reappear[i]),
                "images": per_visit.get(int(i), 0),
            })
        identities[f"{tl.pids[p]:04d}"] = {
            "split": tl.split_of[p], "outfit_group": app.group,
            "appearance": app.summary(), "visits": visits,
        }
    identities = dict(sorted(identities.items()))
    cams = []
    for cam in cameras:
        d = cam.summary()
        d["sequences"] = [{"sequence": q.seq, "world_start": q.start, "world_end": q.end,
                           "first_raw": q.first_raw} for q in tl.sequences[cam.camid]]
        d["measured_crowd_density"] = round(tl.occupancy[cam.camid], 3)
        d["map_xy"] = [round(float(x), 4) for x in tl.camera_xy[cam.camid - 1]]
        cams.append(d)
    n_visits = len(v)
    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "request": request,
        "preset": preset,
        "scale": scale,
        "seed": seed,
        "knobs": knobs.to_dict(),
        "counts": counts,
        "time_span_frames": tl.t_end,
        "frame_rule": FRAME_RULE,
        "measured": {
            "crowd_density": round(float(np.mean(list(tl.occupancy.values()))), 3),
            "visits": n_visits,
            "reappearances": int(v.reappear.sum()),
            "mean_images_per_visit": round(
                sum(per_visit.values()) / max(len(per_visit), 1), 3),
            "lookalike_groups": len({a.group for a in people if a.group >= 0}),
        },
        "cameras": cams,
        "identities": identities,
    }


# ------------------------------------------------------------------------- public API
def _scene(preset: str, seed: int, knobs: WorldKnobs) -> tuple[RenderContext, Any]:
    """The cameras and people of one world (the context that draws it), and the seed of
    its timeline."""
    domain = PRESETS.index(preset)
    cam_ss, people_ss, time_ss = np.random.SeedSequence([seed, domain]).spawn(3)
    cameras = sample_cameras(np.random.default_rng(cam_ss), knobs.n_cameras, knobs.camera_style,
                             knobs.camera_variation)
    n_people = knobs.n_train_ids + knobs.n_test_ids
    people = sample_appearances(np.random.default_rng(people_ss), n_people, knobs.palette,
                                knobs.outfit_group_frac, knobs.outfit_group_size)
    ctx = RenderContext(seed, domain, knobs.palette, (knobs.image_height, knobs.image_width),
                        cameras, people)
    return ctx, time_ss


def _plan(preset: str, seed: int, knobs: WorldKnobs) -> tuple[RenderContext, Timeline]:
    """The cameras, people and timeline of one world, and the context that draws it."""
    ctx, time_ss = _scene(preset, seed, knobs)
    return ctx, plan_world(np.random.default_rng(time_ss), knobs, ctx.cameras)


def _expected_images(knobs: WorldKnobs) -> float:
    """About how many crops a world will have (people x cameras each x images per visit),
    known before its timeline is planned."""
    return (knobs.n_train_ids + knobs.n_test_ids) * knobs.cameras_per_id * knobs.images_per_visit


def render_context_of(root: str | Path) -> tuple[RenderContext, list[ImagePlan]]:
    """Re-plan the synthetic world under ``root`` from its manifest's request: the renderer's
    context and every image's plan, so that any image can be drawn again (e.g. with its
    person mask for :mod:`tcul_helpers.measurement.realism`)."""
    root = Path(root)
    manifest = _read_manifest(root)
    if manifest is None or "request" not in manifest:
        raise TCULError(f"{root} holds no synthetic world (no readable {MANIFEST}): generate "
                        "it with `python -m tcul_helpers world`")
    req = manifest["request"]
    if req.get("generator_version") != GENERATOR_VERSION:
        raise TCULError(f"the world under {root} was made by generator version "
                        f"{req.get('generator_version')}, this kit has {GENERATOR_VERSION}: "
                        "regenerate it with `python -m tcul_helpers world --overwrite`")
    knobs = resolve_knobs(req["preset"], req["scale"], req["knobs"])
    ctx, timeline = _plan(req["preset"], int(req["seed"]), knobs)
    return ctx, timeline.images


def make_world(
    root: str | Path,
    preset: str,
    seed: int = 0,
    *,
    scale: str = "classroom",
    progress: bool = True,
    overwrite: bool = False,
    replace: bool = False,
    workers: int | None = None,
    **overrides: Any,
) -> dict:
    """Generate the synthetic camera network ``preset`` at ``scale`` under ``root``.

    ``preset``: ``source`` or ``target`` (two domains: different camera styles and
    clothing palettes). ``scale``: ``smoke`` (~24 train ids, 4 cameras, a few hundred
    images), ``classroom`` (200 train ids, 100 test ids, 6 cameras, ~5k images) or
    ``market-like`` (751 / 750 ids, 6 cameras, ~13k training images). ``overrides`` set
    any knob of :class:`~tcul_helpers.data.synthetic.presets.WorldKnobs` (e.g.
    ``crowd_density=4``, ``reappear_prob=0.2``); an unknown knob raises TCULError.

    If ``root`` already holds this very world (same preset, scale, seed, knobs and
    generator version) it is reused without rendering; ``overwrite=True`` regenerates it.
    A root holding anything else raises TCULError; nothing the generator did not write is
    ever deleted. ``replace=True`` regenerates when ``root`` holds another synthetic world
    (the kit's own folders, whose defaults may have changed) but reuses this very one.
    ``workers``: rendering processes (default: all available CPUs, up to 4,
    for worlds of about 1,000+ images); the output does not depend on it.

    Returns a summary: root, preset, scale, seed, ``ids`` (train / test), ``cameras``,
    ``images`` per split, ``time_span_frames``, ``seconds`` taken and ``reused``.
    """
    t0 = time.perf_counter()
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise TCULError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    knobs = resolve_knobs(preset, scale, overrides)
    request = world_request(preset, scale, seed, **overrides)
    root = Path(root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise TCULError(f"world root {root} is a file: choose a folder path")
    if not overwrite:  # a finished world is read without writing (a read-only shared folder)
        finished = _finished_world(root, request)
        if finished is not None:
            return _summary(root, finished, time.perf_counter() - t0, reused=True)
    # one writer per world: a second process waits for the first, then reuses its world
    # (the lock file sits beside the root, which must stay empty for a new world)
    with folder_lock(root, "world", wait=WORLD_LOCK_WAIT,
                     lock_path=root.parent / f".{root.name}.lock"):
        return _make_world_locked(root, preset, seed, scale, knobs, request, overwrite,
                                  replace, workers, progress, t0)


#: How long a second process waits for the one generating the same world (seconds).
WORLD_LOCK_WAIT = 900.0


def _no_hook(stage: str) -> None:
    """Called after each write step of a world (tests replace it to inject a kill there)."""


_WRITE_HOOK = _no_hook


def _make_world_locked(root: Path, preset: str, seed: int, scale: str, knobs: WorldKnobs,
                       request: dict, overwrite: bool, replace: bool, workers: int | None,
                       progress: bool, t0: float) -> dict:
    existing = _prepare_root(root, request, overwrite, replace)
    if existing is not None:
        return _summary(root, existing, time.perf_counter() - t0, reused=True)

    if workers is None:
        workers = min(_available_cpus(), 4) if _expected_images(knobs) >= 1000 else 1
    workers = max(1, int(workers))
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / MARKER, request, indent=None)
    _WRITE_HOOK("marker")
    for folder in SPLIT_DIRS.values():
        (root / folder).mkdir(exist_ok=True)
    ctx, time_ss = _scene(preset, seed, knobs)
    timeline = _plan_beside_panoramas(ctx, root, workers, time_ss, knobs)
    cameras, people = ctx.cameras, ctx.people
    _render_all(ctx, root, timeline.images, workers, progress, f"world {preset}/{scale}")
    _WRITE_HOOK("images")
    manifest = _manifest(preset, scale, seed, knobs, request, cameras, people, timeline)
    write_json(root / MANIFEST, manifest)
    _WRITE_HOOK("manifest")
    (root / MARKER).unlink()
    return _summary(root, manifest, time.perf_counter() - t0, reused=False)
