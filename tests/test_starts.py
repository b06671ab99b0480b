"""The two starts of f_theta0 (scratch, ImageNet): their settings and their own folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcul_helpers.experiment import pipeline
from tcul_helpers.experiment.demo import default_out
from tcul_helpers.experiment.sweeps import default_dir
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.settings.config import get_config, start_of, start_settings


def test_start_settings_per_profile():
    assert start_settings("classroom", "imagenet") == {"arch": "mobilenet_v2",
                                                       "imagenet_init": True,
                                                       "target_lr": 5e-4,
                                                       "source_lr": 1e-3}
    # the CPU profiles' ImageNet start fine-tunes with the paper's lr and trains f_theta0 with
    # its own (the paper's 1e-4 does not fit the source set in 30 classroom epochs), scratch
    # keeps its own
    assert get_config("classroom", start="imagenet").target_lr == get_config("paper").target_lr
    assert get_config("classroom", start="imagenet").source_lr == 1e-3
    assert get_config("paper", start="imagenet").source_lr == 1e-4
    assert get_config("classroom", start="scratch").source_lr == 3e-3
    assert get_config("classroom", start="scratch").target_lr == 1e-2
    assert start_settings("paper", "scratch")["imagenet_init"] is False
    cfg = get_config("smoke", start="imagenet", lambda_fr=50)
    assert (cfg.arch, cfg.imagenet_init, cfg.lambda_fr) == ("mobilenet_v2", True, 50)
    assert start_of(get_config("classroom")) == "scratch"
    assert start_of(get_config("paper")) == "imagenet"
    # --set after the start overrides a single setting
    assert get_config("smoke", start="imagenet", arch="compact").arch == "compact"
    with pytest.raises(TCULError, match="unknown start"):
        get_config("smoke", start="pretrained")


def test_the_other_start_keeps_its_own_folders():
    runs = Path("r")
    scratch, imagenet = get_config("classroom"), get_config("classroom", start="imagenet")
    assert pipeline.source_dir(scratch, runs) == runs / "classroom" / "seed0" / "source"
    assert pipeline.source_dir(imagenet, runs) == runs / "classroom" / "seed0" / "source-imagenet"
    assert default_out(scratch, runs) == runs / "demo"
    assert default_out(imagenet, runs) == runs / "demo-imagenet"
    assert default_out(get_config("smoke", seed=1, start="imagenet"), runs) == (
        runs / "demo-smoke-seed1-imagenet")
    assert default_dir(imagenet, runs).name == "sweeps-imagenet"
    assert default_dir(scratch, runs).name == "sweeps"
    # the paper profile's own start is ImageNet: there scratch is the other one (on
    # synthetic data here: real data add -data-<hash>, tests/test_data_identity.py)
    paper = get_config("paper", start="scratch", source="synthetic", target="synthetic")
    assert pipeline.source_dir(paper, runs).name == "source-scratch"
