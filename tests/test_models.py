"""Model shapes and head, classifier removal, ImageNet-cache rule, checkpoints.

The mobilenet_v2 arch and its ImageNet start: tests/test_imagenet_init.py.
"""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from tcul_helpers.infra.errors import TCULError
from tcul_helpers.training.models import (
    ReidNet,
    build_model,
    imagenet_weights_path,
    load_checkpoint,
    model_to_device,
    save_checkpoint,
)


@pytest.mark.parametrize("size", [(64, 32), (32, 16)])
def test_compact_shapes_train_and_eval(size):
    torch.manual_seed(0)
    model = build_model("compact", num_classes=7, embedding_dim=24)
    x = torch.randn(4, 3, *size)
    model.train()
    emb, logits = model(x)
    assert emb.shape == (4, 24) and logits.shape == (4, 7)
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 24)


@pytest.mark.parametrize("arch,channels", [("resnet18", 512), ("resnet50", 2048)])
def test_resnet_shapes_and_paper_head(arch, channels):
    torch.manual_seed(0)
    model = build_model(arch, num_classes=5, embedding_dim=2048 if arch == "resnet50" else 64)
    dim = model.embedding_dim
    assert model.trunk_channels == channels
    assert isinstance(model.bn, nn.BatchNorm1d) and model.bn.num_features == channels
    assert (model.embedding.in_features, model.embedding.out_features) == (channels, dim)
    assert (model.classifier.in_features, model.classifier.out_features) == (dim, 5)
    x = torch.randn(2, 3, 64, 32)
    model.train()
    emb, logits = model(x)
    assert emb.shape == (2, dim) and logits.shape == (2, 5)
    model.eval()
    with torch.no_grad():
        got = model(x)
        # the head written out: GAP -> BN -> ReLU -> FC (embedding)
        fmap = model.trunk(x)
        assert fmap.shape[1] == channels
        pooled = fmap.mean(dim=(2, 3))
        bn = model.bn
        normed = (pooled - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        normed = normed * bn.weight + bn.bias
        manual = torch.relu(normed) @ model.embedding.weight.T + model.embedding.bias
    assert torch.allclose(got, manual, atol=1e-4, rtol=1e-4)


def test_resnet_trunk_is_torchvisions():
    model = build_model("resnet18", num_classes=0, embedding_dim=8)
    ref = torchvision.models.resnet18(weights=None)
    trunk_keys = {k.split(".", 1)[1] for k in model.state_dict() if k.startswith("trunk.")}
    ref_keys = {k for k in ref.state_dict() if not k.startswith("fc.")}
    assert len(trunk_keys) == len(ref_keys)


def test_drop_classifier_and_zero_classes():
    model = build_model("compact", num_classes=3, embedding_dim=16)
    assert model.num_classes == 3
    assert model.drop_classifier() is model
    assert model.num_classes == 0 and model.classifier is None
    model.train()
    emb, logits = model(torch.randn(2, 3, 32, 16))
    assert emb.shape == (2, 16) and logits is None
    bare = build_model("compact", num_classes=0, embedding_dim=16)
    assert bare.classifier is None
    assert not any(k.startswith("classifier") for k in bare.state_dict())


def test_bad_build_arguments():
    with pytest.raises(TCULError, match="unknown arch"):
        build_model("vgg", 3, 8)
    with pytest.raises(TCULError, match="imagenet_init=false"):
        build_model("compact", 3, 8, imagenet_init=True)
    with pytest.raises(TCULError, match="embedding_dim"):
        build_model("compact", 3, 0)


def test_imagenet_init_from_local_cache_or_offline_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(self, *args, **kwargs):  # torchvision's download, as it fails offline
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(TCULError, match="not in the local cache") as err:
        build_model("resnet18", 3, 8, imagenet_init=True)
    assert str(tmp_path) in str(err.value) and "imagenet_init=false" in str(err.value)
    # a file in the cache is used (here: a random torchvision resnet18 state dict)
    torch.manual_seed(123)
    ref = torchvision.models.resnet18(weights=None)
    path = imagenet_weights_path("resnet18")  # what data/README.md tells users to run
    assert path.parent == tmp_path / "checkpoints" and path.name.startswith("resnet18-")
    path.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), path)
    model = build_model("resnet18", 3, 8, imagenet_init=True)
    assert torch.equal(model.trunk[0].weight, ref.conv1.weight)
    assert torch.equal(model.trunk[7][1].conv2.weight, ref.layer4[1].conv2.weight)
    path.write_bytes(b"garbage")
    with pytest.raises(TCULError, match="unreadable"):
        build_model("resnet18", 3, 8, imagenet_init=True)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    # on the device and in the layout the kit trains in, as a loaded checkpoint is
    model = model_to_device(build_model("compact", num_classes=4, embedding_dim=12), "cpu")
    model.train()
    model(torch.randn(8, 3, 32, 16))  # move BN running statistics away from their init
    model.eval()
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, {"epoch": 3, "cfg": {"seed": 1}})
    loaded, meta = load_checkpoint(path, arch="compact")
    assert isinstance(loaded, ReidNet) and not loaded.training
    assert meta == {"epoch": 3, "cfg": {"seed": 1}}
    assert loaded.num_classes == 4 and loaded.embedding_dim == 12
    x = torch.randn(3, 3, 32, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(),
                                  strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    model.drop_classifier()
    save_checkpoint(path, model)
    bare, meta = load_checkpoint(path)
    assert bare.classifier is None and meta == {}


def test_bad_checkpoints(tmp_path):
    model = build_model("compact", num_classes=2, embedding_dim=8)
    good = save_checkpoint(tmp_path / "good.pt", model)
    with pytest.raises(TCULError, match="holds a compact model but resnet18"):
        load_checkpoint(good, arch="resnet18")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:200])
    with pytest.raises(TCULError, match="corrupt.pt.*corrupt"):
        load_checkpoint(corrupt)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(TCULError, match="noise.pt"):
        load_checkpoint(noise)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(TCULError, match="not a TCUL kit checkpoint"):
        load_checkpoint(foreign)
    mismatch = tmp_path / "mismatch.pt"
    blob = torch.load(good, weights_only=True)
    blob["state_dict"].pop("embedding.weight")
    torch.save(blob, mismatch)
    with pytest.raises(TCULError, match="does not match"):
        load_checkpoint(mismatch)
    with pytest.raises(TCULError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    with pytest.raises(TCULError, match="JSON-like"):
        save_checkpoint(tmp_path / "x.pt", model, {"bad": object()})


def test_model_to_device_cpu_is_channels_last():
    model = model_to_device(build_model("compact", 2, 8), "cpu")
    w = model.trunk[0][0].weight
    assert w.device.type == "cpu" and w.is_contiguous(memory_format=torch.channels_last)
