"""The world clock: who walks past which camera when, and which boxes the detector keeps.

The model, in the paper's terms (Sec. 3.3, observations (1) and (2)):

* every person follows a *route* through 2+ distinct cameras (a walk on the camera map,
  nearer cameras more likely next), walking ``transit_frames`` between two of them;
* in each camera of the route the person is visible for one short continuous *visit*
  (``dwell_frames``), walking across the view or towards / away from the camera;
* the detector runs every ``detect_every`` frames (on a grid shared by everyone in the
  camera, so people visible together are detected on the same frames and numbered by box
  index), sometimes misses a person, and about ``images_per_visit`` boxes are kept: all
  boxes of one person in one camera lie inside one visit, a few tens to ~140 frames apart;
* with probability ``reappear_prob`` a visit is repeated ``reappear_gap`` frames later in
  the same camera: the exception to temporal continuity;
* the world clock is compressed so that on average ``crowd_density`` people are visible
  at once in a camera: denser worlds put more *other* people within +-lambda_fr frames.

The recorded time line is a window cut out of a steady flow of people (someone may enter
before it starts or leave after it ends; only visits inside it are recorded, and every
identity keeps at least two). Each camera records it in 2-3 *sequences* ``sN`` whose
frame counters restart (Market-1501's naming); restarts are put at the quietest moment
near their planned time, and a visit that still crosses one keeps only the detections on
its longer side (the boxes during the restart are lost), so no visit is ever split.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from ...infra.errors import TCULError
from .cameras import D_FAR, D_NEAR, FOV, CameraSpec
from .presets import MAX_RAW_FRAME, WorldKnobs

VIEW_INDEX = {"front": 0, "back": 1, "left": 2, "right": 3}


@dataclass
class Visits:
    """One row per visit of a person to a camera (numpy columns)."""

    person: np.ndarray
    cam: np.ndarray  # 1-based
    start: np.ndarray
    end: np.ndarray
    view: np.ndarray  # 0 front, 1 back, 2 left, 3 right
    X0: np.ndarray
    X1: np.ndarray
    d0: np.ndarray
    d1: np.ndarray
    phase0: np.ndarray
    reappear: np.ndarray
    rec_start: np.ndarray  # recorded part of the visit (a camera restart may cut it)
    rec_end: np.ndarray

    def __len__(self) -> int:
        return len(self.person)

    def pose_at(self, i: int, t: int) -> tuple[float, float]:
        """Floor position (X, d) of visit ``i`` at world frame ``t`` (linear walk)."""
        span = max(int(self.end[i] - self.start[i]), 1)
        u = min(max((t - int(self.start[i])) / span, 0.0), 1.0)
        return (float(self.X0[i] + u * (self.X1[i] - self.X0[i])),
                float(self.d0[i] + u * (self.d1[i] - self.d0[i])))


@dataclass
class Sequence:
    """One recording sequence of a camera: world frames [start, end), raw frame at start."""

    seq: int
    start: int
    end: int
    first_raw: int

    def raw(self, t: int) -> int:
        """Frame number written in the file name for world frame ``t``."""
        return t - self.start + self.first_raw


@dataclass
class ImagePlan:
    """One image to render: where, when, who, and who else is in view."""

    split: str  # train | query | gallery
    name: str
    kind: str  # person | distractor | junk
    person: int  # index into the people list (-1 for distractors / junk)
    cam: int
    t: int
    seq: int
    raw: int
    box: int
    visit: int  # index into Visits (-1 for distractors / junk)
    subject: tuple | None  # (view, X, d, frames since visit start, phase0)
    neighbours: tuple = ()  # ((person, view, X, d, since, phase0), ...)
    index: int = -1


@dataclass
class Timeline:
    """Everything the renderer and the manifest need about time."""

    t_end: int
    visits: Visits
    sequences: dict[int, list[Sequence]]
    images: list[ImagePlan]
    pids: list[int]  # file-name pid of each person
    split_of: list[str]  # train | test of each person
    camera_xy: np.ndarray
    occupancy: dict[int, float] = field(default_factory=dict)


def _routes(rng: np.random.Generator, knobs: WorldKnobs, n_people: int):
    """Camera map, pairwise transit times and one route (list of cameras) per person."""
    n_cams = knobs.n_cameras
    xy = rng.uniform(0.0, 1.0, size=(n_cams, 2))
    dist = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    lo, hi = knobs.transit_frames
    transit = lo + (hi - lo) * dist / max(dist.max(), 1e-9)
    popularity = rng.uniform(0.6, 1.4, n_cams)
    p_extra = 0.0 if n_cams == 2 else (knobs.cameras_per_id - 2.0) / (n_cams - 2.0)
    routes = []
    for _ in range(n_people):
        length = 2 + int(rng.binomial(n_cams - 2, p_extra)) if n_cams > 2 else 2
        cam = int(rng.choice(n_cams, p=popularity / popularity.sum()))
        route = [cam]
        while len(route) < length:
            w = popularity * np.exp(-dist[cam] / 0.35)
            w[route] = 0.0
            cam = int(rng.choice(n_cams, p=w / w.sum()))
            route.append(cam)
        routes.append(route)
    return xy, transit, routes


def _walk_geometry(rng: np.random.Generator, view: int) -> tuple[float, float, float, float]:
    """Start and end floor positions (X0, X1, d0, d1) of a visit seen from ``view``."""
    if view in (0, 1):  # towards (front) or away from (back) the camera
        X0 = rng.uniform(-0.7, 0.7) * FOV / 2 * D_NEAR
        X1 = X0 + rng.normal(0.0, 0.15)
        near, far = D_NEAR * rng.uniform(1.0, 1.1), D_FAR * rng.uniform(0.9, 1.0)
        return (X0, X1, far, near) if view == 0 else (X0, X1, near, far)
    d = rng.uniform(D_NEAR, D_FAR)
    edge = FOV / 2 * d * rng.uniform(0.7, 0.85)
    d1 = float(np.clip(d + rng.normal(0.0, 0.08), D_NEAR, D_FAR))
    return (edge, -edge, d, d1) if view == 2 else (-edge, edge, d, d1)


def _quiet_cut(occ: np.ndarray, want: int, lo: int, hi: int) -> int:
    """The frame in [lo, hi) with the fewest people in view, nearest to ``want``."""
    lo, hi = max(lo, 1), min(hi, len(occ) - 1)
    if hi <= lo:
        return min(max(want, 1), len(occ) - 1)
    window = occ[lo:hi]
    best = np.flatnonzero(window == window.min()) + lo
    return int(best[np.argmin(np.abs(best - want))])


def _flow_entries(
    rng: np.random.Generator,
    rel: list[np.ndarray],
    dwell: list[np.ndarray],
    n_cams: int,
    crowd_density: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Entry frames of the people, which visits are recorded, and the window's length.

    The recorded time line is a window ``[0, L)`` cut out of a steady flow of people: a
    person enters the network uniformly at random in ``[-route duration, L)``; only visits that lie
    entirely inside the window are recorded, and entries are redrawn until at least two
    visits are (every identity is seen by 2+ cameras). ``L`` is chosen so that on average
    ``crowd_density`` people are in view of a camera: L = recorded dwell / (n_cams *
    crowd_density), found by a few fixed-point steps. ``rel`` / ``dwell``: per person, the
    visits' start offsets from the entry and their lengths.
    """
    n = len(rel)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=bool), 1
    ends = [r + d for r, d in zip(rel, dwell, strict=True)]
    # the shortest stretch of each route that holds two consecutive visits
    pair = [int(np.argmin(e[1:] - r[:-1])) for r, e in zip(rel, ends, strict=True)]
    need = np.array([float(e[k + 1] - r[k]) for r, e, k in zip(rel, ends, pair, strict=True)])
    total = float(sum(d.sum() for d in dwell))
    length = max(total / (n_cams * crowd_density), 1.0)

    def sample(L: float) -> tuple[np.ndarray, np.ndarray]:
        entry, window = np.zeros(n), np.full(n, L)
        for i in range(n):
            if need[i] >= L:  # two visits cannot fit: the window lasts a little longer
                entry[i], window[i] = -float(rel[i][pair[i]]), need[i]
                continue
            for _ in range(100):
                e = rng.uniform(-float(ends[i][-1]), L)
                if np.count_nonzero((e + rel[i] >= 0) & (e + ends[i] <= L)) >= 2:
                    break
            else:  # an unlucky route: place its shortest pair of visits at random
                k = pair[i]
                e = rng.uniform(-float(rel[i][k]), L - float(ends[i][k + 1]))
            entry[i] = e
        return entry, window

    for _ in range(8):
        entry, window = sample(length)
        recorded = sum(float(dwell[i][(entry[i] + rel[i] >= 0) & (entry[i] + ends[i] <= window[i])]
                             .sum()) for i in range(n))
        new_length = max(recorded / (n_cams * crowd_density), 1.0)
        if abs(new_length - length) <= 0.02 * length:
            break
        length = new_length
    keep = np.concatenate([(entry[i] + rel[i] >= 0) & (entry[i] + ends[i] <= window[i])
                           for i in range(n)])
    return entry, keep, int(np.ceil(window.max()))


