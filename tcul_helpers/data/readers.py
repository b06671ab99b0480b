"""Dataset readers: Market-1501, DukeMTMC-reID, MSMT17 and the synthetic world.

``load_dataset(name, root)`` returns a :class:`~tcul_helpers.data.records.ReidDataset` whose
``train``, ``query`` and ``gallery`` are sorted lists of :class:`ImageRecord`.

Frame ids (``fid(x)`` of Eq. 3) must only be compared inside one temporal stream:

* DukeMTMC-reID: ``0001_c2_f0046182.jpg`` has one frame counter per camera, used as is.
* Market-1501: ``0002_c1s1_000451_03.jpg`` counts frames per (camera, sequence); the
  counter restarts in every sequence ``sN``. The kit lays the sequences of one camera end
  to end, ``frame = (N - 1) * SEQUENCE_STRIDE + raw_frame`` with a stride of 2,000,000
  (raw frames have six digits, so consecutive sequences are at least 1,000,000 frames
  apart: far beyond any lambda_fr). Within one sequence, frame differences are the raw
  ones; the raw sequence and frame stay on the record for display.
* MSMT17: no usable frame ids (``frame=None``); it serves as a source set only.

Market and Duke names are checked against their dataset's facts (:data:`MARKET_FACTS`,
:data:`DUKE_FACTS`): the camera range, and distractors (pid 0) and junk (pid -1) only in the
gallery folder; a synthetic world's cameras come from its manifest.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

from ..infra.errors import TCULError
from .records import ImageRecord, ReidDataset

#: Raw Market-1501 frames have six digits; sequences are laid this far apart.
SEQUENCE_STRIDE = 2_000_000
MAX_RAW_FRAME = 999_999

DATASETS = ("market1501", "dukemtmc", "msmt17", "synthetic")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

_MARKET_RE = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)$")
_DUKE_RE = re.compile(r"^(-?\d+)_c(\d+)_f(\d+)$")

_MARKET_LAYOUT = (
    "expected {root}/bounding_box_train, {root}/query and {root}/bounding_box_test "
    "holding images named like 0002_c1s1_000451_03.jpg (see data/README.md)"
)
_DUKE_LAYOUT = (
    "expected {root}/bounding_box_train, {root}/query and {root}/bounding_box_test "
    "holding images named like 0001_c2_f0046182.jpg (see data/README.md)"
)
_MSMT_LAYOUT = (
    "expected {root}/list_train.txt, {root}/list_query.txt, {root}/list_gallery.txt "
    "(lines 'path pid') and the image folders they name, e.g. {root}/train (see data/README.md)"
)

#: The fix for a misnamed file: the user's own data are never to be deleted.
MOVE_OUT = "rename it or move it out of the dataset folder"

#: The one folder where distractors (pid 0) and junk (pid -1) belong.
GALLERY_FOLDER = "bounding_box_test"


@dataclasses.dataclass(frozen=True)
class NameFacts:
    """What the file names of a folder dataset may say.

    ``dataset``: its name in messages; ``cameras``: the number of cameras, named c1..cN
    (``None``: not checked); ``camera_fix``: added to the fix of a camera out of range.
    """

    dataset: str
    cameras: int | None
    camera_fix: str = ""


MARKET_FACTS = NameFacts(
    "Market-1501", 6, "; a synthetic world with more cameras is read as dataset synthetic"
)
DUKE_FACTS = NameFacts("DukeMTMC-reID", 8)


def market_frame(sequence: int, raw_frame: int) -> int:
    """Per-camera frame index with the sequences of a camera laid end to end."""
    if sequence < 1:
        raise TCULError(f"Market-1501 sequence numbers start at 1, got s{sequence}")
    if raw_frame > MAX_RAW_FRAME:
        raise TCULError(f"Market-1501 frame {raw_frame} has more than six digits")
    return (sequence - 1) * SEQUENCE_STRIDE + raw_frame


def parse_market_name(name: str) -> tuple[int, int, int, int]:
    """``0002_c1s1_000451_03.jpg`` -> (pid, camid, sequence, raw_frame)."""
    m = _MARKET_RE.match(Path(name).stem)
    if m is None:
        raise TCULError(
            f"cannot parse Market-1501 file name {name!r}: expected PPPP_cCsS_FFFFFF_BB.jpg "
            "like 0002_c1s1_000451_03.jpg"
        )
    pid, cam, seq, frame, _box = (int(g) for g in m.groups())
    return pid, cam, seq, frame


def parse_duke_name(name: str) -> tuple[int, int, int]:
    """``0001_c2_f0046182.jpg`` -> (pid, camid, frame)."""
    m = _DUKE_RE.match(Path(name).stem)
    if m is None:
        raise TCULError(
            f"cannot parse DukeMTMC-reID file name {name!r}: expected PPPP_cC_fFFFFFFF.jpg "
            "like 0001_c2_f0046182.jpg"
        )
    pid, cam, frame = (int(g) for g in m.groups())
    return pid, cam, frame


def parse_msmt_camera(path: str) -> int:
    """MSMT17 camera: the third ``_`` field of the file name (``0000_000_01_...`` -> 1)."""
    parts = Path(path).stem.split("_")
    if len(parts) < 3 or not parts[2].isdigit():
        raise TCULError(
            f"cannot read the camera of MSMT17 image {path!r}: expected names like "
            "0000_000_01_0303morning_0015_0.jpg (camera = third '_' field)"
        )
    return int(parts[2])


def _image_files(folder: Path, layout: str, root: Path) -> list[Path]:
    if not folder.is_dir():
        raise TCULError(f"missing folder {folder}: " + layout.format(root=root))
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    others = sorted(
        p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
    )
    # Market ships Thumbs.db files; anything else that is not an image is suspicious.
    others = [n for n in others if n.lower() not in ("thumbs.db", ".ds_store")]
    if others:
        raise TCULError(f"unexpected file {folder / others[0]}: " + layout.format(root=root))
    if not files:
        raise TCULError(f"no images in {folder}: " + layout.format(root=root))
    return files


def _relabel(records: list[ImageRecord]) -> list[ImageRecord]:
    """Training pids -> 0..P-1 in sorted order of the original ids (kept in raw_pid)."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.raw_pid for r in records}))}
    return [dataclasses.replace(r, pid=mapping[r.raw_pid]) for r in records]


