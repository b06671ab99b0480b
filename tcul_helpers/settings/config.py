"""One configuration object for every run, and the three profiles.

``paper`` holds the paper's exact hyper-parameters (Sec. 4.1, Algorithm 1); ``classroom``
(the default) and ``smoke`` override what they must to run on a laptop CPU in minutes or
seconds. Every notebook and command takes a profile; ``--set key=value`` overrides fields.

Networks (``arch``): ``resnet50`` (the paper's), ``resnet18``, ``compact`` (the CPU
profiles' default, from scratch) and ``mobilenet_v2``. The two *starts* of f_theta0
(:data:`STARTS`): ``scratch`` and ``imagenet``, chosen with ``--start`` / ``start=`` /
``make demo INIT=imagenet``; on the CPU profiles the ImageNet start is MobileNetV2, whose
weights ship with the kit's install, so it works offline (see :mod:`tcul_helpers.training.models`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.synthetic.presets import SCALES
from ..infra.atomic_files import write_json
from ..infra.device import DEVICE_CHOICES
from ..infra.errors import TCULError
from ..method.selection import SELECTIONS

PROFILES = ("smoke", "classroom", "paper")
DEFAULT_PROFILE = "classroom"

# The values of the settings whose code lives in training/ (which reads this module):
#: the networks (training/models.py)
ARCHS = ("resnet50", "resnet18", "compact", "mobilenet_v2")
#: how the centres move on: Eq. 6-7, or PUL-style k-means every iteration
CENTERS = ("update", "kmeans")
#: where fine-tuning starts in each iteration: the last model, or f_theta0 again (PUL)
FINETUNE_FROM = ("previous", "source")
#: the fine-tuning loss: Eq. 4-5, or PUL's cross-entropy through a fresh classifier
FINETUNE_LOSSES = ("triplet", "softmax")
#: what the P x M sampler does with a pseudo-identity of one image: leave it out, or repeat it
SINGLETON_RULES = ("drop", "replace")
#: what one epoch of P x M batches covers: every identity once with M of its images, or
#: about one pass over the images (each identity in about n_images / M groups of M)
EPOCHS = ("identities", "images")

#: The method variants the kit runs side by side (method-notes.md, "Variants").
VARIANTS: dict[str, dict[str, Any]] = {
    "tcul": {"selection": "temporal", "centers": "update", "finetune_from": "previous",
             "l2_normalize": True, "finetune_loss": "triplet"},
    "sul": {"selection": "similarity", "centers": "update", "finetune_from": "previous",
            "l2_normalize": True, "finetune_loss": "triplet"},
    "pul": {"selection": "similarity", "centers": "kmeans", "finetune_from": "source",
            "l2_normalize": False, "finetune_loss": "softmax"},
}
#: How the variants (and the unadapted source model) are called in tables and figures.
VARIANT_NAMES = {"baseline": "baseline", "pul": "PUL-style", "sul": "SUL", "tcul": "TCUL"}
#: What a variant sets in one profile only: public PUL's SGD lr 1e-3 goes with the paper
#: profile (its ResNet-50, 20 epochs); the CPU profiles' short schedules keep their own lr.
VARIANT_PROFILE_SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("pul", "paper"): {"target_lr": 1e-3},
}


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: ``low`` .. ``high`` (``None``: unbounded),
    each end included unless ``low_open`` / ``high_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the range (NaN never does)."""
        if value != value:  # NaN
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None
                    and (value > self.high or (self.high_open and value == self.high)))

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")


#: settings of older kits that decided no result: a saved configuration may still hold them
RETIRED = frozenset({"extra"})


#: A lambda_fr wider than any camera's stream of frames: Eq. 3 then keeps every image of a
#: (camera, cluster) group ("no temporal window", the sweeps' last point).
INFINITE_FRAMES = 10**7


#: The fix for a run's configuration that cannot be read (it may be the kit's, or the user's).
NOT_OURS = ("it is damaged or not the kit's; if the kit wrote it, start the run over "
            "(--fresh); if it is yours, choose another output folder (--out DIR)")


