"""Algorithm 1 end to end (smoke): history, resume equality, variants and bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from tcul_helpers.data.readers import load_dataset
from tcul_helpers.experiment import pipeline
from tcul_helpers.experiment.run_store import (
    CHECKPOINT,
    load_history,
    load_trace,
    run_data_matches,
    run_settings_match,
)
from tcul_helpers.experiment.runner import TooFewSamplesWarning, adapt
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.measurement.metrics import pairwise_precision
from tcul_helpers.settings.config import get_config
from tcul_helpers.training.features import NonFiniteFeaturesError, prepare_features
from tcul_helpers.training.loops import NonFiniteLossError
from tcul_helpers.training.models import load_checkpoint

HISTORY_KEYS = {"iteration", "n_reliable", "n_pseudo_ids", "seconds", "precision", "nmi",
                "ari", "rank1", "rank5", "mAP"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("alg")
    cfg = get_config("smoke", source_root=str(base / "src"), target_root=str(base / "tgt"))
    source = pipeline.ensure_world(cfg, "source", progress=False)
    target = pipeline.ensure_world(cfg, "target", progress=False)
    model = pipeline.ensure_source_model(cfg, source, base / "source", progress=False)
    return cfg, target, model


def _final(run_dir):
    return load_history(run_dir)["iterations"]


def test_smoke_run_records_every_iteration(world, tmp_path):
    cfg, target, model = world
    res = adapt(model, target, cfg, tmp_path / "tcul", "cpu", progress=False)
    assert res.status == "complete" and len(res.history) == cfg.n_iter
    hist = load_history(tmp_path / "tcul")
    assert hist["status"] == "complete"
    assert {"rank1", "rank5", "mAP"} <= set(hist["baseline"])
    for i, rec in enumerate(hist["iterations"], 1):
        assert HISTORY_KEYS <= set(rec) and rec["iteration"] == i
        assert 0 < rec["n_reliable"] <= len(target.train)
    config = json.loads((tmp_path / "tcul" / "config.json").read_text())
    assert config["lambda_fr"] == cfg.lambda_fr and config["profile"] == "smoke"
    trace = load_trace(tmp_path / "tcul")
    assert trace["kept_1"].sum() == hist["iterations"][0]["n_reliable"]
    assert trace["centers_0"].shape == (cfg.n_clusters, cfg.embedding_dim)
    # the pseudo-label precision in the history is the one of the kept images
    truth = np.array([r.pid for r in target.train])
    assert hist["iterations"][0]["precision"] == pytest.approx(
        pairwise_precision(trace["labels_1"], truth, trace["kept_1"]))
    # the source model is not modified by the adaptation
    assert model.classifier is not None


def test_the_loop_runs_the_methods_iteration_function(world, tmp_path, monkeypatch):
    """adapt's loop is method.iteration.tcul_iteration, once per iteration, and what it
    returns is what the run records."""
    from tcul_helpers.experiment import runner

    returned = []

    def spy(*args, **kwargs):
        returned.append(runner_iteration(*args, **kwargs))
        return returned[-1]

    runner_iteration = runner.tcul_iteration
    monkeypatch.setattr(runner, "tcul_iteration", spy)
    cfg, target, model = world
    adapt(model, target, cfg, tmp_path / "spy", "cpu", progress=False)
    assert len(returned) == cfg.n_iter
    trace = load_trace(tmp_path / "spy")
    for it, out in enumerate(returned, 1):
        np.testing.assert_array_equal(trace[f"labels_{it}"], out.labels)
        np.testing.assert_array_equal(trace[f"kept_{it}"], out.kept)
        np.testing.assert_array_equal(trace[f"centers_{it}"], out.centers)


def test_resume_gives_the_same_numbers_as_an_unbroken_run(world, tmp_path):
    cfg, target, model = world
    whole = adapt(model, target, cfg, tmp_path / "whole", "cpu", progress=False)
    part = adapt(model, target, cfg, tmp_path / "broken", "cpu", progress=False, stop_after=1)
    assert part.status == "stopped" and len(part.history) == 1
    assert load_history(tmp_path / "broken")["status"] == "stopped"
    rest = adapt(model, target, cfg, tmp_path / "broken", "cpu", progress=False)
    assert rest.status == "complete"
    for a, b in zip(whole.history, rest.history, strict=True):
        for key in ("n_reliable", "n_pseudo_ids", "precision", "nmi", "mAP", "rank1", "loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
    np.testing.assert_allclose(whole.centers, rest.centers, rtol=1e-6, atol=1e-7)


def test_a_run_folder_with_other_settings_is_refused(world, tmp_path):
    cfg, target, model = world
    adapt(model, target, cfg, tmp_path / "run", "cpu", progress=False, stop_after=1)
    with pytest.raises(TCULError, match="other settings.*lambda_fr"):
        adapt(model, target, cfg.replace(lambda_fr=5), tmp_path / "run", "cpu", progress=False)
    # --fresh starts over instead
    res = adapt(model, target, cfg.replace(lambda_fr=5), tmp_path / "run", "cpu",
                progress=False, fresh=True)
    assert res.status == "complete"


def test_a_run_on_other_data_is_refused_or_started_over(world, tmp_path):
    """A world regenerated with other knobs (same settings, same folder) must not be
    answered from the old run: adapt refuses, the kit's own folders start over."""
    cfg, target, model = world
    adapt(model, target, cfg, tmp_path / "run", "cpu", progress=False, stop_after=1)
    assert run_data_matches(tmp_path / "run", target)
    other = dataclasses.replace(target, train=target.train[:-1])
    assert other.content_key() != target.content_key()
    assert not run_data_matches(tmp_path / "run", other)
    with pytest.raises(TCULError, match="other data"):
        adapt(model, other, cfg, tmp_path / "run", "cpu", progress=False)
    messages: list[str] = []
    res = pipeline.run_adaptation(cfg, model, other, tmp_path / "run", device="cpu",
                                  progress=False, restart_on_other_data=True,
                                  log=messages.append)
    assert res.status == "complete" and "computed on other data" in messages[0]
    assert run_data_matches(tmp_path / "run", other)
    assert load_history(tmp_path / "run")["baseline"]  # recomputed from iteration 0


