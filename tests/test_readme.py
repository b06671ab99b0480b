"""The README's profile table must say what ``tcul_helpers.settings.config`` does (it went stale
once)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tcul_helpers.settings.config import PROFILES, get_config

README = Path(__file__).resolve().parents[1] / "README.md"


def _profile_table() -> dict[str, dict[str, str]]:
    """``{row name: {profile: cell}}`` of the table under '## Profiles'."""
    text = README.read_text(encoding="utf-8").split("## Profiles", 1)[1]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    header = [c.strip(" `") for c in rows[0].strip("|").split("|")]
    cols = [next(p for p in PROFILES if p in h) for h in header[1:]]
    table: dict[str, dict[str, str]] = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = dict(zip(cols, cells[1:], strict=True))
    return table


def _num(x: float) -> str:
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_table_matches_config(profile: str) -> None:
    cfg = get_config(profile)
    t = {row: cells[profile] for row, cells in _profile_table().items()}
    epochs = "epoch" if cfg.source_epochs == 1 else "epochs"
    assert t["source baseline"] == f"{cfg.source_epochs} {epochs}, Adam {_num(cfg.source_lr)}"
    assert t["batches (identities x images)"] == f"{cfg.batch_ids} x {cfg.batch_instances}"
    assert f"`epoch={cfg.epoch}`" in t["an epoch covers"]
    assert t["iterations of Algorithm 1"] == str(cfg.n_iter)
    assert t["clusters K"] == str(cfg.n_clusters)
    epochs = "epoch" if cfg.target_epochs == 1 else "epochs"
    assert t["fine-tuning per iteration"] == (
        f"{cfg.target_epochs} {epochs}, SGD {_num(cfg.target_lr)}")
    size = f"{cfg.height}x{cfg.width}"
    assert size in t["network"] and f"{cfg.embedding_dim}-d" in t["network"]
    if cfg.source != "synthetic":
        names = {"market1501": "Market-1501", "dukemtmc": "DukeMTMC-reID", "msmt17": "MSMT17"}
        assert re.search(f"{names[cfg.source]} -> {names[cfg.target]}", t["data"])