def setting(default: Any, *, decides: str = "yes", source: bool = False,
            valid: Range | None = None) -> Any:
    """A :class:`Config` field with what the kit must know about it, declared once:

    * ``decides``: ``"yes"`` when the setting decides a result's numbers (it enters
      :func:`fingerprint`), ``"no"`` when it does not (device, loader workers, batch size
      of feature extraction), ``"data"`` for a dataset root (the dataset's own content key
      stands for it: the same world in two folders gives the same numbers);
    * ``source``: it also decides f_theta0, the source model (:func:`source_settings`);
    * ``valid``: the :class:`Range` a numeric value must lie in (checked by :func:`validate`).
    """
    return field(default=default, metadata={"decides": decides, "source": source,
                                            "valid": valid})


@dataclass(frozen=True)
class Config:
    """Every hyper-parameter of a run. Defaults are the paper's (the ``paper`` profile)."""

    profile: str = setting("paper")
    seed: int = setting(0, source=True, valid=Range(0, None))
    device: str = setting("auto", decides="no")  # auto | cpu | cuda

    # --- data --------------------------------------------------------------------------
    # the paper's Duke -> Market setting (K = 750 is its value for Market-1501's 751 ids)
    # dataset name: market1501 | dukemtmc | msmt17 | synthetic
    source: str = setting("dukemtmc", source=True)
    source_root: str = setting("data/dukemtmc", decides="data", source=True)
    target: str = setting("market1501")
    target_root: str = setting("data/market1501", decides="data")
    # synthetic world size preset: smoke | classroom | market-like
    world_scale: str = setting("classroom")

    # --- model and input ---------------------------------------------------------------
    # resnet50 | resnet18 | compact | mobilenet_v2
    arch: str = setting("resnet50", source=True)
    height: int = setting(256, source=True, valid=Range(16, None))
    width: int = setting(128, source=True, valid=Range(8, None))
    # the first FC after GAP -> BN -> ReLU
    embedding_dim: int = setting(2048, source=True, valid=Range(1, None))
    # start the trunk from ImageNet (see training/models.py, data/README.md)
    imagenet_init: bool = setting(True, source=True)

    # --- source baseline (Sec. 4.1) ----------------------------------------------------
    source_epochs: int = setting(150, source=True, valid=Range(0, None))
    source_lr: float = setting(1e-4, source=True, valid=Range(0, None, low_open=True))  # Adam
    source_margin: float = setting(0.5, source=True, valid=Range(0, None))
    num_instances_source: int = setting(8, source=True, valid=Range(2, None))

    # --- batches: P identities x M images (16 x 8 in the paper; M is not Eq. 2's K) ----
    batch_ids: int = setting(16, source=True, valid=Range(2, None))
    batch_instances: int = setting(8, valid=Range(2, None))
    # what an epoch covers: images (about one pass, as the re-id toolboxes) | identities
    epoch: str = setting("images", source=True)

    # --- Algorithm 1 -------------------------------------------------------------------
    n_iter: int = setting(10, valid=Range(0, None))
    n_clusters: int = setting(750, valid=Range(1, None))  # K
    lambda_fr: int = setting(100, valid=Range(0, None))
    lambda_c: float = setting(0.5, valid=Range(0, 1))
    beta: float = setting(1e-6, valid=Range(0, None, low_open=True))
    margin: float = setting(0.5, valid=Range(0, None))  # m of Eq. 4
    selection: str = setting("temporal")  # temporal (TCUL) | similarity (SUL/PUL) | none
    centers: str = setting("update")  # update (Eq. 6-7) | kmeans (PUL-style re-clustering)
    # previous | source (PUL fine-tunes from f_theta0)
    finetune_from: str = setting("previous")
    # L2-normalise features once after extraction (PUL: false)
    l2_normalize: bool = setting(True)
    # triplet (Eq. 4-5) | softmax (PUL: CE, fresh classifier)
    finetune_loss: str = setting("triplet")
    sim_threshold: float = setting(0.85, valid=Range(-1, 1))
    singletons: str = setting("drop")  # drop | replace: pseudo-ids with one kept image
    kmeans_iters: int = setting(30, valid=Range(1, None))

    # --- target fine-tuning (Sec. 4.1) -------------------------------------------------
    target_epochs: int = setting(20, valid=Range(0, None))
    target_lr: float = setting(5e-4, valid=Range(0, None, low_open=True))  # SGD
    momentum: float = setting(0.9, valid=Range(0, 1, high_open=True))
    weight_decay: float = setting(5e-4, valid=Range(0, None))
    random_erasing: float = setting(0.5, source=True, valid=Range(0, 1))
    flip: float = setting(0.5, source=True, valid=Range(0, 1))

    # --- machinery ---------------------------------------------------------------------
    eval_batch_size: int = setting(256, decides="no", valid=Range(1, None))
    # processes that decode images for the network (0: decode in the main process)
    num_workers: int = setting(8, decides="no", valid=Range(0, None))
    amp: bool = setting(True)  # mixed precision on CUDA only

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied, each checked against the field's type."""
        return apply_overrides(self, changes)

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    def absolute_roots(self, base: str | Path | None = None) -> Config:
        """This configuration with ``source_root`` / ``target_root`` as absolute paths
        (a relative root is taken from ``base``, default the current folder)."""
        here = Path(base) if base is not None else Path.cwd()
        roots = {k: str((here / Path(getattr(self, k)).expanduser()).resolve())
                 for k in ("source_root", "target_root")}
        return self.replace(**roots)

    def save(self, path: str | Path) -> None:
        """Write the full resolved configuration as JSON."""
        write_json(path, self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read a configuration written by :meth:`save`; TCULError (one line naming the
        file) when it is unreadable, not UTF-8 JSON, or not a kit configuration."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TCULError(f"{path} is unreadable ({type(exc).__name__}): {NOT_OURS}"
                            ) from None
        names = {f.name for f in dataclasses.fields(cls)}
        if isinstance(data, dict):  # settings the kit no longer has (they decided nothing)
            # and the ones it added since, at the value the older kit ran with
            data = {**_ADDED_LATER, **{k: v for k, v in data.items() if k not in RETIRED}}
        if not isinstance(data, dict) or not set(data) <= names:
            raise TCULError(f"{path} is not a kit configuration: {NOT_OURS}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise TCULError(f"{path} is not a kit configuration ({exc}): {NOT_OURS}"
                            ) from None


