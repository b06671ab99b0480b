"""Dataset readers: Market-1501, DukeMTMC-reID, MSMT17 and the synthetic world.

Every dataset here is a tiny folder of real 8x4 images written into ``tmp_path``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from tcul_helpers.data.readers import (
    DATASETS,
    MAX_RAW_FRAME,
    SEQUENCE_STRIDE,
    check_image,
    load_dataset,
    market_frame,
    parse_duke_name,
    parse_market_name,
    parse_msmt_camera,
)
from tcul_helpers.data.records import ImageRecord
from tcul_helpers.infra.errors import TCULError

FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
LAMBDA_FR = 100_000  # far larger than any plausible lambda_fr (the paper uses 100)


def write_image(path: Path) -> Path:
    """A tiny real image; the format follows the suffix (JPEG or PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 4), (120, 30, 200)).save(path)
    return path


def make_folders(root: Path, splits: dict[str, list[str]]) -> Path:
    """Write ``{folder: [file names]}``; names are written in reverse order on purpose."""
    for folder, names in splits.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in reversed(names):
            if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png"):
                write_image(root / folder / name)
            else:
                (root / folder / name).write_bytes(b"not an image")
    return root


MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c1s2_000100_01.jpg",
        "0002_c1s3_000050_01.jpg",
        "0005_c1s1_000460_01.png",
        "0007_c2s1_000010_01.jpg",
        "Thumbs.db",  # shipped with Market: ignored
    ],
    "query": [
        "0003_c1s1_001000_00.jpg",
        "0004_c3s2_000020_00.jpg",
    ],
    "bounding_box_test": [
        "0000_c1s1_000005_01.jpg",  # distractor: kept
        "-1_c2s1_000006_01.jpg",  # junk: dropped (both belong only in the gallery)
        "0003_c2s1_001010_02.jpg",
        "0003_c1s2_000200_01.jpg",
        "0004_c1s3_000030_01.jpg",
        ".DS_Store",
    ],
}

DUKE = {
    "bounding_box_train": [
        "0001_c2_f0046182.jpg",
        "0001_c3_f0050000.jpg",
        "0010_c1_f0000123.jpg",
        "0004_c8_f0200001.jpg",
    ],
    "query": ["0005_c2_f0100000.jpg"],
    "bounding_box_test": [
        "0005_c1_f0099999.jpg",
        "0006_c4_f0000001.jpg",
        "-1_c4_f0000002.jpg",
    ],
}


def names(records: list[ImageRecord]) -> list[str]:
    return [Path(r.path).name for r in records]


@pytest.fixture
def market(tmp_path) -> Path:
    return make_folders(tmp_path / "market", MARKET)


@pytest.fixture
def duke(tmp_path) -> Path:
    return make_folders(tmp_path / "duke", DUKE)


# ------------------------------------------------------------------------ Market-1501
def test_market_splits_sorted_junk_dropped_distractors_kept(market):
    ds = load_dataset("market1501", market)
    root = market.resolve()
    assert ds.name == "market1501" and ds.root == str(root)
    assert names(ds.train) == [
        "0002_c1s1_000451_03.jpg",
        "0002_c1s2_000100_01.jpg",
        "0002_c1s3_000050_01.jpg",
        "0005_c1s1_000460_01.png",
        "0007_c2s1_000010_01.jpg",
    ]
    assert names(ds.query) == ["0003_c1s1_001000_00.jpg", "0004_c3s2_000020_00.jpg"]
    assert names(ds.gallery) == [
        "0000_c1s1_000005_01.jpg",
        "0003_c1s2_000200_01.jpg",
        "0003_c2s1_001010_02.jpg",
        "0004_c1s3_000030_01.jpg",
    ]
    for split, folder in zip((ds.train, ds.query, ds.gallery), FOLDERS, strict=True):
        assert all(Path(r.path) == root / folder / Path(r.path).name for r in split)
        assert all(Path(r.path).is_absolute() and Path(r.path).is_file() for r in split)
        assert [r.path for r in split] == sorted(r.path for r in split)
    # junk (-1) nowhere, the distractor (0) stays in the gallery with its raw id
    assert all(r.raw_pid != -1 for r in ds.train + ds.query + ds.gallery)
    assert ds.gallery[0].pid == ds.gallery[0].raw_pid == 0
    # deterministic: a second read gives the very same records
    again = load_dataset("market", market)
    assert (again.train, again.query, again.gallery) == (ds.train, ds.query, ds.gallery)