def test_the_source_model_is_retrained_on_other_source_data(world, tmp_path):
    cfg, _, _ = world
    source = load_dataset("synthetic", cfg.source_root)
    messages: list[str] = []
    pipeline.ensure_source_model(cfg, source, tmp_path / "src", progress=False,
                                 log=messages.append)
    pipeline.ensure_source_model(cfg, source, tmp_path / "src", progress=False,
                                 log=messages.append)
    fewer = dataclasses.replace(source, train=source.train[:-1])
    pipeline.ensure_source_model(cfg, fewer, tmp_path / "src", progress=False,
                                 log=messages.append)
    assert [m.split()[0] for m in messages] == ["trained", "reusing", "trained"]


@pytest.mark.parametrize("variant", ["sul", "pul"])
def test_variants_run(world, tmp_path, variant):
    cfg, target, model = world
    res = pipeline.run_adaptation(pipeline.variant_config(cfg, variant, n_iter=1), model,
                                  target, tmp_path / variant, device="cpu", progress=False)
    assert len(res.history) == 1
    saved = json.loads((tmp_path / variant / "config.json").read_text())
    assert saved["selection"] == "similarity"
    assert saved["centers"] == ("kmeans" if variant == "pul" else "update")
    assert saved["finetune_loss"] == ("softmax" if variant == "pul" else "triplet")
    # the checkpoint is the plain embedding network (PUL's fresh classifier is not kept)
    net, _ = load_checkpoint(tmp_path / variant / CHECKPOINT)
    assert net.classifier is None and net.num_classes == 0
    rec = res.history[0]
    assert rec["n_ids_trained"] > 1 and math.isfinite(rec["loss"])
    assert rec["finetune_loss"] == saved["finetune_loss"]
    if variant == "pul":  # cross-entropy of a new head: one smoke epoch starts at ln(K')
        assert rec["loss"] == pytest.approx(math.log(rec["n_ids_trained"]), abs=0.3)


def test_a_run_of_an_older_kit_in_the_kits_own_folder_is_started_over(world, tmp_path):
    """A PUL-style run written before the softmax fine-tuning (its config.json has no
    finetune_loss: the triplet loss) is refused by adapt, started over by run_adaptation for
    the kit's own folders, and not taken as done by the demo."""
    from tcul_helpers.experiment.run_store import run_complete

    cfg, target, model = world
    cfg = cfg.replace(n_iter=1)
    new = pipeline.variant_config(cfg, "pul")
    run = tmp_path / "pul"
    adapt(model, target, new.replace(finetune_loss="triplet"), run, "cpu", progress=False)
    saved = json.loads((run / "config.json").read_text())
    del saved["finetune_loss"]
    (run / "config.json").write_text(json.dumps(saved))
    assert not run_settings_match(run, new) and not run_complete(run, new, target)
    with pytest.raises(TCULError, match="other settings.*finetune_loss"):
        adapt(model, target, new, run, "cpu", progress=False)
    messages: list[str] = []
    pipeline.run_adaptation(new, model, target, run, device="cpu", progress=False,
                            restart_on_other_data=True, log=messages.append)
    assert "computed with other settings" in messages[0]
    assert json.loads((run / "config.json").read_text())["finetune_loss"] == "softmax"
    assert run_settings_match(run, new) and run_complete(run, new, target)
    assert run_settings_match(tmp_path / "none", new)  # no run there yet