_SYNTHETIC = dict(
    source="synthetic",
    source_root="data/generated/{scale}/source",
    target="synthetic",
    target_root="data/generated/{scale}/target",
)

_PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper": {},
    "classroom": dict(
        _SYNTHETIC,
        world_scale="classroom",
        arch="compact",
        height=64,
        width=32,
        embedding_dim=128,
        imagenet_init=False,
        # set on the classroom worlds: f_theta0 clearly imperfect on the target, and as many
        # iterations as TCUL's gains go on growing
        source_epochs=30,
        source_lr=3e-3,
        n_iter=6,
        n_clusters=200,  # the classroom target world's true number of training identities
        lambda_fr=100,
        target_epochs=10,
        target_lr=1e-2,
        batch_ids=16,
        batch_instances=4,
        num_instances_source=4,
        kmeans_iters=30,
        num_workers=0,
        epoch="identities",
    ),
    "smoke": dict(
        _SYNTHETIC,
        world_scale="smoke",
        arch="compact",
        height=32,
        width=16,
        embedding_dim=32,
        imagenet_init=False,
        source_epochs=1,
        source_lr=1e-3,
        n_iter=2,
        n_clusters=12,
        lambda_fr=100,
        target_epochs=1,
        target_lr=1e-2,
        batch_ids=4,
        batch_instances=4,
        num_instances_source=4,
        kmeans_iters=10,
        eval_batch_size=64,
        num_workers=0,
        epoch="identities",
    ),
}