def test_market_train_relabelled_eval_ids_raw(market):
    ds = load_dataset("market1501", market)
    assert [(r.pid, r.raw_pid) for r in ds.train] == [(0, 2), (0, 2), (0, 2), (1, 5), (2, 7)]
    assert ds.num_train_pids == 3
    assert [(r.pid, r.raw_pid) for r in ds.query] == [(3, 3), (4, 4)]
    assert [r.pid for r in ds.gallery] == [r.raw_pid for r in ds.gallery] == [0, 3, 3, 4]
    assert [r.camid for r in ds.train] == [1, 1, 1, 1, 2]
    assert [r.camid for r in ds.query] == [1, 3]
    assert ds.summary()["train"] == {"ids": 3, "images": 5, "cameras": 2}


def test_market_frames_laid_end_to_end_per_sequence(market):
    ds = load_dataset("market1501", market)
    by_name = {Path(r.path).name: r for r in ds.train + ds.query + ds.gallery}
    s1, s2, s3 = (by_name[n] for n in MARKET["bounding_box_train"][:3])
    # the raw sequence and frame stay on the record
    assert [(r.sequence, r.raw_frame) for r in (s1, s2, s3)] == [(1, 451), (2, 100), (3, 50)]
    assert [r.frame for r in (s1, s2, s3)] == [
        451,
        SEQUENCE_STRIDE + 100,
        2 * SEQUENCE_STRIDE + 50,
    ]
    for r in by_name.values():
        assert r.frame == (r.sequence - 1) * SEQUENCE_STRIDE + r.raw_frame
    # images of different sequences of one camera are never temporal neighbours, even
    # though s2/s3 have *smaller* raw frames than s1
    cam1 = [r for r in by_name.values() if r.camid == 1]
    assert len({r.sequence for r in cam1}) == 3
    for a in cam1:
        for b in cam1:
            if a.sequence != b.sequence:
                assert abs(a.frame - b.frame) > LAMBDA_FR
            else:  # within one sequence, differences are the raw ones
                assert a.frame - b.frame == a.raw_frame - b.raw_frame
    same_seq = by_name["0005_c1s1_000460_01.png"].frame - s1.frame
    assert same_seq == 460 - 451
    assert ds.has_frames


def test_market_nested_release_folder(tmp_path):
    outer = tmp_path / "Market"
    make_folders(outer / "Market-1501-v15.09.15", MARKET)
    ds = load_dataset("market-1501", outer)
    assert ds.root == str((outer / "Market-1501-v15.09.15").resolve())
    assert len(ds.train) == 5 and len(ds.gallery) == 4


def test_market_upper_case_suffix_and_ignored_files(tmp_path):
    splits = {f: list(MARKET[f]) for f in FOLDERS}
    splits["query"] += ["0009_c2s1_000001_00.JPG", "thumbs.db"]
    ds = load_dataset("market1501", make_folders(tmp_path / "m", splits))
    assert "0009_c2s1_000001_00.JPG" in names(ds.query)


def test_market_unexpected_file_is_an_error(tmp_path):
    splits = {f: list(MARKET[f]) for f in FOLDERS}
    splits["bounding_box_test"].append("readme.txt")
    root = make_folders(tmp_path / "m", splits)
    with pytest.raises(TCULError) as err:
        load_dataset("market1501", root)
    msg = str(err.value)
    assert str(root.resolve() / "bounding_box_test" / "readme.txt") in msg
    assert "unexpected file" in msg and "0002_c1s1_000451_03.jpg" in msg


@pytest.mark.parametrize(
    "bad",
    [
        "0002_c1_000451_03.jpg",  # no sequence
        "0002_c1s1_000451.jpg",  # no box
        "0001_c2_f0046182.jpg",  # a Duke name
        "person.jpg",
    ],
)
def test_market_unparsable_name_is_not_skipped(tmp_path, bad):
    splits = {f: list(MARKET[f]) for f in FOLDERS}
    splits["bounding_box_train"].append(bad)
    root = make_folders(tmp_path / "m", splits)
    with pytest.raises(TCULError) as err:
        load_dataset("market1501", root)
    msg = str(err.value)
    assert bad in msg and "Market-1501" in msg and "0002_c1s1_000451_03.jpg" in msg
    assert str(root.resolve() / "bounding_box_train" / bad) in msg  # the full path