def check_name_facts(path: Path, pid: int, camid: int, facts: NameFacts) -> None:
    """TCULError when the pid or camera of image ``path`` contradicts ``facts``, or when a
    distractor (pid 0) or junk box (pid -1) lies outside the gallery folder."""
    if facts.cameras is not None and not 1 <= camid <= facts.cameras:
        raise TCULError(
            f"{path} names camera c{camid}, but {facts.dataset} has cameras c1-c{facts.cameras}: "
            f"the file is misnamed or comes from another dataset ({MOVE_OUT}{facts.camera_fix})"
        )
    if pid < -1:
        raise TCULError(
            f"{path} names pid {pid}, but a pid in {facts.dataset} is 0001 and up, 0000 "
            f"(distractor) or -1 (junk): the file is misnamed ({MOVE_OUT})"
        )
    folder = path.parent.name
    if pid in (0, -1) and folder != GALLERY_FOLDER:
        kind, kinds = ("distractor", "distractors") if pid == 0 else ("junk box", "junk boxes")
        raise TCULError(
            f"{path} names pid {'0000' if pid == 0 else '-1'}, a {kind}, but {facts.dataset} "
            f"has {kinds} only in its gallery folder {GALLERY_FOLDER}, none in {folder}: the "
            f"file is misplaced or misnamed (move it to {GALLERY_FOLDER}, or rename it)"
        )


def _read_market_split(folder: Path, root: Path, relabel: bool,
                       facts: NameFacts) -> list[ImageRecord]:
    records = []
    for path in _image_files(folder, _MARKET_LAYOUT, root):
        pid, cam, seq, raw = parse_market_name(str(path))
        check_name_facts(path, pid, cam, facts)
        if pid == -1:
            continue  # junk boxes (gallery only): never used for training or evaluation
        records.append(ImageRecord(str(path), pid, cam, market_frame(seq, raw), pid, seq, raw))
    return _relabel(records) if relabel else records


def _read_duke_split(folder: Path, root: Path, relabel: bool,
                     facts: NameFacts) -> list[ImageRecord]:
    records = []
    for path in _image_files(folder, _DUKE_LAYOUT, root):
        pid, cam, frame = parse_duke_name(str(path))
        check_name_facts(path, pid, cam, facts)
        if pid == -1:
            continue
        records.append(ImageRecord(str(path), pid, cam, frame, pid, None, frame))
    return _relabel(records) if relabel else records


def _check_root(root: Path, layout: str) -> None:
    if not root.exists():
        raise TCULError(f"dataset root {root} does not exist: " + layout.format(root=root))
    if not root.is_dir():
        raise TCULError(f"dataset root {root} is not a folder: " + layout.format(root=root))


def _read_folders(
    root: Path,
    read_split: Callable[[Path, Path, bool, NameFacts], list[ImageRecord]],
    layout: str,
    name: str,
    facts: NameFacts,
) -> ReidDataset:
    _check_root(root, layout)
    # Some copies of Market-1501 unpack into a nested folder of the same name.
    nested = root / "Market-1501-v15.09.15"
    if not (root / "bounding_box_train").exists() and nested.is_dir():
        root = nested
    train = read_split(root / "bounding_box_train", root, True, facts)
    query = read_split(root / "query", root, False, facts)
    gallery = read_split(root / GALLERY_FOLDER, root, False, facts)
    return ReidDataset(name, str(root), train, query, gallery)