def get_config(profile: str | None = None, **overrides: Any) -> Config:
    """The configuration of ``profile`` (default: ``$TCUL_PROFILE`` or ``classroom``).

    ``overrides`` replace fields, e.g. ``get_config("smoke", lambda_fr=50)``. A ``variant``
    override (``tcul``, ``sul``, ``pul``) sets selection, centres and fine-tuning start; a
    ``start`` override (``scratch``, ``imagenet``) the network and its initialisation.
    """
    if not profile:
        profile = os.environ.get("TCUL_PROFILE", "").strip() or DEFAULT_PROFILE
        if profile not in PROFILES:
            raise TCULError(f"the environment variable TCUL_PROFILE={profile!r} names no "
                            f"profile: set it to one of {', '.join(PROFILES)} (or unset it)")
    if profile not in PROFILES:
        raise TCULError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    base = dict(_PROFILE_OVERRIDES[profile])
    scale = overrides.get("world_scale", base.get("world_scale", "classroom"))
    for key in ("source_root", "target_root"):
        if key in base:
            base[key] = base[key].format(scale=scale)
    cfg = Config(profile=profile, **base)
    start = overrides.pop("start", None)
    if start is not None:
        cfg = apply_overrides(cfg, start_settings(profile, start))
    variant = overrides.pop("variant", None)
    if variant is not None:
        cfg = apply_overrides(cfg, variant_settings(variant, profile))
    return apply_overrides(cfg, overrides)


#: The two starts of f_theta0 the kit compares: from scratch, or from ImageNet
#: weights (the paper's start). Per profile, the settings each start sets: the CPU profiles'
#: ImageNet start is torchvision's MobileNetV2 (shipped offline), the paper's ResNet-50.
STARTS = ("scratch", "imagenet")
#: The paper's fine-tuning lr (SGD, Sec. 4.2), set for a network started from ImageNet; the
#: CPU profiles' ImageNet start keeps it (their 1e-2 suits the compact net from scratch and
#: is too large for a pretrained trunk).
PAPER_TARGET_LR = Config.target_lr
#: The CPU profiles' ImageNet start trains f_theta0 with Adam lr 1e-3, chosen on how well
#: the network fits its own labelled source set (never on the paper's claims): in their
#: short schedules the paper's 1e-4 leaves the classifier near chance, and the compact
#: net's 3e-3 breaks the pretrained trunk.
IMAGENET_CPU_SOURCE_LR = 1e-3
_START_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {"scratch": dict(arch="resnet50", imagenet_init=False),
              "imagenet": dict(arch="resnet50", imagenet_init=True)},
    "classroom": {"scratch": dict(arch="compact", imagenet_init=False),
                  "imagenet": dict(arch="mobilenet_v2", imagenet_init=True,
                                   target_lr=PAPER_TARGET_LR, source_lr=IMAGENET_CPU_SOURCE_LR)},
    "smoke": {"scratch": dict(arch="compact", imagenet_init=False),
              "imagenet": dict(arch="mobilenet_v2", imagenet_init=True,
                               target_lr=PAPER_TARGET_LR, source_lr=IMAGENET_CPU_SOURCE_LR)},
}


def start_settings(profile: str, start: str) -> dict[str, Any]:
    """The settings of ``start`` (``scratch`` | ``imagenet``) in ``profile``."""
    if start not in STARTS:
        raise TCULError(f"unknown start {start!r}: use one of {', '.join(STARTS)}")
    return dict(_START_SETTINGS[profile][start])


def start_of(cfg: Config) -> str:
    """Which start ``cfg``'s f_theta0 has: ``imagenet`` (ImageNet weights) or ``scratch``."""
    return "imagenet" if cfg.imagenet_init else "scratch"


def variant_settings(variant: str, profile: str | None = None) -> dict[str, Any]:
    """Selection, centre and fine-tuning settings of a named variant (tcul | sul | pul),
    plus what it sets in ``profile`` only (:data:`VARIANT_PROFILE_SETTINGS`)."""
    if variant not in VARIANTS:
        raise TCULError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    return {**VARIANTS[variant], **VARIANT_PROFILE_SETTINGS.get((variant, str(profile)), {})}


_CHOICES = {
    "device": DEVICE_CHOICES,
    "arch": ARCHS,
    "selection": SELECTIONS,
    "centers": CENTERS,
    "finetune_from": FINETUNE_FROM,
    "finetune_loss": FINETUNE_LOSSES,
    "singletons": SINGLETON_RULES,
    "epoch": EPOCHS,
    "world_scale": SCALES,
}