@pytest.mark.parametrize(
    "bad,expected",
    [("0002_c1s0_000451_03.jpg", "start at 1"), ("0002_c1s1_1000000_03.jpg", "six digits")],
)
def test_market_bad_sequence_or_frame_in_folder(tmp_path, bad, expected):
    splits = {f: list(MARKET[f]) for f in FOLDERS}
    splits["query"].append(bad)
    with pytest.raises(TCULError, match=expected):
        load_dataset("market1501", make_folders(tmp_path / "m", splits))


# ------------------------------------------------------ names against the dataset's facts
@pytest.mark.parametrize(
    "name,folder,bad,needles",
    [
        ("market1501", "bounding_box_train", "0002_c0s1_000451_03.jpg",
         ["names camera c0, but Market-1501 has cameras c1-c6", "move it out of the dataset folder",
          "read as dataset synthetic"]),
        ("market1501", "query", "0003_c9s1_000100_00.jpg",
         ["names camera c9, but Market-1501 has cameras c1-c6", "misnamed"]),
        ("market1501", "bounding_box_test", "0003_c7s1_000100_00.jpg",
         ["names camera c7, but Market-1501 has cameras c1-c6"]),
        ("dukemtmc", "bounding_box_test", "0005_c9_f0000100.jpg",
         ["names camera c9, but DukeMTMC-reID has cameras c1-c8",
          "move it out of the dataset folder"]),
        ("dukemtmc", "query", "0005_c0_f0000100.jpg", ["names camera c0, but DukeMTMC-reID"]),
        ("market1501", "query", "0000_c1s1_000100_00.jpg",
         ["names pid 0000, a distractor, but Market-1501 has distractors only in its gallery "
          "folder bounding_box_test, none in query", "move it to bounding_box_test"]),
        ("market1501", "bounding_box_train", "0000_c1s1_000100_00.jpg",
         ["pid 0000, a distractor", "none in bounding_box_train"]),
        ("market1501", "bounding_box_train", "-1_c1s1_000001_01.jpg",
         ["names pid -1, a junk box, but Market-1501 has junk boxes only in its gallery "
          "folder bounding_box_test, none in bounding_box_train"]),
        ("dukemtmc", "query", "-1_c2_f0000100.jpg",
         ["pid -1, a junk box, but DukeMTMC-reID has junk boxes only", "none in query"]),
        ("market1501", "bounding_box_test", "-2_c1s1_000001_01.jpg",
         ["names pid -2, but a pid in Market-1501 is 0001 and up"]),
    ],
)
def test_a_name_against_its_datasets_facts_is_one_line(tmp_path, name, folder, bad, needles):
    splits = MARKET if name == "market1501" else DUKE
    splits = {f: list(splits[f]) + ([bad] if f == folder else []) for f in FOLDERS}
    root = make_folders(tmp_path / "d", splits)
    with pytest.raises(TCULError) as err:
        load_dataset(name, root)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(root.resolve() / folder / bad) + " names ")
    for needle in needles:
        assert needle in msg, msg


def test_names_within_the_facts_are_read(tmp_path):
    """Every camera of each dataset's range, and distractors and junk in the gallery."""
    market = {f: list(MARKET[f]) for f in FOLDERS}
    market["query"] += [f"0008_c{c}s1_000100_00.jpg" for c in range(1, 7)]
    ds = load_dataset("market1501", make_folders(tmp_path / "m", market))
    assert {r.camid for r in ds.query} == set(range(1, 7))
    assert [r.pid for r in ds.gallery if r.pid <= 0] == [0]  # the junk box is dropped
    duke = {f: list(DUKE[f]) for f in FOLDERS}
    duke["query"] += [f"0009_c{c}_f0000100.jpg" for c in range(1, 9)]
    duke["bounding_box_test"] += ["0000_c3_f0000007.jpg"]
    ds = load_dataset("dukemtmc", make_folders(tmp_path / "d", duke))
    assert {r.camid for r in ds.query} == set(range(1, 9))
    assert [r.pid for r in ds.gallery if r.pid <= 0] == [0]