def _read_market(root: Path, facts: NameFacts = MARKET_FACTS) -> ReidDataset:
    return _read_folders(root, _read_market_split, _MARKET_LAYOUT, "market1501", facts)


def _read_duke(root: Path) -> ReidDataset:
    return _read_folders(root, _read_duke_split, _DUKE_LAYOUT, "dukemtmc", DUKE_FACTS)


def _read_msmt_list(root: Path, list_name: str, relabel: bool) -> list[ImageRecord]:
    list_file = root / list_name
    if not list_file.is_file():
        raise TCULError(f"missing list file {list_file}: " + _MSMT_LAYOUT.format(root=root))
    records = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise TCULError(
                f"{list_file}:{lineno}: cannot parse {line!r}: expected 'path pid', e.g. "
                "'0000/0000_000_01_0303morning_0015_0.jpg 0'"
            )
        rel, pid = parts[0], int(parts[1])
        path = _msmt_image_path(root, list_name, rel)
        try:
            camid = parse_msmt_camera(rel)
        except TCULError as err:
            raise TCULError(f"{list_file}:{lineno}: {err}") from None
        records.append(ImageRecord(str(path), pid, camid, None, pid))
    if not records:
        raise TCULError(f"list file {list_file} is empty: " + _MSMT_LAYOUT.format(root=root))
    records.sort(key=lambda r: r.path)
    return _relabel(records) if relabel else records


def _msmt_image_path(root: Path, list_name: str, rel: str) -> Path:
    """MSMT17_V1 keeps images in train/ and test/; V2 in mask_train_v2/ and mask_test_v2/."""
    is_train = list_name in ("list_train.txt", "list_val.txt")
    folders = ("train", "mask_train_v2") if is_train else ("test", "mask_test_v2")
    for folder in folders:
        candidate = root / folder / rel
        if candidate.exists():
            return candidate
    raise TCULError(
        f"image {rel!r} listed in {root / list_name} was not found under "
        f"{' or '.join(str(root / f) for f in folders)}: " + _MSMT_LAYOUT.format(root=root)
    )


def _read_msmt(root: Path) -> ReidDataset:
    _check_root(root, _MSMT_LAYOUT)
    train = _read_msmt_list(root, "list_train.txt", relabel=False)
    if (root / "list_val.txt").is_file():  # the usual protocol trains on train + val
        train = train + _read_msmt_list(root, "list_val.txt", relabel=False)
        train.sort(key=lambda r: r.path)
    train = _relabel(train)
    query = _read_msmt_list(root, "list_query.txt", relabel=False)
    gallery = _read_msmt_list(root, "list_gallery.txt", relabel=False)
    return ReidDataset("msmt17", str(root), train, query, gallery)


def _read_synthetic(root: Path) -> ReidDataset:
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise TCULError(
            f"{root} is not a synthetic world (no manifest.json): make one with "
            f"`python -m tcul_helpers world --preset target --out {root}` or "
            "tcul_helpers.data.synthetic.make_world"
        )
    try:
        content = json.loads(manifest.read_text())
    except json.JSONDecodeError as err:
        raise TCULError(f"corrupt {manifest}: {err}; regenerate the world") from None
    ds = _read_market(root, _synthetic_facts(content))
    ds.name = "synthetic"
    ds.extra["manifest"] = content
    return ds


def _synthetic_facts(manifest: object) -> NameFacts:
    """A world's cameras come from its manifest (knobs.n_cameras); without one there, the
    cameras are not checked."""
    knobs = manifest.get("knobs") if isinstance(manifest, dict) else None
    cameras = knobs.get("n_cameras") if isinstance(knobs, dict) else None
    if isinstance(cameras, bool) or not isinstance(cameras, int) or cameras < 1:
        cameras = None
    return NameFacts(
        "this synthetic world", cameras,
        ", or regenerate the world with `python -m tcul_helpers world --overwrite`",
    )


_READERS: dict[str, Callable[[Path], ReidDataset]] = {
    "market1501": _read_market,
    "dukemtmc": _read_duke,
    "msmt17": _read_msmt,
    "synthetic": _read_synthetic,
}

_ALIASES = {"market": "market1501", "market-1501": "market1501", "duke": "dukemtmc",
            "dukemtmc-reid": "dukemtmc", "msmt": "msmt17"}


def load_dataset(name: str, root: str | Path, *, check_images: bool = False) -> ReidDataset:
    """Read dataset ``name`` from ``root`` into sorted train/query/gallery records.

    ``check_images=True`` also opens every image (slow on real data) so an unreadable
    file is reported before training starts.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _READERS:
        raise TCULError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
    ds = _READERS[key](Path(root).expanduser().resolve())
    if check_images:
        for rec in ds.train + ds.query + ds.gallery:
            check_image(rec.path)
    return ds


def check_image(path: str | Path) -> None:
    """Open and decode one image; TCULError naming the path when it is unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, UnidentifiedImageError) as err:
        raise TCULError(f"unreadable image {path}: {err}; re-extract the dataset") from None