def _coerce(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                low = text.lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(text)
                return low in ("1", "true", "yes", "on")
            if kind is dict:
                return json.loads(text)
            return kind(text)
        except ValueError:
            raise TCULError(
                f"bad value {value!r} for {name}: expected {kind.__name__}"
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TCULError(f"bad value {value!r} for {name}: expected {kind.__name__}")
    return value


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Apply ``{field: value}`` overrides (values may be strings, as from ``--set``)."""
    kinds = {f.name: f.type for f in dataclasses.fields(Config)}
    typemap = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in kinds:
            close = [k for k in kinds if name.lower() in k or k in name.lower()]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise TCULError(f"unknown setting {name!r}{hint}: see `python -m tcul_helpers config`")
        value = _coerce(name, value, typemap[str(kinds[name])])
        if name in _CHOICES and value not in _CHOICES[name]:
            choices = ", ".join(_CHOICES[name])
            raise TCULError(f"bad value {value!r} for {name}: use one of {choices}")
        changes[name] = value
    new = dataclasses.replace(cfg, **changes)
    validate(new)
    return new


#: How a setting is named in its range error, where the paper has a symbol for it.
_LABELS = {"n_clusters": "n_clusters (K)", "margin": "margin (m of Eq. 4)",
           "lambda_c": "lambda_c (Eq. 7)"}
#: Why a range holds, where it is not obvious.
_WHY = {"beta": " (it avoids division by zero in Eq. 6)",
        "batch_ids": " (triplets need two identities)",
        "batch_instances": " (triplets need two images of an identity)",
        "num_instances_source": " (triplets need two images of an identity)",
        "height": " (the smallest input the networks take is 16x8)",
        "width": " (the smallest input the networks take is 16x8)"}


def validate(cfg: Config) -> None:
    """Reject settings the method cannot run with, naming the setting, its range and the
    value given: every numeric field is checked against its declared :class:`Range`."""
    for f in dataclasses.fields(Config):
        valid = f.metadata.get("valid")
        value = getattr(cfg, f.name)
        if valid is not None and not valid.holds(value):
            raise TCULError(
                f"{_LABELS.get(f.name, f.name)} must be {valid}{_WHY.get(f.name, '')}, got "
                f"{value!r}: choose another value (--set {f.name}=...)"
            )


def parse_set(items: list[str]) -> dict[str, str]:
    """Parse ``["key=value", ...]`` from ``--set`` into a dict (values stay strings)."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise TCULError(f"bad --set {item!r}: write key=value, e.g. --set lambda_fr=150")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


#: settings added to Config after points were cached, with the value every older point was
#: computed with: at that value they leave the fingerprint as it was (no needless re-runs)
_ADDED_LATER = {"finetune_loss": "triplet", "epoch": "identities"}


def _declared(name: str) -> dict:
    return {f.name: f.metadata.get(name) for f in dataclasses.fields(Config)}


def deciding_settings(cfg: Config) -> dict:
    """``{setting: value}`` of the settings that decide a result's numbers (declared with
    ``decides="yes"`` on the field, see :func:`setting`)."""
    decides = _declared("decides")
    return {k: v for k, v in cfg.to_dict().items()
            if decides[k] == "yes" and not (k in _ADDED_LATER and v == _ADDED_LATER[k])}


def fingerprint(cfg: Config) -> str:
    """A short hash of :func:`deciding_settings`: the one key of "same settings" for run
    folders, source models, baselines and sweep points (paths and device do not enter it;
    each cached result also records the content key of the data it was computed on)."""
    blob = json.dumps(deciding_settings(cfg), sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def is_source_setting(name: str) -> bool:
    """Whether the setting ``name`` decides f_theta0 (declared with ``source=True``)."""
    return bool(_declared("source").get(name))


def source_settings(cfg: Config) -> dict:
    """The settings that decide f_theta0 (declared with ``source=True``) but for the data
    root, whose dataset's content key stands for it (a home moved or mounted elsewhere
    keeps its models): a source model is reused only when all of them agree."""
    d, decides = cfg.to_dict(), _declared("decides")
    return {k: d[k] for k, is_source in _declared("source").items()
            if is_source and decides[k] != "data"
            and not (k in _ADDED_LATER and d[k] == _ADDED_LATER[k])}