def _visit_rows(
    rng: np.random.Generator, knobs: WorldKnobs, routes: list[list[int]], transit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every visit of every route relative to the person's entry into the network: person,
    camera (1-based), start offset (frames after the entry) and dwell (frames)."""
    rows: list[list] = []  # person, cam, rel_start, dwell
    for p, route in enumerate(routes):
        t = 0.0
        for j, c in enumerate(route):
            dwell = int(rng.integers(knobs.dwell_frames[0], knobs.dwell_frames[1] + 1))
            rows.append([p, c + 1, t, dwell])
            t += dwell
            if j + 1 < len(route):
                t += transit[c, route[j + 1]] * rng.uniform(0.8, 1.3)
    return (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
            np.array([r[2] for r in rows]), np.array([r[3] for r in rows], dtype=np.int64))


def _recorded_visits(
    rng: np.random.Generator,
    knobs: WorldKnobs,
    routes: list[list[int]],
    transit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The visits inside the recorded window of a steady flow of people (``_flow_entries``):
    person, camera, start frame and dwell of each, and the window's length."""
    n_people = len(routes)
    row_person, row_cam, row_rel, row_dwell = _visit_rows(rng, knobs, routes, transit)
    rows_of = [np.flatnonzero(row_person == p) for p in range(n_people)]
    entry, keep, length = _flow_entries(
        rng, [row_rel[r] for r in rows_of], [row_dwell[r] for r in rows_of], knobs.n_cameras,
        knobs.crowd_density)
    sel = np.concatenate(rows_of)[keep]
    person, cam, dwell = row_person[sel], row_cam[sel], row_dwell[sel]
    start = np.round(entry[person] + row_rel[sel]).astype(np.int64)
    return person, cam, start, dwell, length


def _reappearances(
    rng: np.random.Generator,
    knobs: WorldKnobs,
    person: np.ndarray,
    cam: np.ndarray,
    start: np.ndarray,
    dwell: np.ndarray,
    length: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Some visits repeated in the same camera, ``reappear_gap`` frames later (or earlier):
    person, camera, start and dwell of all visits, the repeats last, and which are repeats."""
    g0, g1 = knobs.reappear_gap
    ex_p, ex_c, ex_s, ex_d = [], [], [], []
    for i in np.flatnonzero(rng.random(len(person)) < knobs.reappear_prob):
        d2 = int(rng.integers(knobs.dwell_frames[0], knobs.dwell_frames[1] + 1))
        s0, e0 = int(start[i]), int(start[i] + dwell[i])
        after = (e0 + g0, min(e0 + g1, length - d2))
        before = (max(s0 - g1 - d2, 0), s0 - g0 - d2)
        options = [r for r in (after, before) if r[1] >= r[0]]
        if options:  # inside the recorded window
            lo, hi = options[int(rng.integers(len(options)))]
            s2 = int(rng.integers(lo, hi + 1))
        else:  # the window is too short for the gap: the cameras record a little longer
            s2 = e0 + g0
        ex_p.append(person[i])
        ex_c.append(cam[i])
        ex_s.append(s2)
        ex_d.append(d2)
    reappear = np.r_[np.zeros(len(person), dtype=bool), np.ones(len(ex_p), dtype=bool)]
    person = np.r_[person, np.array(ex_p, dtype=np.int64)]
    cam = np.r_[cam, np.array(ex_c, dtype=np.int64)]
    start = np.r_[start, np.array(ex_s, dtype=np.int64)]
    dwell = np.r_[dwell, np.array(ex_d, dtype=np.int64)]
    return person, cam, start, dwell, reappear


def _walks(
    rng: np.random.Generator, cameras: list[CameraSpec], cam: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How each visit looks: its viewpoint (by the camera's ``view_probs``) and its walk,
    (X0, X1, d0, d1) per visit."""
    n_v = len(cam)
    view = np.zeros(n_v, dtype=np.int64)
    geo = np.zeros((n_v, 4))
    for i in range(n_v):
        probs = np.array(cameras[cam[i] - 1].view_probs)
        view[i] = int(rng.choice(4, p=probs / probs.sum()))
        geo[i] = _walk_geometry(rng, int(view[i]))
    return view, geo


def _occupancy(start: np.ndarray, end: np.ndarray, t_end: int) -> np.ndarray:
    """How many of the visits (start, end) are in view at each frame."""
    occ = np.zeros(t_end + 2, dtype=np.int64)
    np.add.at(occ, start, 1)
    np.add.at(occ, end + 1, -1)
    return np.cumsum(occ)


def _restarts(rng: np.random.Generator, occ: np.ndarray, n_seq: int, t_end: int) -> list[int]:
    """The frames where a camera's counter restarts (0 first): the quietest moment near
    each planned restart."""
    cuts = [0]
    for k in range(1, n_seq):
        want = int(t_end * (k + rng.uniform(-0.15, 0.15)) / n_seq)
        half = int(0.2 * t_end / n_seq)
        cuts.append(max(_quiet_cut(occ, want, want - half, want + half), cuts[-1] + 1))
    return cuts


def _cut_at_restarts(here: np.ndarray, cuts: list[int], rec_start: np.ndarray,
                     rec_end: np.ndarray) -> None:
    """A visit across a restart keeps the detections on its longer side (in place)."""
    for cut in cuts[1:]:
        for i in here[(rec_start[here] < cut) & (rec_end[here] >= cut)]:
            if cut - rec_start[i] >= rec_end[i] - cut + 1:
                rec_end[i] = cut - 1
            else:
                rec_start[i] = cut


def _camera_sequences(rng: np.random.Generator, c: int, bounds: list[int]) -> list[Sequence]:
    """Camera ``c``'s recording sequences between ``bounds``, each counter starting at a
    random raw frame."""
    seqs = []
    for k in range(len(bounds) - 1):
        first = int(rng.integers(0, 400))
        if bounds[k + 1] - bounds[k] + first > MAX_RAW_FRAME:
            raise TCULError(
                f"a sequence of camera {c} would last {bounds[k + 1] - bounds[k]} frames, "
                "more than Market's 6-digit frame numbers allow: raise crowd_density or "
                "sequences_per_camera"
            )
        seqs.append(Sequence(k + 1, bounds[k], bounds[k + 1], first))
    return seqs


def _sequences(
    rng: np.random.Generator,
    knobs: WorldKnobs,
    cam: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    t_end: int,
) -> tuple[dict[int, list[Sequence]], dict[int, float], np.ndarray, np.ndarray]:
    """Each camera's sequences (its counter restarts at quiet moments), its occupancy
    (people in view per frame, recorded) and the recorded part of every visit."""
    sequences: dict[int, list[Sequence]] = {}
    occupancy: dict[int, float] = {}
    rec_start, rec_end = start.copy(), end.copy()
    for c in range(1, knobs.n_cameras + 1):
        here = np.flatnonzero(cam == c)
        occ = _occupancy(start[here], end[here], t_end)
        lo, hi = knobs.sequences_per_camera
        n_seq = int(rng.integers(lo, hi + 1))
        cuts = _restarts(rng, occ, n_seq, t_end)
        _cut_at_restarts(here, cuts, rec_start, rec_end)
        occupancy[c] = float((rec_end[here] - rec_start[here] + 1).sum() / t_end)
        sequences[c] = _camera_sequences(rng, c, cuts + [t_end])
    return sequences, occupancy, rec_start, rec_end


class _Views:
    """What the cameras see: the sequence that holds a frame, and who is in view then."""

    def __init__(self, visits: Visits, sequences: dict[int, list[Sequence]], n_cams: int):
        self.visits = visits
        self.sequences = sequences
        self.by_cam = {c: np.flatnonzero(visits.cam == c) for c in range(1, n_cams + 1)}
        self.span_of = {c: (visits.start[idx], visits.end[idx]) for c, idx in self.by_cam.items()}
        self.seq_starts = {c: [s.start for s in seqs] for c, seqs in sequences.items()}
        self.seen: dict[tuple[int, int], list[tuple[float, int, float, float]]] = {}

    def locate(self, c: int, t: int) -> Sequence:
        """The sequence of camera ``c`` that records world frame ``t``."""
        k = bisect_right(self.seq_starts[c], t) - 1
        return self.sequences[c][max(k, 0)]

    def in_view(self, c: int, t: int) -> list[tuple[float, int, float, float]]:
        """(x in the image, visit, X, d) of everybody visible in camera c at frame t
        (worked out once per (c, t): a crop and its neighbours ask for the same frame)."""
        if (c, t) in self.seen:
            return self.seen[c, t]
        first, last = self.span_of[c]
        act = self.by_cam[c][(first <= t) & (last >= t)]
        out = []
        for i in act:
            X, d = self.visits.pose_at(int(i), t)
            out.append((FOV / 2 + X / d, int(i), X, d))
        out.sort()
        self.seen[c, t] = out
        return out

    def neighbours_of(self, c: int, t: int, x: float, d: float, skip: int) -> tuple:
        """The people in view near image position ``x`` (depth ``d``) other than visit
        ``skip``: ((person, view, X, d, frames since their visit began, phase0), ...)."""
        v = self.visits
        out = []
        for xo, i, X, do in self.in_view(c, t):
            if i != skip and abs(xo - x) < 0.32 / d + 0.3 / do:
                out.append((int(v.person[i]), int(v.view[i]), X, do, t - int(v.start[i]),
                            float(v.phase0[i])))
        return tuple(out)


def _detections(
    rng: np.random.Generator,
    knobs: WorldKnobs,
    cameras: list[CameraSpec],
    views: _Views,
    split_of: list[str],
) -> tuple[list[ImagePlan], set[tuple[int, int, int, int]]]:
    """The boxes the detector keeps of each visit (on its camera's frame grid, with
    misses, about ``images_per_visit`` of them), and the (cam, seq, raw, box) they take."""
    visits = views.visits
    every = knobs.detect_every
    phase = {c.camid: int(rng.integers(0, every)) for c in cameras}
    images: list[ImagePlan] = []
    used: set[tuple[int, int, int, int]] = set()  # (cam, seq, raw, box)
    for i in range(len(visits)):
        c = int(visits.cam[i])
        r0, r1 = int(visits.rec_start[i]), int(visits.rec_end[i])
        det = np.arange(r0 + (phase[c] - r0) % every, r1 + 1, every)
        if len(det) == 0:
            det = np.array([r0 + (r1 - r0) // 2])
        hit = det[rng.random(len(det)) >= knobs.miss_prob]
        if len(hit) == 0:
            hit = det[[len(det) // 2]]
        m = min(len(hit), 1 + int(rng.poisson(knobs.images_per_visit - 1.0)))
        chosen = np.sort(rng.choice(hit, size=m, replace=False))
        p = int(visits.person[i])
        for t in chosen:
            t = int(t)
            seq = views.locate(c, t)
            everyone = views.in_view(c, t)
            box = 1 + [v for _, v, _, _ in everyone].index(i)
            xo, _, X, d = everyone[box - 1]  # in_view worked out its pose and position
            used.add((c, seq.seq, seq.raw(t), box))
            images.append(ImagePlan(
                split=split_of[p], name="", kind="person", person=p, cam=c, t=t,
                seq=seq.seq, raw=seq.raw(t), box=box, visit=i,
                subject=(int(visits.view[i]), X, d, t - int(visits.start[i]),
                         float(visits.phase0[i])),
                neighbours=views.neighbours_of(c, t, xo, d, i),
            ))
    return images, used


def _queries(rng: np.random.Generator, images: list[ImagePlan]) -> None:
    """One query image per test identity per camera, at random; the rest is the gallery
    (in place)."""
    by_key: dict[tuple[int, int], list[int]] = {}
    for j, im in enumerate(images):
        if im.split == "test":
            by_key.setdefault((im.person, im.cam), []).append(j)
    for key in sorted(by_key):
        js = by_key[key]
        q = js[int(rng.integers(len(js)))]
        for j in js:
            images[j].split = "query" if j == q else "gallery"


def _distractors_and_junk(
    rng: np.random.Generator,
    knobs: WorldKnobs,
    views: _Views,
    t_end: int,
    used: set[tuple[int, int, int, int]],
) -> list[ImagePlan]:
    """Gallery-only boxes of nobody we know: distractors (pid 0) and junk (pid -1), each at
    a random camera and frame, numbered after the boxes already taken there."""
    images = []
    for kind, count in (("distractor", knobs.n_distractors), ("junk", knobs.n_junk)):
        for _ in range(count):
            c = int(rng.integers(1, knobs.n_cameras + 1))
            t = int(rng.integers(0, t_end))
            seq = views.locate(c, t)
            box = len(views.in_view(c, t)) + 1
            while (c, seq.seq, seq.raw(t), box) in used:
                box += 1
            used.add((c, seq.seq, seq.raw(t), box))
            d = float(rng.uniform(D_NEAR, D_FAR))
            X = float(rng.uniform(-0.8, 0.8) * FOV / 2 * d)
            images.append(ImagePlan(
                split="gallery", name="", kind=kind, person=-1, cam=c, t=t, seq=seq.seq,
                raw=seq.raw(t), box=box, visit=-1, subject=(int(rng.integers(4)), X, d, 0, 0.0),
                neighbours=views.neighbours_of(c, t, FOV / 2 + X / d, d, -1),
            ))
    return images


def _name_and_order(images: list[ImagePlan], pids: list[int]) -> None:
    """Market-1501 file names (pid, camera, sequence, raw frame, box), then the images in
    split and name order, numbered (in place)."""
    for im in images:
        pid = {"person": None, "distractor": "0000", "junk": "-1"}[im.kind]
        pid = pid if pid is not None else f"{pids[im.person]:04d}"
        im.name = f"{pid}_c{im.cam}s{im.seq}_{im.raw:06d}_{im.box:02d}.jpg"
    order = {"train": 0, "query": 1, "gallery": 2}
    images.sort(key=lambda im: (order[im.split], im.name))
    for k, im in enumerate(images):
        im.index = k


def plan_world(
    rng: np.random.Generator,
    knobs: WorldKnobs,
    cameras: list[CameraSpec],
) -> Timeline:
    """Plan routes, visits, sequences and every image of the world (no pixels yet)."""
    n_people = knobs.n_train_ids + knobs.n_test_ids
    xy, transit, routes = _routes(rng, knobs, n_people)
    # visits: the recorded ones, the reappearances, how each looks, the recorded part
    person, cam, start, dwell, length = _recorded_visits(rng, knobs, routes, transit)
    person, cam, start, dwell, reappear = _reappearances(rng, knobs, person, cam, start, dwell,
                                                         length)
    end = start + dwell
    t_end = int(end.max()) + 1
    view, geo = _walks(rng, cameras, cam)
    sequences, occupancy, rec_start, rec_end = _sequences(rng, knobs, cam, start, end, t_end)
    visits = Visits(person, cam, start, end, view, geo[:, 0], geo[:, 1], geo[:, 2], geo[:, 3],
                    rng.uniform(0, 2 * np.pi, len(person)), reappear, rec_start, rec_end)
    # identities: file-name pids and the train / test split
    pids = [int(x) for x in rng.permutation(np.arange(1, n_people + 1))]
    split_of = ["train" if p < knobs.n_train_ids else "test" for p in range(n_people)]
    # detections: the boxes kept of each visit, the queries, distractors and junk
    views = _Views(visits, sequences, knobs.n_cameras)
    images, used = _detections(rng, knobs, cameras, views, split_of)
    _queries(rng, images)
    images += _distractors_and_junk(rng, knobs, views, t_end, used)
    _name_and_order(images, pids)
    return Timeline(t_end, visits, sequences, images, pids, split_of, xy, occupancy)