def test_no_selection_keeps_everything(world, tmp_path):
    cfg, target, model = world
    res = adapt(model, target, cfg.replace(n_iter=1, selection="none"), tmp_path / "none",
                "cpu", progress=False)
    assert res.history[0]["n_reliable"] == len(target.train)


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one_is_refused(world, k):
    cfg, _, _ = world
    with pytest.raises(TCULError, match="n_clusters"):
        cfg.replace(n_clusters=k)


def test_k_above_the_number_of_images_is_refused(world, tmp_path):
    cfg, target, model = world
    with pytest.raises(TCULError, match="K=100000 clusters for .* target images"):
        adapt(model, target, cfg.replace(n_clusters=100000), tmp_path / "r", "cpu",
              progress=False)
    assert not (tmp_path / "r" / "history.json").exists()


def test_temporal_selection_without_frame_ids_is_refused_before_any_work(world, tmp_path):
    """A dataset without frame ids (MSMT17) cannot run Eq. 3: one line naming the fix, and
    no run folder written; SUL's similarity selection runs on it."""
    cfg, target, model = world
    no_frames = dataclasses.replace(
        target, train=[dataclasses.replace(r, frame=None) for r in target.train])
    with pytest.raises(TCULError, match="needs frame ids.*selection=similarity") as err:
        adapt(model, no_frames, cfg, tmp_path / "r", "cpu", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()
    res = adapt(model, no_frames, cfg.replace(n_iter=1, selection="similarity"),
                tmp_path / "sul", "cpu", progress=False, evaluate_each=False)
    assert res.status == "complete" and len(res.history) == 1


def test_negative_lambda_fr_is_refused(world):
    cfg, _, _ = world
    with pytest.raises(TCULError, match="lambda_fr must be >= 0"):
        cfg.replace(lambda_fr=-1)


def test_temporal_selection_without_frames_says_use_similarity(world, tmp_path):
    cfg, target, model = world
    no_frames = dataclasses.replace(
        target, train=[dataclasses.replace(r, frame=None) for r in target.train])
    with pytest.raises(TCULError, match="selection=similarity"):
        adapt(model, no_frames, cfg, tmp_path / "r", "cpu", progress=False)
    res = adapt(model, no_frames, cfg.replace(selection="similarity", n_iter=1),
                tmp_path / "sim", "cpu", progress=False)
    assert res.status == "complete"


def test_too_few_samples_warns_skips_and_goes_on(world, tmp_path):
    cfg, target, model = world
    # lambda_fr = 0 keeps only the x_min_jk images; huge batches cannot be filled
    cfg = cfg.replace(lambda_fr=0, batch_ids=64, batch_instances=16)
    with pytest.warns(TooFewSamplesWarning) as caught:
        res = adapt(model, target, cfg, tmp_path / "few", "cpu", progress=False)
    said = [str(w.message) for w in caught if w.category is TooFewSamplesWarning]
    assert [m.split(":")[0] for m in said] == [f"iteration {i}" for i in range(1, cfg.n_iter + 1)]
    assert res.status == "complete" and len(res.history) == cfg.n_iter
    assert all(rec["skipped"] for rec in res.history)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(world, tmp_path):
    cfg, target, model = world
    run = tmp_path / "nan"
    adapt(model, target, cfg.replace(n_iter=2), run, "cpu", progress=False, stop_after=1)
    good, meta = load_checkpoint(run / CHECKPOINT)
    assert meta["iteration"] == 1
    before = {k: v.clone() for k, v in good.state_dict().items()}
    # an absurd learning rate makes the second iteration diverge
    blown = cfg.replace(n_iter=2, target_lr=1e30)
    with pytest.raises((NonFiniteLossError, NonFiniteFeaturesError)):
        _resume_with(model, target, blown, run)
    hist = load_history(run)
    assert hist["status"] == "diverged" and len(hist["iterations"]) == 1
    after, meta = load_checkpoint(run / CHECKPOINT)
    assert meta["iteration"] == 1
    for k, v in after.state_dict().items():
        assert np.array_equal(v.numpy(), before[k].numpy()), k


def _resume_with(model, target, cfg, run):
    """Resume ``run`` with ``cfg`` although it differs (edit the saved config first)."""
    cfg.save(run / "config.json")
    return adapt(model, target, cfg, run, "cpu", progress=False)


def test_prepare_features_normalises_once_and_rejects_nan(world):
    cfg, _, _ = world
    z = np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(prepare_features(z, cfg.l2_normalize), [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(prepare_features(z, l2_normalize=False), z)
    with pytest.raises(NonFiniteFeaturesError, match="NaN"):
        prepare_features(np.array([[np.nan, 1.0]]), cfg.l2_normalize)
