"""Training loops, feature extraction, device choice and seeding on tiny generated JPEGs."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from tcul_helpers.data.records import ImageRecord
from tcul_helpers.infra.device import make_generator, resolve_device, seed_everything
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.settings.config import get_config
from tcul_helpers.training import loops as training
from tcul_helpers.training.features import extract_features
from tcul_helpers.training.image_dataset import ImageCache
from tcul_helpers.training.loops import (
    NonFiniteLossError,
    TooFewSamplesError,
    finetune,
    train_source,
)
from tcul_helpers.training.models import build_model
from tcul_helpers.training.transforms import build_transforms

N_IDS, PER_ID = 6, 4


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """6 identities x 4 random 32x16 JPEGs (a base colour per identity plus noise)."""
    folder = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    out = []
    for pid in range(N_IDS):
        base = rng.integers(30, 220, size=3)
        for k in range(PER_ID):
            arr = np.clip(base + rng.normal(0, 25, size=(32, 16, 3)), 0, 255).astype(np.uint8)
            path = folder / f"{pid:04d}_c{k % 2 + 1}_f{k:07d}.jpg"
            Image.fromarray(arr).save(path, quality=90)
            out.append(ImageRecord(str(path), pid, k % 2 + 1, 10 * k, pid))
    return out


def tiny_cfg(**kw):
    base = dict(batch_ids=3, batch_instances=2, num_instances_source=2, source_epochs=1,
                target_epochs=1, embedding_dim=16, eval_batch_size=7, num_workers=0)
    base.update(kw)
    return get_config("smoke", **base)


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_source_one_epoch(records):
    cfg = tiny_cfg()
    logged = []
    model, hist = train_source(records, cfg, "cpu", progress=False, log=logged.append)
    assert not model.training and model.num_classes == N_IDS
    assert hist["num_classes"] == N_IDS and hist["pids"] == list(range(N_IDS))
    assert hist["batches_per_epoch"] == math.ceil(N_IDS / cfg.batch_ids)
    for key in ("loss", "ce", "triplet", "accuracy", "images_per_s", "active_fraction"):
        assert len(hist[key]) == 1 and math.isfinite(hist[key][0])
    assert hist["loss"][0] == pytest.approx(hist["ce"][0] + hist["triplet"][0], rel=1e-5)
    assert len(logged) == 1 and logged[0]["stage"] == "source training"


def test_train_source_is_deterministic_for_a_seed(records):
    cfg = tiny_cfg(source_epochs=2)
    a, ha = train_source(records, cfg, "cpu", progress=False)
    b, hb = train_source(records, cfg, "cpu", progress=False)
    assert states_equal(a, b) and ha["loss"] == hb["loss"]
    c, _ = train_source(records, cfg, "cpu", progress=False, seed=cfg.seed + 1)
    assert not states_equal(a, c)


def test_finetune_one_epoch_drops_classifier(records):
    cfg = tiny_cfg()
    model = build_model("compact", N_IDS, cfg.embedding_dim)
    pseudo = np.array([r.pid // 2 for r in records])  # 3 pseudo-ids of 8 images
    stats = finetune(model, records, pseudo, cfg, "cpu", progress=False)
    assert model.classifier is None and not model.training
    assert len(stats["epoch_loss"]) == 1 and math.isfinite(stats["loss"])
    assert stats["batches"] == 1 and stats["images"] == 6
    assert stats["num_images"] == len(records) and stats["num_ids"] == 3
    assert stats["dropped_singletons"] == 0 and stats["images_per_s"] > 0
    assert (stats["P"], stats["M"]) == (3, 2)


def test_both_loops_count_an_epoch_as_the_setting_says(records):
    """3 pseudo-ids of 8 images at P x M = 3 x 2: an "identities" epoch is 1 batch, an
    "images" epoch 4 (each id in 4 groups of 2); the source loop counts the same way."""
    pseudo = np.array([r.pid // 2 for r in records])
    for epoch, batches in (("identities", 1), ("images", 4)):
        cfg = tiny_cfg(epoch=epoch)
        model = build_model("compact", N_IDS, cfg.embedding_dim)
        assert finetune(model, records, pseudo, cfg, "cpu", progress=False)["batches"] == batches
    _, hist = train_source(records, tiny_cfg(epoch="images"), "cpu", progress=False)
    _, hist_ids = train_source(records, tiny_cfg(epoch="identities"), "cpu", progress=False)
    assert hist["batches_per_epoch"] > hist_ids["batches_per_epoch"]


def test_finetune_is_deterministic_and_changes_the_weights(records):
    cfg = tiny_cfg(target_epochs=2)
    pseudo = np.array([r.pid for r in records])
    torch.manual_seed(0)
    start = build_model("compact", 0, cfg.embedding_dim)
    a = build_model("compact", 0, cfg.embedding_dim)
    b = build_model("compact", 0, cfg.embedding_dim)
    a.load_state_dict(start.state_dict())
    b.load_state_dict(start.state_dict())
    sa = finetune(a, records, pseudo, cfg, "cpu", progress=False)
    sb = finetune(b, records, pseudo, cfg, "cpu", progress=False)
    assert states_equal(a, b) and sa["epoch_loss"] == sb["epoch_loss"]
    assert not states_equal(a, start)


def test_finetune_singleton_rules(records):
    # ids 0-3 have 4 images each; the 8 images of ids 4-5 become 8 singleton pseudo-ids
    pseudo = np.array([r.pid if r.pid < 4 else 100 + i for i, r in enumerate(records)])
    model = build_model("compact", 0, 16)
    drop = finetune(model, records, pseudo, tiny_cfg(singletons="drop"), "cpu", progress=False)
    assert drop["num_images"] == 16 and drop["dropped_singletons"] == 8
    assert drop["num_ids"] == 4
    keep = finetune(model, records, pseudo, tiny_cfg(singletons="replace"), "cpu",
                    progress=False)
    assert keep["num_images"] == 24 and keep["num_ids"] == 12


def test_too_few_samples(records):
    cfg = tiny_cfg()
    model = build_model("compact", 0, 16)
    all_single = np.arange(len(records))
    with pytest.raises(TooFewSamplesError, match="0 images"):
        finetune(model, records, all_single, cfg, "cpu", progress=False)
    with pytest.raises(TooFewSamplesError, match="2 identities"):
        finetune(model, records, np.zeros(len(records), dtype=int), cfg, "cpu", progress=False)
    with pytest.raises(TooFewSamplesError):  # 4 images < one 3x2 batch
        finetune(model, records[:4], np.array([0, 0, 1, 1]), cfg, "cpu", progress=False)
    with pytest.raises(TooFewSamplesError):
        train_source(records[:5], cfg, "cpu", progress=False)
    assert issubclass(TooFewSamplesError, TCULError)
    with pytest.raises(TCULError, match="one label per record"):
        finetune(model, records, [0, 1], cfg, "cpu", progress=False)


def test_non_finite_loss_is_raised(records):
    pseudo = np.array([r.pid for r in records])
    model = build_model("compact", 0, 16)
    with pytest.raises(NonFiniteLossError, match="diverged"):
        finetune(model, records, pseudo, tiny_cfg(target_lr=1e30, target_epochs=3), "cpu",
                 progress=False)
    poisoned = build_model("compact", N_IDS, 16)
    with torch.no_grad():
        poisoned.embedding.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1"):
        finetune(poisoned, records, pseudo, tiny_cfg(), "cpu", progress=False)
    assert issubclass(NonFiniteLossError, TCULError)


def test_extract_features_order_shape_and_values(records):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model = build_model("compact", N_IDS, cfg.embedding_dim)
    model.train()
    model(torch.randn(8, 3, cfg.height, cfg.width))  # non-trivial BN running statistics
    feats = extract_features(model, records, cfg, "cpu", progress=False)
    assert feats.shape == (len(records), cfg.embedding_dim) and feats.dtype == np.float32
    assert model.training  # mode restored
    # reference: one image at a time through the eval transform
    t = build_transforms(cfg)
    model.eval()
    with torch.no_grad():
        for i in (0, 7, len(records) - 1):
            with Image.open(records[i].path) as img:
                x = t(img.convert("RGB")).unsqueeze(0)
            assert np.allclose(feats[i], model(x)[0].numpy(), atol=1e-5)
    rev = extract_features(model, records[::-1], cfg, "cpu", progress=False)
    assert np.allclose(rev[::-1], feats, atol=1e-5)
    cache = ImageCache(cfg.height, cfg.width)
    cached = extract_features(model, records, cfg, "cpu", progress=False, image_cache=cache)
    assert len(cache) == len(records) and np.array_equal(cached, feats)
    empty = extract_features(model, [], cfg, "cpu", progress=False)
    assert empty.shape == (0, cfg.embedding_dim)
    with pytest.raises(TCULError, match="cache"):
        extract_features(model, records, cfg, "cpu", progress=False,
                         image_cache=ImageCache(64, 32))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    assert resolve_device(torch.device("cpu")).type == "cpu"
    with pytest.raises(TCULError, match="auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TCULError, match="CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto") == torch.device("cpu")


def test_seed_everything_repeats_all_generators():
    seed_everything(42)
    first = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(42)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])
    assert torch.equal(torch.rand(2, generator=make_generator(3)),
                       torch.rand(2, generator=make_generator(3)))
    with pytest.raises(TCULError, match="integer"):
        seed_everything("7")


# --------------------------------------------------------------- PUL-style softmax fine-tuning
def _heads(monkeypatch) -> list[tuple[training.PseudoLabelClassifier, torch.Tensor]]:
    """Record every classifier finetune builds, with its weights as first drawn."""
    made: list[tuple[training.PseudoLabelClassifier, torch.Tensor]] = []

    class Spy(training.PseudoLabelClassifier):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append((self, self.fc.weight.detach().clone()))

    monkeypatch.setattr(training, "PseudoLabelClassifier", Spy)
    return made


def test_softmax_finetune_learns_the_pseudo_labels_with_a_fresh_head(records, monkeypatch):
    made = _heads(monkeypatch)
    cfg = tiny_cfg(finetune_loss="softmax", target_epochs=15, target_lr=0.05, batch_ids=6,
                   batch_instances=4)  # one batch of all 24 images per epoch
    pseudo = np.array([10 * r.pid + 3 for r in records])  # 6 clusters, ids 3..53 (gaps)
    torch.manual_seed(0)
    model = build_model("compact", N_IDS, cfg.embedding_dim)  # a source classifier
    stats = finetune(model, records, pseudo, cfg, "cpu", progress=False)
    # one new head over the 6 kept clusters (relabelled 0..5, not 54 outputs), dropout 0.5
    assert len(made) == 1
    head, first = made[0]
    assert head.num_classes == 6 == stats["num_classes"] == stats["num_ids"]
    assert head.fc.in_features == cfg.embedding_dim and head.dropout.p == 0.5
    assert float(first.std()) == pytest.approx(0.001, rel=0.3)
    assert torch.count_nonzero(head.fc.bias) > 0  # it was trained (bias starts at 0)
    # a fresh head predicts nothing yet: the first epoch starts near ln(6); then it learns
    assert stats["finetune_loss"] == "softmax" and stats["active_fraction"] == []
    losses = stats["epoch_loss"]
    assert abs(losses[0] - math.log(6)) < 0.35
    assert losses[-1] < 0.5 * losses[0] and stats["accuracy"][-1] > stats["accuracy"][0]
    # the network comes back bare: no classifier, no head parameters, eval mode
    assert model.classifier is None and not model.training
    assert model.state_dict().keys() == build_model("compact", 0, 16).state_dict().keys()


def test_softmax_head_starts_near_chance_at_a_tiny_lr(records):
    """With (almost) no update the loss is the fresh head's: ln(K') for K' kept clusters
    (lr 0 itself is refused by the range check)."""
    cfg = tiny_cfg(finetune_loss="softmax", target_lr=1e-12, target_epochs=1)
    model = build_model("compact", 0, cfg.embedding_dim)
    pseudo = np.array([r.pid // 2 for r in records])  # 3 clusters of 8 images
    stats = finetune(model, records, pseudo, cfg, "cpu", progress=False)
    assert stats["loss"] == pytest.approx(math.log(3), abs=0.02)


def test_each_softmax_call_builds_a_new_head(records, monkeypatch):
    made = _heads(monkeypatch)
    cfg = tiny_cfg(finetune_loss="softmax", target_epochs=3, target_lr=0.05)
    model = build_model("compact", 0, cfg.embedding_dim)
    finetune(model, records, np.array([r.pid for r in records]), cfg, "cpu", progress=False)
    finetune(model, records, np.array([r.pid // 2 for r in records]), cfg, "cpu",
             progress=False, seed=cfg.seed + 1)
    (h1, _), (h2, w2) = made
    assert h1 is not h2 and (h1.num_classes, h2.num_classes) == (6, 3)
    # the second head is newly drawn (std 0.001), not the first one's trained weights
    assert float(w2.std()) == pytest.approx(0.001, rel=0.3)
    assert not torch.equal(h2.fc.weight, w2)
    assert model.classifier is None


def test_softmax_finetune_is_deterministic_and_differs_from_triplet(records):
    pseudo = np.array([r.pid for r in records])
    torch.manual_seed(0)
    start = build_model("compact", 0, 16)
    runs = {}
    for name, loss in (("a", "softmax"), ("b", "softmax"), ("t", "triplet")):
        m = build_model("compact", 0, 16)
        m.load_state_dict(start.state_dict())
        cfg = tiny_cfg(finetune_loss=loss, target_epochs=2)
        runs[name] = (m, finetune(m, records, pseudo, cfg, "cpu", progress=False))
    (a, sa), (b, sb), (t, st) = runs["a"], runs["b"], runs["t"]
    assert states_equal(a, b) and sa["epoch_loss"] == sb["epoch_loss"]
    assert not states_equal(a, start) and not states_equal(a, t)
    assert st["finetune_loss"] == "triplet" and len(st["active_fraction"]) == 2
    assert "num_classes" not in st and "accuracy" not in st


def test_softmax_finetune_divergence_is_reported(records):
    with pytest.raises(NonFiniteLossError, match="diverged"):
        finetune(build_model("compact", 0, 16), records, np.array([r.pid for r in records]),
                 tiny_cfg(finetune_loss="softmax", target_lr=1e30, target_epochs=3), "cpu",
                 progress=False)


def test_variants_choose_their_fine_tuning_loss():
    from tcul_helpers.experiment.pipeline import variant_config

    for profile in ("smoke", "classroom", "paper"):
        assert get_config(profile).finetune_loss == "triplet"
        for variant, loss in (("tcul", "triplet"), ("sul", "triplet"), ("pul", "softmax")):
            assert get_config(profile, variant=variant).finetune_loss == loss
            # a variant sets its loss whatever configuration it is applied to
            other = get_config(profile, variant="pul" if variant != "pul" else "tcul")
            assert variant_config(other, variant).finetune_loss == loss
    with pytest.raises(TCULError, match="triplet, softmax"):
        get_config("smoke", finetune_loss="arcface")


def test_pul_style_takes_publics_pul_lr_in_the_paper_profile_only():
    from tcul_helpers.experiment.pipeline import variant_config

    paper = get_config("paper")
    assert get_config("paper", variant="pul").target_lr == 1e-3  # PUL/unsupervised.py
    assert variant_config(paper, "pul").target_lr == 1e-3  # the demo / notebooks path
    for variant in ("tcul", "sul"):
        assert get_config("paper", variant=variant).target_lr == paper.target_lr == 5e-4
    for profile in ("smoke", "classroom"):  # the CPU profiles keep their own lr
        own = get_config(profile).target_lr
        assert get_config(profile, variant="pul").target_lr == own
        assert variant_config(get_config(profile), "pul").target_lr == own
    # an explicit setting (``--set target_lr=...``) comes after the variant and wins
    assert get_config("paper", variant="pul", target_lr=2e-3).target_lr == 2e-3


def test_a_setting_given_by_hand_wins_over_the_variants_own():
    """The variant is applied once, before the user's overrides (get_config and
    variant_config agree), so ``selection=none`` under TCUL really runs without selection."""
    from tcul_helpers.experiment.pipeline import variant_config

    base = get_config("smoke")
    assert variant_config(base, "tcul", selection="none").selection == "none"
    assert get_config("smoke", variant="tcul", selection="none").selection == "none"
    assert variant_config(base, "sul") == get_config("smoke", variant="sul")


def test_overflow_guard_float32_raises_at_once():
    guard = training.OverflowGuard(amp=False, stage="fine-tuning")
    assert guard.check(1.5, 0, 0) is False
    with pytest.raises(NonFiniteLossError, match="fine-tuning: the loss became nan at epoch 1"):
        guard.check(float("nan"), 0, 3)


def test_overflow_guard_float16_skips_then_stops_when_it_persists():
    guard = training.OverflowGuard(amp=True, stage="source training", limit=3)
    assert guard.check(float("inf"), 0, 0) is True  # an overflow: skip the batch
    assert guard.check(0.7, 0, 1) is False  # a good batch resets the run of skips
    assert guard.check(float("inf"), 0, 2) and guard.check(float("inf"), 0, 3)
    with pytest.raises(NonFiniteLossError, match="in 3 float16 batches in a row"):
        guard.check(float("inf"), 0, 4)
    assert guard.skipped == 3
    guard.after_step(65536.0, 32768.0)  # GradScaler lowered its scale: it skipped a step
    guard.after_step(32768.0, 32768.0)
    assert guard.skipped == 4


def test_epoch_history_counts_amp_skips(records):
    cfg = tiny_cfg()
    _, hist = train_source(records, cfg, "cpu", progress=False)
    assert hist["amp_skipped_steps"] == [0]  # float32 on a CPU: never