def test_a_synthetic_worlds_cameras_come_from_its_manifest(market):
    """MARKET's names use cameras c1-c3: a world of 3 cameras reads them, one of 2 does not,
    and a manifest without the number checks no camera."""
    (market / "manifest.json").write_text(json.dumps({"knobs": {"n_cameras": 3}}))
    assert len(load_dataset("synthetic", market).query) == 2
    (market / "manifest.json").write_text(json.dumps({"knobs": {"n_cameras": 2}}))
    with pytest.raises(TCULError) as err:
        load_dataset("synthetic", market)
    msg = str(err.value)
    assert "0004_c3s2_000020_00.jpg names camera c3, but this synthetic world has cameras " \
        "c1-c2" in msg and "world --overwrite" in msg
    (market / "manifest.json").write_text(json.dumps({"seed": 3}))
    assert len(load_dataset("synthetic", market).query) == 2


def test_a_world_of_nine_cameras_reads_as_synthetic_not_as_market(tmp_path):
    from tcul_helpers.data.synthetic import make_world

    root = tmp_path / "w"
    make_world(root, "target", seed=0, scale="smoke", n_cameras=9, progress=False)
    ds = load_dataset("synthetic", root)
    assert {r.camid for r in ds.train + ds.query + ds.gallery} == set(range(1, 10))
    # the world's distractors and junk are only in its gallery
    assert min(r.raw_pid for r in ds.train + ds.query) >= 1
    with pytest.raises(TCULError, match="but Market-1501 has cameras c1-c6.*dataset synthetic"):
        load_dataset("market1501", root)


# ---------------------------------------------------------------------- DukeMTMC-reID
def test_duke_records(duke):
    ds = load_dataset("dukemtmc", duke)
    assert ds.name == "dukemtmc"
    assert names(ds.train) == [
        "0001_c2_f0046182.jpg",
        "0001_c3_f0050000.jpg",
        "0004_c8_f0200001.jpg",
        "0010_c1_f0000123.jpg",
    ]
    assert [(r.pid, r.raw_pid, r.camid) for r in ds.train] == [
        (0, 1, 2),
        (0, 1, 3),
        (1, 4, 8),
        (2, 10, 1),
    ]
    # one frame counter per camera: the frame id is used as it is, no sequences
    assert [r.frame for r in ds.train] == [46182, 50000, 200001, 123]
    assert all(r.raw_frame == r.frame and r.sequence is None for r in ds.train)
    assert [(r.pid, r.camid, r.frame) for r in ds.query] == [(5, 2, 100000)]
    # junk dropped from the gallery; ids raw
    assert [(r.pid, r.camid, r.frame) for r in ds.gallery] == [(5, 1, 99999), (6, 4, 1)]
    assert ds.has_frames
    assert load_dataset("duke", duke).train == ds.train
    assert load_dataset("DukeMTMC-reID", duke).gallery == ds.gallery


def test_duke_bad_name_and_layout(tmp_path, duke):
    write_image(duke / "query" / "0005_c2s1_000451_00.jpg")  # a Market name in Duke
    with pytest.raises(TCULError) as err:
        load_dataset("dukemtmc", duke)
    assert "0005_c2s1_000451_00.jpg" in str(err.value)
    assert "DukeMTMC-reID" in str(err.value) and "0001_c2_f0046182.jpg" in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TCULError) as err:
        load_dataset("dukemtmc", empty)
    msg = str(err.value)
    assert f"missing folder {empty.resolve() / 'bounding_box_train'}" in msg
    assert "0001_c2_f0046182.jpg" in msg


# ---------------------------------------------------------------------------- MSMT17
MSMT_LISTS = {
    "list_train.txt": [
        "0000/0000_000_01_0303morning_0015_0.jpg 0",
        "0003/0003_000_14_0303noon_0950_0.jpg 3",
        "0000/0000_001_05_0303morning_0036_1.jpg 0",
    ],
    "list_val.txt": [
        "0001/0001_000_07_0303morning_0100_0.jpg 1",
        "",
        "0003/0003_002_02_0303afternoon_0001_2.jpg 3",
    ],
    "list_query.txt": ["0100/0100_000_03_0113morning_0005_0.jpg 100"],
    "list_gallery.txt": [
        "0101/0101_000_15_0113noon_0300_1.jpg 101",
        "0100/0100_005_10_0113noon_0300_1.jpg 100",
    ],
}

MSMT_FOLDERS = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}


