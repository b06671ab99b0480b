"""The GPU path: ResNet-50 at 256x128 with float16 AMP and channels-last, through the kit's
own training loops, feature extraction and a two-iteration ``adapt`` on a small synthetic
world. Skipped (with the reason) on a machine without CUDA; ``benchmarks/bench_gpu.py`` runs
them on the first GPU and prints their result beside its throughput table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here: the GPU path is tested by "
                                       "benchmarks/bench_gpu.py on a GPU machine")


@pytest.fixture(scope="module")
def gpu_setup(tmp_path_factory):
    from tcul_helpers.experiment.pipeline import ensure_world
    from tcul_helpers.settings.config import get_config

    root = tmp_path_factory.mktemp("gpu")
    cfg = get_config("smoke", arch="resnet50", height=256, width=128, embedding_dim=2048,
                     device="cuda", amp=True, batch_ids=4, batch_instances=4,
                     num_instances_source=4, num_workers=2, eval_batch_size=64,
                     source_root=str(root / "src"), target_root=str(root / "tgt"))
    return cfg, ensure_world(cfg, "source", progress=False), ensure_world(cfg, "target",
                                                                          progress=False), root


def _channels_last(model: torch.nn.Module) -> bool:
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    return conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_train_source_resnet50_amp_channels_last(gpu_setup):
    from tcul_helpers.training.loops import train_source

    cfg, source, _target, _root = gpu_setup
    # GradScaler starts at a scale of 2**16 and halves it at every overflow: on an H200 the
    # first 6-8 ResNet-50 steps are skipped that way (measured), which is a whole smoke
    # epoch; four epochs leave steps that really train
    model, hist = train_source(source.train, cfg.replace(source_epochs=4), "cuda",
                               progress=False)
    assert next(model.parameters()).is_cuda and _channels_last(model)
    total = 4 * hist["batches_per_epoch"]
    assert all(np.isfinite(hist["loss"])) and hist["amp_skipped_steps"][-1] < total / 2
    assert hist["loss"][-1] < hist["loss"][0]  # the steps taken trained it


def test_finetune_and_extract_on_cuda(gpu_setup):
    from tcul_helpers.training.features import extract_features
    from tcul_helpers.training.loops import finetune
    from tcul_helpers.training.models import build_model, model_to_device

    cfg, _source, target, _root = gpu_setup
    model = model_to_device(build_model("resnet50", 10, 2048), "cuda")
    z0 = extract_features(model, target.train, cfg, "cuda", progress=False)
    assert z0.shape == (len(target.train), 2048) and np.isfinite(z0).all()
    labels = np.array([r.pid for r in target.train]) % 6
    stats = finetune(model, target.train, labels, cfg, "cuda", progress=False)
    assert np.isfinite(stats["loss"]) and _channels_last(model)
    z1 = extract_features(model, target.train, cfg, "cuda", progress=False)
    assert not np.allclose(z0, z1)


def test_two_iterations_of_adapt_on_cuda(gpu_setup):
    from tcul_helpers.experiment.run_store import load_history
    from tcul_helpers.experiment.runner import adapt
    from tcul_helpers.training.models import build_model

    cfg, _source, target, root = gpu_setup
    source_model = build_model("resnet50", 10, 2048)
    res = adapt(source_model, target, cfg.replace(n_iter=2), root / "run", "cuda",
                progress=False)
    hist = load_history(root / "run")
    assert res.status == "complete" and len(hist["iterations"]) == 2
    assert all(np.isfinite(it["mAP"]) for it in hist["iterations"])
