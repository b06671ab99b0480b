"""The fine-tuning probe of notebook 05: a few SGD steps of Eq. 4-5, with mining held against
the truth, and its two figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tcul_helpers.data.records import ImageRecord  # noqa: E402
from tcul_helpers.figures.finetuning import plot_mined_distances, plot_probe_curves  # noqa: E402
from tcul_helpers.infra.errors import TCULError  # noqa: E402
from tcul_helpers.method.triplet_loss import batch_hard_triplet_loss  # noqa: E402
from tcul_helpers.settings.config import get_config  # noqa: E402
from tcul_helpers.teaching.finetune_probe import (  # noqa: E402
    mined_distances,
    mining_errors,
    probe_finetune,
)
from tcul_helpers.training.models import build_model  # noqa: E402


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """6 identities x 4 random 32x16 JPEGs."""
    folder = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    out = []
    for pid in range(6):
        base = rng.integers(30, 220, size=3)
        for k in range(4):
            arr = np.clip(base + rng.normal(0, 25, size=(32, 16, 3)), 0, 255).astype(np.uint8)
            path = folder / f"{pid:04d}_{k}.jpg"
            Image.fromarray(arr).save(path, quality=90)
            out.append(ImageRecord(str(path), pid, k % 2 + 1, 10 * k, pid))
    return out


def _cfg():
    return get_config("smoke", batch_ids=3, batch_instances=2, embedding_dim=16,
                      eval_batch_size=7, num_workers=0)


def test_mining_errors_counts_wrong_positives_and_negatives():
    # pseudo-labels [0,0,1,1] but image 1 is truly person B: anchor 0's only positive is wrong
    emb = torch.tensor([[0.0, 0], [1, 0], [5, 0], [5.5, 0]])
    _, mined = batch_hard_triplet_loss(emb, torch.tensor([0, 0, 1, 1]), 0.5, return_details=True)
    truth = np.array([0, 1, 1, 1])
    wp, wn = mining_errors(mined, truth)
    # anchors 0 and 1 pick each other (different people): 2 of 4 wrong positives
    assert wp == pytest.approx(0.5)
    # hardest negatives: 0 -> 2 (other person), 1 -> 2, 2 -> 1, 3 -> 1 (all person B, as are
    # anchors 1-3): 3 of 4 push one person apart
    assert wn == pytest.approx(0.75)


def test_probe_trains_a_copy_and_is_reproducible(records):
    cfg = _cfg()
    torch.manual_seed(0)
    model = build_model("compact", 6, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pseudo = np.array([r.pid % 3 for r in records])  # 3 clusters, each two people
    truth = np.array([r.pid for r in records])
    a = probe_finetune(model, records, pseudo, truth, cfg, steps=4, seed=1, progress=False)
    b = probe_finetune(model, records, pseudo, truth, cfg, steps=4, seed=1, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    assert model.classifier is not None and a.model.classifier is None
    assert len(a.loss) == len(a.wrong_positive) == len(a.wrong_negative) == 4
    assert a.loss == b.loss and a.wrong_positive == b.wrong_positive
    assert not all(torch.equal(before[k], v) for k, v in a.model.state_dict().items()
                   if k in before)
    # every cluster mixes two people: with K=2 images a label, a wrong positive is likely but
    # not certain; the rates are fractions
    assert all(0.0 <= w <= 1.0 for w in a.wrong_positive)
    assert a.num_images == len(records) and a.num_ids == 3


def test_probe_with_pure_labels_mines_no_wrong_positive(records):
    truth = np.array([r.pid for r in records])
    model = build_model("compact", 6, 16)
    res = probe_finetune(model, records, truth, truth, _cfg(), steps=3, progress=False)
    assert res.wrong_positive == [0.0, 0.0, 0.0]


def test_probe_refuses_too_few_images(records):
    truth = np.array([r.pid for r in records])
    with pytest.raises(TCULError, match="cannot fill one"):
        probe_finetune(build_model("compact", 6, 16), records[:4], truth[:4], truth[:4], _cfg(),
                       steps=2, progress=False)
    with pytest.raises(TCULError, match="steps must be"):
        probe_finetune(build_model("compact", 6, 16), records, truth, truth, _cfg(), steps=0)


def test_mined_distances_match_the_loss_on_the_same_batches(records):
    cfg = _cfg()
    model = build_model("compact", 6, 16).drop_classifier().eval()
    pseudo = np.array([r.pid // 2 for r in records])
    truth = np.array([r.pid for r in records])
    d = mined_distances(model, records, pseudo, cfg, true_ids=truth, n_batches=2)
    assert len(d["d_ap"]) == len(d["d_an"]) == len(d["index"]) == len(d["positive_is_same"])
    assert (d["d_ap"] >= 0).all() and (d["d_an"] > 0).all()
    # the mined positive shares the anchor's pseudo-label; its truth is what was recorded
    assert set(np.unique(pseudo[d["index"]])) <= set(np.unique(pseudo))
    fig = plot_mined_distances(d, d, title="t")
    assert len(fig.axes) == 2


def test_probe_curves_one_line_pair_per_selection(records):
    truth = np.array([r.pid for r in records])
    res = probe_finetune(build_model("compact", 6, 16), records, truth, truth, _cfg(), steps=6,
                         progress=False)
    fig = plot_probe_curves({"temporal": res, "none": res}, window=3)
    loss_ax, wrong_ax = fig.axes
    assert len(loss_ax.lines) == 4 and len(wrong_ax.lines) == 4  # raw + smoothed per selection
    assert wrong_ax.get_ylim() == (0.0, 1.0)
    with pytest.raises(TCULError):
        plot_probe_curves({})