def make_msmt(root: Path, version: str = "v1", lists: dict | None = None) -> Path:
    train_dir, test_dir = MSMT_FOLDERS[version]
    lists = MSMT_LISTS if lists is None else lists
    root.mkdir(parents=True)
    for list_name, lines in lists.items():
        (root / list_name).write_text("\n".join(lines) + "\n")
        folder = train_dir if list_name in ("list_train.txt", "list_val.txt") else test_dir
        for line in lines:
            if line.strip():
                write_image(root / folder / line.split()[0])
    return root


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_msmt_records(tmp_path, version):
    root = make_msmt(tmp_path / f"MSMT17_{version}", version)
    ds = load_dataset("msmt17", root)
    train_dir, test_dir = MSMT_FOLDERS[version]
    assert ds.name == "msmt17"
    # train + val merged, sorted by path, relabelled 0..P-1 in sorted raw-id order
    assert [Path(r.path).relative_to(root.resolve() / train_dir).as_posix() for r in ds.train] == [
        "0000/0000_000_01_0303morning_0015_0.jpg",
        "0000/0000_001_05_0303morning_0036_1.jpg",
        "0001/0001_000_07_0303morning_0100_0.jpg",
        "0003/0003_000_14_0303noon_0950_0.jpg",
        "0003/0003_002_02_0303afternoon_0001_2.jpg",
    ]
    assert [(r.pid, r.raw_pid) for r in ds.train] == [(0, 0), (0, 0), (1, 1), (2, 3), (2, 3)]
    assert [r.camid for r in ds.train] == [1, 5, 7, 14, 2]  # third '_' field
    assert [(r.pid, r.camid) for r in ds.query] == [(100, 3)]
    assert [(r.pid, r.raw_pid, r.camid) for r in ds.gallery] == [(100, 100, 10), (101, 101, 15)]
    assert all(Path(r.path).is_relative_to(root.resolve() / test_dir) for r in ds.gallery)
    # no usable frame ids: source set only
    for r in ds.train + ds.query + ds.gallery:
        assert r.frame is None and r.sequence is None and r.raw_frame is None
    assert not ds.has_frames
    assert load_dataset("msmt", root).train == ds.train


def test_msmt_without_val_list(tmp_path):
    lists = {k: v for k, v in MSMT_LISTS.items() if k != "list_val.txt"}
    ds = load_dataset("msmt17", make_msmt(tmp_path / "m", lists=lists))
    assert [(r.pid, r.raw_pid) for r in ds.train] == [(0, 0), (0, 0), (1, 3)]


@pytest.mark.parametrize(
    "line", ["0000/0000_000_01_0303morning_0015_0.jpg", "0000/x.jpg zero", "a.jpg 1 2"]
)
def test_msmt_malformed_line(tmp_path, line):
    root = make_msmt(tmp_path / "m")
    good = MSMT_LISTS["list_gallery.txt"][0]
    (root / "list_gallery.txt").write_text(f"{good}\n{line}\n")
    with pytest.raises(TCULError) as err:
        load_dataset("msmt17", root)
    msg = str(err.value)
    assert f"{root.resolve() / 'list_gallery.txt'}:2" in msg
    assert repr(line) in msg and "expected 'path pid'" in msg


def test_msmt_listed_image_missing(tmp_path):
    root = make_msmt(tmp_path / "m")
    missing = "0003/0003_002_02_0303afternoon_0001_2.jpg"
    (root / "train" / missing).unlink()
    with pytest.raises(TCULError) as err:
        load_dataset("msmt17", root)
    msg = str(err.value)
    assert missing in msg and str(root.resolve() / "list_val.txt") in msg
    assert str(root.resolve() / "train") in msg and str(root.resolve() / "mask_train_v2") in msg


def test_msmt_query_image_only_in_train_folder_is_missing(tmp_path):
    root = make_msmt(tmp_path / "m")
    rel = MSMT_LISTS["list_query.txt"][0].split()[0]
    write_image(root / "train" / rel)
    (root / "test" / rel).unlink()
    with pytest.raises(TCULError, match="list_query.txt was not found under .*test"):
        load_dataset("msmt17", root)


def test_msmt_missing_or_empty_list(tmp_path):
    root = make_msmt(tmp_path / "m")
    (root / "list_query.txt").unlink()
    with pytest.raises(TCULError) as err:
        load_dataset("msmt17", root)
    assert f"missing list file {root.resolve() / 'list_query.txt'}" in str(err.value)
    assert "lines 'path pid'" in str(err.value)
    (root / "list_query.txt").write_text("\n\n")
    with pytest.raises(TCULError) as err:
        load_dataset("msmt17", root)
    assert f"list file {root.resolve() / 'list_query.txt'} is empty" in str(err.value)


