"""The synthetic camera-network world: format, splits, determinism, domains, time model.

Every world here is the tiny ``smoke`` scale (~400 images, about a second each).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tcul_helpers.data.readers import load_dataset
from tcul_helpers.data.synthetic import KNOB_NAMES, make_world, resolve_knobs, world_request
from tcul_helpers.infra.errors import TCULError

SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
# our own tiny reader of Market-1501 names, independent of tcul_helpers.data.readers
NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
STRIDE = 2_000_000


def parse(name: str) -> tuple[int, int, int, int, int]:
    m = NAME.match(name)
    assert m is not None, f"bad Market name {name!r}"
    pid, cam, seq, frame, box = m.groups()
    return int(pid), int(cam), int(seq), int(frame), int(box)


def files(root: Path, split: str) -> list[str]:
    return sorted(os.listdir(root / SPLITS[split]))


def tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = hashlib.md5(path.read_bytes()).hexdigest()
    return out


def person_frames(root: Path) -> dict[tuple[int, int], list[int]]:
    """(pid, cam) -> frames laid out per camera as the readers do (sequences far apart)."""
    out = defaultdict(list)
    for split in SPLITS:
        for name in files(root, split):
            pid, cam, seq, raw, _ = parse(name)
            if pid > 0:
                out[(pid, cam)].append((seq - 1) * STRIDE + raw)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("w") / "target"
    summary = make_world(root, "target", 0, scale="smoke", progress=False)
    return root, summary


@pytest.fixture(scope="module")
def source_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("w") / "source"
    make_world(root, "source", 0, scale="smoke", progress=False)
    return root


# ------------------------------------------------------------------------------ format
def test_folders_names_and_images(world):
    root, summary = world
    knobs = resolve_knobs("target", "smoke")
    seen_names = set()
    seqs_per_cam = defaultdict(set)
    for split in SPLITS:
        names = files(root, split)
        assert len(names) == summary["images"][split] > 0
        for name in names:
            pid, cam, seq, frame, box = parse(name)
            assert 1 <= cam <= knobs.n_cameras and seq >= 1 and box >= 1
            seqs_per_cam[cam].add(seq)
            seen_names.add(name)
    assert len(seqs_per_cam) == knobs.n_cameras
    # every camera is recorded in 2-3 sequences, so the restarting counter is exercised
    assert all(2 <= len(s) <= 3 for s in seqs_per_cam.values())
    sample = files(root, "train")[:5] + files(root, "gallery")[-3:]
    for name in sample:
        folder = SPLITS["train"] if name in files(root, "train") else SPLITS["gallery"]
        with Image.open(root / folder / name) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (64, 128)
    assert summary["cameras"] == knobs.n_cameras
    assert summary["ids"] == {"train": knobs.n_train_ids, "test": knobs.n_test_ids}
    assert summary["time_span_frames"] > 0 and summary["reused"] is False


def test_reader_agrees_with_files(world):
    root, summary = world
    ds = load_dataset("synthetic", root)
    assert len(ds.train) == summary["images"]["train"]
    assert len(ds.query) == summary["images"]["query"]
    # the reader drops junk (-1) from the gallery
    n_junk = sum(parse(n)[0] == -1 for n in files(root, "gallery"))
    assert n_junk > 0
    assert len(ds.gallery) == summary["images"]["gallery"] - n_junk
    assert ds.has_frames and ds.num_train_pids == summary["ids"]["train"]
    assert ds.extra["manifest"]["seed"] == 0
    for rec in ds.train[:50] + ds.gallery[:50]:
        pid, cam, seq, raw, _ = parse(Path(rec.path).name)
        assert (rec.raw_pid, rec.camid, rec.sequence, rec.raw_frame) == (pid, cam, seq, raw)
        assert rec.frame == (seq - 1) * STRIDE + raw


def test_splits_disjoint_and_query_protocol(world):
    root, _ = world
    train = {parse(n)[0] for n in files(root, "train")}
    query = [parse(n) for n in files(root, "query")]
    gallery = [parse(n) for n in files(root, "gallery")]
    test_ids = {q[0] for q in query}
    assert train.isdisjoint(test_ids)
    assert {g[0] for g in gallery if g[0] > 0} == test_ids
    assert all(g[0] in (0, -1) or g[0] in test_ids for g in gallery)
    cams_of = defaultdict(set)
    for pid, cam, *_ in query + [g for g in gallery if g[0] > 0]:
        cams_of[pid].add(cam)
    per_pid_cam = defaultdict(int)
    for pid, cam, *_ in query:
        per_pid_cam[(pid, cam)] += 1
    # exactly one query per test identity per camera it appears in
    assert all(n == 1 for n in per_pid_cam.values())
    assert set(per_pid_cam) == {(p, c) for p, cs in cams_of.items() for c in cs}
    # every test identity is seen by >= 2 cameras: each query has a cross-camera match
    assert all(len(cs) >= 2 for cs in cams_of.values())
    knobs = resolve_knobs("target", "smoke")
    assert sum(g[0] == 0 for g in gallery) == knobs.n_distractors
    assert sum(g[0] == -1 for g in gallery) == knobs.n_junk


def test_manifest_ground_truth_matches_files(world):
    root, summary = world
    m = json.loads((root / "manifest.json").read_text())
    assert m["generator_version"] and m["preset"] == "target" and m["scale"] == "smoke"
    assert set(m["knobs"]) == set(KNOB_NAMES)
    # what decides the content is known without generating the world
    assert m["request"] == world_request("target", "smoke", 0)
    assert m["request"] != world_request("target", "smoke", 0, crowd_density=9.0)
    assert m["time_span_frames"] == summary["time_span_frames"]
    for split in SPLITS:
        assert m["counts"][split]["images"] == len(files(root, split))
    seqs = {c["camid"]: {s["sequence"]: s for s in c["sequences"]} for c in m["cameras"]}
    ids = m["identities"]
    n_per_visit = defaultdict(int)
    for split in SPLITS:
        for name in files(root, split):
            pid, cam, seq, raw, _ = parse(name)
            if pid <= 0:
                continue
            s = seqs[cam][seq]
            world_t = s["world_start"] + raw - s["first_raw"]
            assert s["world_start"] <= world_t < s["world_end"]
            visits = [
                k for k, v in enumerate(ids[f"{pid:04d}"]["visits"])
                if v["camera"] == cam and v["world_start"] <= world_t <= v["world_end"]
            ]
            assert len(visits) == 1, f"{name} lies in no visit of its identity"
            n_per_visit[(pid, visits[0])] += 1
            assert ids[f"{pid:04d}"]["split"] == ("train" if split == "train" else "test")
    for pid, info in ids.items():
        for k, v in enumerate(info["visits"]):
            assert v["images"] == n_per_visit[(int(pid), k)]
    # look-alike groups: several identities share an outfit template
    groups = defaultdict(list)
    for info in ids.values():
        if info["outfit_group"] >= 0:
            groups[info["outfit_group"]].append(info["appearance"])
    assert groups and all(len(g) >= 2 for g in groups.values())
    for g in groups.values():
        assert len({(a["upper_type"], a["upper_name"], a["pattern"], a["lower_type"],
                     a["lower_name"]) for a in g}) == 1


# ------------------------------------------------------------------------- determinism
def test_same_seed_identical_other_seed_different(world, tmp_path):
    root, _ = world
    again = tmp_path / "again"
    make_world(again, "target", 0, scale="smoke", progress=False, workers=2)
    assert tree_digest(again) == tree_digest(root)  # byte-identical, any worker count
    other = tmp_path / "other"
    make_world(other, "target", 1, scale="smoke", progress=False)
    a, b = tree_digest(root), tree_digest(other)
    assert a["manifest.json"] != b["manifest.json"]
    assert set(a) != set(b)


# ------------------------------------------------------------------------------ domains
def _colour_features(root: Path) -> tuple[np.ndarray, np.ndarray]:
    feats, cams = [], []
    for name in files(root, "train"):
        with Image.open(root / SPLITS["train"] / name) as im:
            a = np.asarray(im, dtype=np.float64) / 255.0
        feats.append(np.concatenate([a.mean((0, 1)), a.std((0, 1))]))
        cams.append(parse(name)[1])
    return np.array(feats), np.array(cams)


def test_source_and_target_differ(world, source_world):
    fs, cs = _colour_features(source_world)
    ft, ct = _colour_features(world[0])
    # per-camera mean colours: every source camera is away from every target camera (the
    # closest pair: 0.028 on the smoke worlds, 0.030 on the classroom ones, generator 2.0,
    # whose cameras share their domain's materials and so sit nearer each other) ...
    ms = np.array([fs[cs == c, :3].mean(0) for c in np.unique(cs)])
    mt = np.array([ft[ct == c, :3].mean(0) for c in np.unique(ct)])
    cross = np.linalg.norm(ms[:, None] - mt[None], axis=-1)
    assert cross.min() > 0.02
    # ... and a nearest-domain-mean rule on colour statistics tells the domains apart
    # (chance is 0.5; 0.72 on the smoke worlds and 0.73 on the classroom ones with
    # generator 2.0: its scenes vary within a camera, so colour statistics overlap more)
    x = np.concatenate([fs, ft])
    y = np.r_[np.zeros(len(fs)), np.ones(len(ft))]
    mu0, mu1 = fs.mean(0), ft.mean(0)
    pred = np.linalg.norm(x - mu1, axis=1) < np.linalg.norm(x - mu0, axis=1)
    assert (pred == y).mean() > 0.65
    # cameras of one domain differ from each other too (illumination, cast, scene)
    within = np.linalg.norm(mt[:, None] - mt[None], axis=-1)[np.triu_indices(len(mt), 1)]
    assert within.min() > 0.01


# ----------------------------------------------------------------------------- time
def test_temporal_continuity_and_reappearance(tmp_path):
    knobs = resolve_knobs("target", "smoke")
    extra = dict(n_distractors=0, n_junk=0)
    make_world(tmp_path / "r0", "target", 2, scale="smoke", progress=False, reappear_prob=0.0,
               **extra)
    spans0 = [max(f) - min(f) for f in person_frames(tmp_path / "r0").values()]
    # with no reappearance all images of a person in one camera lie within one visit
    assert max(spans0) <= knobs.dwell_frames[1]
    assert np.median(spans0) >= 10  # ... spread over tens of frames, not one burst
    make_world(tmp_path / "r1", "target", 2, scale="smoke", progress=False, reappear_prob=0.6,
               **extra)
    spans1 = np.array([max(f) - min(f) for f in person_frames(tmp_path / "r1").values()])
    far = spans1 >= knobs.reappear_gap[0]
    assert far.mean() > 0.25
    m = json.loads((tmp_path / "r1" / "manifest.json").read_text())
    assert m["measured"]["reappearances"] > 0


def _others_within(root: Path, window: int = 100) -> float:
    """Mean number of OTHER identities within +-window frames of an image, same camera."""
    by_cam = defaultdict(list)
    for (pid, cam), frames in person_frames(root).items():
        by_cam[cam] += [(f, pid) for f in frames]
    counts = []
    for items in by_cam.values():
        f = np.array([x[0] for x in items])
        p = np.array([x[1] for x in items])
        for i in range(len(f)):
            near = np.abs(f - f[i]) <= window
            counts.append(len(set(p[near].tolist()) - {p[i]}))
    return float(np.mean(counts))


def test_crowd_density_raises_people_in_window(tmp_path):
    extra = dict(n_distractors=0, n_junk=0, reappear_prob=0.0)
    make_world(tmp_path / "sparse", "target", 3, scale="smoke", progress=False,
               crowd_density=0.5, **extra)
    make_world(tmp_path / "dense", "target", 3, scale="smoke", progress=False,
               crowd_density=5.0, **extra)
    sparse, dense = _others_within(tmp_path / "sparse"), _others_within(tmp_path / "dense")
    assert dense > 1.5 * sparse and dense > 1.0
    ms = json.loads((tmp_path / "sparse" / "manifest.json").read_text())["measured"]
    md = json.loads((tmp_path / "dense" / "manifest.json").read_text())["measured"]
    assert md["crowd_density"] > ms["crowd_density"]


# ------------------------------------------------------------------------- bad input
def test_bad_knobs_raise(tmp_path):
    with pytest.raises(TCULError, match="crowd_density"):  # names the valid knobs
        make_world(tmp_path / "x", "target", scale="smoke", crowd_densty=2.0)
    with pytest.raises(TCULError, match="preset"):
        make_world(tmp_path / "x", "sauce", scale="smoke")
    with pytest.raises(TCULError, match="scale"):
        make_world(tmp_path / "x", "target", scale="huge")
    with pytest.raises(TCULError, match="reappear_prob"):
        make_world(tmp_path / "x", "target", scale="smoke", reappear_prob=1.5)
    with pytest.raises(TCULError, match="dwell_frames"):
        make_world(tmp_path / "x", "target", scale="smoke", dwell_frames=(50, 10))
    with pytest.raises(TCULError, match="n_cameras"):
        make_world(tmp_path / "x", "target", scale="smoke", n_cameras="six")
    with pytest.raises(TCULError, match="seed"):
        make_world(tmp_path / "x", "target", -1, scale="smoke")
    assert not (tmp_path / "x").exists()  # nothing written on bad input


# ------------------------------------------------------------------------ reuse / safety
def test_reuse_overwrite_and_user_files(world, tmp_path):
    root, summary = world
    manifest = root / "manifest.json"
    before = manifest.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = make_world(root, "target", 0, scale="smoke", progress=False)
    assert time.perf_counter() - t0 < 1.0
    assert again["reused"] is True and again["images"] == summary["images"]
    assert manifest.stat().st_mtime_ns == before
    # the same root with another request: refused, nothing touched
    with pytest.raises(TCULError, match="overwrite=True"):
        make_world(root, "target", 5, scale="smoke", progress=False)
    assert manifest.stat().st_mtime_ns == before

    # a folder holding user files is never used, with or without overwrite
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(TCULError, match="not empty"):
            make_world(user, "target", scale="smoke", progress=False, overwrite=overwrite)
    assert (user / "notes.txt").read_text() == "keep me"

    # overwrite replaces a world of ours, but not if a user file sits in its folders
    mine = tmp_path / "w"
    make_world(mine, "target", 0, scale="smoke", progress=False, n_junk=0)
    stray = mine / "query" / "my_photo.png"
    stray.write_bytes(b"x")
    with pytest.raises(TCULError, match="not written by the world generator"):
        make_world(mine, "target", 1, scale="smoke", progress=False, overwrite=True)
    assert stray.exists() and len(files(mine, "train")) > 0
    stray.unlink()
    out = make_world(mine, "target", 1, scale="smoke", progress=False, overwrite=True)
    assert out["reused"] is False and out["seed"] == 1
    assert json.loads((mine / "manifest.json").read_text())["seed"] == 1