def test_msmt_camera_not_readable(tmp_path):
    lists = dict(MSMT_LISTS)
    lists["list_train.txt"] = MSMT_LISTS["list_train.txt"] + ["0004/person_a.jpg 4"]
    root = make_msmt(tmp_path / "m", lists=lists)
    with pytest.raises(TCULError) as err:
        load_dataset("msmt17", root)
    assert "0004/person_a.jpg" in str(err.value) and "third '_' field" in str(err.value)
    assert "list_train.txt:4" in str(err.value)  # the list file and line it came from


def test_msmt_wrong_layout(tmp_path):
    market = make_folders(tmp_path / "market", MARKET)
    with pytest.raises(TCULError) as err:
        load_dataset("msmt17", market)
    msg = str(err.value)
    assert f"missing list file {market.resolve() / 'list_train.txt'}" in msg
    assert str(market.resolve() / "train") in msg


# ------------------------------------------------------------------------- synthetic
@pytest.fixture(scope="module")
def synthetic_world(tmp_path_factory) -> Path:
    from tcul_helpers.data.synthetic import make_world

    root = tmp_path_factory.mktemp("syn") / "target"
    make_world(root, "target", seed=0, scale="smoke", progress=False)
    return root


def test_synthetic_and_market_readers_agree(synthetic_world):
    syn = load_dataset("synthetic", synthetic_world)
    mkt = load_dataset("market1501", synthetic_world)
    assert syn.name == "synthetic" and mkt.name == "market1501"
    assert (syn.train, syn.query, syn.gallery) == (mkt.train, mkt.query, mkt.gallery)
    assert syn.root == mkt.root and syn.extra["manifest"]["preset"] == "target"
    assert mkt.extra == {}


def test_synthetic_needs_a_readable_manifest(market):
    with pytest.raises(TCULError) as err:
        load_dataset("synthetic", market)
    msg = str(err.value)
    assert str(market.resolve()) in msg and "no manifest.json" in msg and "make_world" in msg
    (market / "manifest.json").write_text("{not json")
    with pytest.raises(TCULError, match="corrupt .*manifest.json.*regenerate"):
        load_dataset("synthetic", market)
    (market / "manifest.json").write_text(json.dumps({"seed": 3}))
    ds = load_dataset("synthetic", market)
    assert ds.extra["manifest"] == {"seed": 3} and len(ds.train) == 5


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "name,example",
    [("market1501", "0002_c1s1_000451_03.jpg"), ("dukemtmc", "0001_c2_f0046182.jpg")],
)
def test_missing_root_or_file_root(tmp_path, name, example):
    tmp_path = tmp_path.resolve()
    missing = tmp_path / "nowhere"
    with pytest.raises(TCULError) as err:
        load_dataset(name, missing)
    msg = str(err.value)
    assert f"dataset root {missing} does not exist" in msg
    assert f"expected {missing}/bounding_box_train" in msg and example in msg
    afile = tmp_path / "a.zip"
    afile.write_bytes(b"zip")
    with pytest.raises(TCULError, match=re.escape(f"dataset root {afile} is not a folder")):
        load_dataset(name, afile)


def test_missing_msmt_root(tmp_path):
    tmp_path = tmp_path.resolve()
    with pytest.raises(TCULError) as err:
        load_dataset("msmt17", tmp_path / "nowhere")
    assert f"dataset root {tmp_path / 'nowhere'} does not exist" in str(err.value)
    assert "list_train.txt" in str(err.value)


def test_wrong_layout_shows_expected_layout(tmp_path):
    root = tmp_path.resolve() / "pics"
    write_image(root / "0002_c1s1_000451_03.jpg")  # images not in split folders
    with pytest.raises(TCULError) as err:
        load_dataset("market1501", root)
    msg = str(err.value)
    assert f"missing folder {root / 'bounding_box_train'}" in msg
    assert f"expected {root}/bounding_box_train, {root}/query and {root}/bounding_box_test" in msg


@pytest.mark.parametrize("folder", FOLDERS)
def test_missing_split_folder(tmp_path, folder):
    root = make_folders(tmp_path.resolve() / "m", {f: MARKET[f] for f in FOLDERS if f != folder})
    with pytest.raises(TCULError) as err:
        load_dataset("market1501", root)
    assert f"missing folder {root / folder}:" in str(err.value)
    assert "bounding_box_test" in str(err.value)


@pytest.mark.parametrize("leftover", [[], ["Thumbs.db"]])
def test_empty_split_folder(tmp_path, leftover):
    splits = {f: list(MARKET[f]) for f in FOLDERS}
    splits["query"] = leftover
    root = make_folders(tmp_path.resolve() / "m", splits)
    with pytest.raises(TCULError) as err:
        load_dataset("market1501", root)
    assert f"no images in {root / 'query'}:" in str(err.value)
    assert "0002_c1s1_000451_03.jpg" in str(err.value)


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(TCULError) as err:
        load_dataset("cuhk03", tmp_path)
    msg = str(err.value)
    assert "'cuhk03'" in msg and all(name in msg for name in DATASETS)


def test_corrupt_image_found_only_with_check_images(market):
    ds = load_dataset("market1501", market, check_images=True)  # all good
    bad = Path(ds.gallery[-1].path)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated JPEG
    load_dataset("market1501", market)  # names are fine, images not opened
    with pytest.raises(TCULError) as err:
        load_dataset("market1501", market, check_images=True)
    assert f"unreadable image {bad}" in str(err.value)


def test_check_image(tmp_path):
    check_image(write_image(tmp_path / "ok.jpg"))
    check_image(str(write_image(tmp_path / "ok.png")))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    for path in (tmp_path / "empty.jpg", tmp_path / "text.png", tmp_path / "missing.jpg"):
        with pytest.raises(TCULError, match=re.escape(f"unreadable image {path}") + ".*re-extract"):
            check_image(path)


# ----------------------------------------------------------------------- name parsers
@pytest.mark.parametrize(
    "name,expected",
    [
        ("0002_c1s1_000451_03.jpg", (2, 1, 1, 451)),
        ("-1_c3s2_000123_00.jpg", (-1, 3, 2, 123)),
        ("0000_c6s6_999999_09.png", (0, 6, 6, 999999)),
        ("/data/Market/query/1501_c2s3_000001_00.jpg", (1501, 2, 3, 1)),
    ],
)
def test_parse_market_name(name, expected):
    assert parse_market_name(name) == expected


@pytest.mark.parametrize(
    "name", ["0002_c1_000451_03.jpg", "0002_c1s1_000451.jpg", "c1s1_000451_03.jpg", "x.jpg"]
)
def test_parse_market_name_errors(name):
    with pytest.raises(TCULError) as err:
        parse_market_name(name)
    assert repr(name) in str(err.value) and "PPPP_cCsS_FFFFFF_BB.jpg" in str(err.value)


def test_market_frame():
    assert market_frame(1, 0) == 0 and market_frame(1, 451) == 451
    assert market_frame(2, 100) == SEQUENCE_STRIDE + 100
    assert market_frame(3, 50) == 2 * SEQUENCE_STRIDE + 50
    # the closest two sequences can come: last frame of sN vs first frame of sN+1
    assert market_frame(2, 0) - market_frame(1, MAX_RAW_FRAME) > 1_000_000
    assert market_frame(5, MAX_RAW_FRAME) < market_frame(6, 0)
    with pytest.raises(TCULError, match="start at 1, got s0"):
        market_frame(0, 451)
    with pytest.raises(TCULError, match="frame 1000000 has more than six digits"):
        market_frame(1, 1_000_000)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("0001_c2_f0046182.jpg", (1, 2, 46182)),
        ("-1_c8_f0000001.jpg", (-1, 8, 1)),
        ("/d/bounding_box_test/0042_c5_f12345678.jpg", (42, 5, 12345678)),
    ],
)
def test_parse_duke_name(name, expected):
    assert parse_duke_name(name) == expected


@pytest.mark.parametrize(
    "name", ["0001_c2_0046182.jpg", "0001_c2s1_000451_01.jpg", "0001_f0046182.jpg"]
)
def test_parse_duke_name_errors(name):
    with pytest.raises(TCULError) as err:
        parse_duke_name(name)
    assert repr(name) in str(err.value) and "0001_c2_f0046182.jpg" in str(err.value)


def test_parse_msmt_camera():
    assert parse_msmt_camera("0000/0000_000_01_0303morning_0015_0.jpg") == 1
    assert parse_msmt_camera("1040_012_15_0113noon_0862_0.jpg") == 15
    for bad in ("0000/0000_000.jpg", "0000/0000_000_ab_0303morning_0015_0.jpg"):
        with pytest.raises(TCULError, match="third '_' field"):
            parse_msmt_camera(bad)
