"""Transforms (shapes, normalisation, augmentation) and the image dataset (labels, cache)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from tcul_helpers.data.records import ImageRecord
from tcul_helpers.infra.device import make_generator
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.settings.config import get_config
from tcul_helpers.training.image_dataset import ImageCache, ImageDataset, load_image, resolve_cache
from tcul_helpers.training.transforms import (
    ERASE_RATIO,
    ERASE_SCALE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    augment_batch,
    build_transforms,
    erasing_boxes,
    normalize_batch,
)


def write_jpegs(folder, n_ids: int, per_id: int, size=(40, 20), seed: int = 0):
    """Random JPEG records: identity i has a base colour plus noise."""
    rng = np.random.default_rng(seed)
    records = []
    for pid in range(n_ids):
        base = rng.integers(30, 220, size=3)
        for k in range(per_id):
            arr = np.clip(base + rng.normal(0, 25, size=(*size, 3)), 0, 255).astype(np.uint8)
            path = folder / f"{pid:04d}_c{k % 2 + 1}_f{k:07d}.jpg"
            Image.fromarray(arr).save(path, quality=90)
            records.append(ImageRecord(str(path), pid, k % 2 + 1, k, pid))
    return records


def cfg(**kw):
    return get_config("smoke", **kw)


def test_eval_transform_shape_and_normalisation_of_a_constant_image():
    c = cfg(height=32, width=16)
    rgb = (200, 100, 50)
    img = Image.new("RGB", (10, 20), rgb)  # PIL size is (width, height)
    out = build_transforms(c)(img)
    assert out.shape == (3, 32, 16) and out.dtype == torch.float32
    expected = [(v / 255 - m) / s for v, m, s in zip(rgb, IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    for ch in range(3):
        assert torch.allclose(out[ch], torch.full((32, 16), expected[ch]), atol=1e-5)


def test_eval_transform_accepts_uint8_tensor_like_pil():
    c = cfg(height=32, width=16)
    arr = np.random.default_rng(1).integers(0, 256, size=(32, 16, 3), dtype=np.uint8)
    from_pil = build_transforms(c)(Image.fromarray(arr))
    from_tensor = build_transforms(c)(torch.from_numpy(arr).permute(2, 0, 1))
    assert torch.equal(from_pil, from_tensor)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    manual = (torch.from_numpy(arr).permute(2, 0, 1).float() / 255 - mean) / std
    assert torch.allclose(from_tensor, manual, atol=1e-6)


def test_normalize_batch_equals_the_per_image_transform():
    """A batch of resized uint8 images normalised at once (the loaders' path, channels-last
    kept) gives the per-image transform's tensors up to float rounding."""
    c = cfg(height=32, width=16)
    rng = np.random.default_rng(2)
    imgs = [Image.fromarray(rng.integers(0, 256, size=(40, 20, 3), dtype=np.uint8))
            for _ in range(6)]
    one_by_one = torch.stack([build_transforms(c)(im) for im in imgs])
    raw = torch.stack([build_transforms(c, normalize=False)(im) for im in imgs])
    assert raw.dtype == torch.uint8 and raw.shape == (6, 3, 32, 16)
    batch = normalize_batch(raw.contiguous(memory_format=torch.channels_last))
    assert batch.dtype == torch.float32 and batch.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(batch, one_by_one, atol=1e-5, rtol=1e-5)


def normalized_batch(n=8, h=32, w=16, seed=2):
    raw = torch.from_numpy(np.random.default_rng(seed).integers(1, 256, size=(n, 3, h, w),
                                                                dtype=np.uint8))
    return normalize_batch(raw)


def test_augment_batch_flips_and_erases_each_image_alone():
    x = normalized_batch()
    flipped = augment_batch(x, cfg(flip=1.0, random_erasing=0.0), make_generator(0))
    assert torch.equal(flipped, x.flip(-1))
    assert torch.equal(augment_batch(x, cfg(flip=0.0, random_erasing=0.0), make_generator(0)), x)
    erased = augment_batch(x, cfg(flip=0.0, random_erasing=1.0), make_generator(0))
    for before, after in zip(x, erased, strict=True):
        changed = after != before
        # one box, through all three channels, set to 0 (the mean after normalisation)
        mask = changed.any(0)
        assert mask.any() and (changed == mask).all() and (after[changed] == 0).all()
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        assert mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    half = augment_batch(normalized_batch(n=400), cfg(flip=0.5, random_erasing=0.0),
                         make_generator(0))
    share = (half != normalized_batch(n=400)).flatten(1).any(1).float().mean()
    assert 0.4 < share < 0.6  # about half of the images flipped


def test_augment_batch_is_seeded_by_its_generator():
    x, c = normalized_batch(), cfg()
    a = augment_batch(x, c, make_generator(5))
    assert torch.equal(a, augment_batch(x, c, make_generator(5)))
    assert not torch.equal(a, augment_batch(x, c, make_generator(6)))


def test_random_erasing_draws_the_boxes_torchvisions_does():
    """Each image's box follows torchvision's ``RandomErasing`` (Zhong et al.): the same
    share of images erased, and the same distribution of box height, width and area, over
    4,000 images of 64x32 at p = 0.5 (within 4 standard errors)."""
    n, h, w, p = 4000, 64, 32, 0.5
    top, left, box_h, box_w = erasing_boxes(n, h, w, p, make_generator(0))
    assert ((top >= 0) & (left >= 0) & (top + box_h <= h) & (left + box_w <= w)).all()
    ours = {"erased": (box_h > 0).double(), "height": box_h.double(), "width": box_w.double(),
            "area": (box_h * box_w).double()}
    torch.manual_seed(0)
    eraser = v2.RandomErasing(p=p, scale=ERASE_SCALE, ratio=ERASE_RATIO, value=0)
    ones = torch.ones(1, h, w)
    masks = torch.stack([eraser(ones)[0] == 0 for _ in range(n)])
    hs, ws = masks.any(2).sum(1), masks.any(1).sum(1)
    theirs = {"erased": (hs > 0).double(), "height": hs.double(), "width": ws.double(),
              "area": masks.flatten(1).sum(1).double()}
    for key, ours_values in ours.items():
        se = ((ours_values.var() + theirs[key].var()) / n).sqrt()
        assert abs(ours_values.mean() - theirs[key].mean()) < 4 * se, key


def test_bad_probability_rejected():
    import dataclasses

    with pytest.raises(TCULError, match=r"flip must be in \[0, 1\]"):
        get_config("smoke", flip=1.5)  # the configuration's range check
    bad = dataclasses.replace(get_config("smoke"), flip=1.5)  # a config built around it
    with pytest.raises(TCULError, match="flip"):
        augment_batch(normalized_batch(), bad, make_generator(0))


def test_dataset_labels_pseudo_labels_and_index(tmp_path):
    recs = write_jpegs(tmp_path, n_ids=3, per_id=2)
    t = build_transforms(cfg(height=32, width=16))
    ds = ImageDataset(recs, t)
    assert len(ds) == 6
    img, label, idx = ds[3]
    assert img.shape == (3, 32, 16) and label == recs[3].pid and idx == 3
    assert type(img) is torch.Tensor
    pseudo = np.array([5, 5, 7, 9, 9, 0])
    ds2 = ImageDataset(recs, t, labels=pseudo)
    assert [ds2[i][1] for i in range(6)] == pseudo.tolist()
    with pytest.raises(TCULError, match="one label per record"):
        ImageDataset(recs, t, labels=[1, 2])
    with pytest.raises(TCULError, match="integers"):
        ImageDataset(recs, t, labels=[0.5] * 6)


def test_cache_gives_same_pixels_and_is_shared(tmp_path):
    recs = write_jpegs(tmp_path, n_ids=2, per_id=3, size=(64, 32))
    t = build_transforms(cfg(height=32, width=16))
    plain = ImageDataset(recs, t)
    cached = ImageDataset(recs, t, cache=True, image_size=(32, 16))
    assert cached.cache is not None and len(cached.cache) == 6
    assert cached.cache.nbytes == 6 * 3 * 32 * 16
    for i in range(6):
        raw = cached.cache.get(recs[i].path)
        assert raw.dtype == torch.uint8 and raw.shape == (3, 32, 16)
        assert torch.equal(plain[i][0], cached[i][0])
    shared = ImageCache(32, 16)
    ImageDataset(recs[:3], t, cache=shared)
    assert len(shared) == 3
    ImageDataset(recs, t, cache=shared)
    assert len(shared) == 6
    # no transform: the cached uint8 image itself
    raw_ds = ImageDataset(recs, None, cache=shared)
    assert torch.equal(raw_ds[0][0], shared.get(recs[0].path))
    with pytest.raises(TCULError, match="image_size"):
        ImageDataset(recs, t, cache=True)


def test_resolve_cache_rules():
    given = ImageCache(32, 16)
    assert resolve_cache(given, 10, 32, 16) is given
    with pytest.raises(TCULError, match="32x16"):
        resolve_cache(given, 10, 64, 32)
    assert resolve_cache(False, 10, 32, 16) is None
    assert isinstance(resolve_cache(True, 10, 32, 16), ImageCache)
    assert isinstance(resolve_cache(None, 1000, 64, 32), ImageCache)
    assert resolve_cache(None, 10**6, 256, 128) is None


def test_unreadable_and_missing_images_name_the_path(tmp_path):
    bad = tmp_path / "0001_c1_f0000001.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(TCULError, match="0001_c1_f0000001.jpg"):
        load_image(str(bad))
    rec = ImageRecord(str(bad), 1, 1, 1, 1)
    ds = ImageDataset([rec], build_transforms(cfg()))
    with pytest.raises(TCULError, match=str(bad)):
        ds[0]
    with pytest.raises(TCULError, match="not found"):
        load_image(str(tmp_path / "missing.jpg"))
    with pytest.raises(TCULError, match="0001_c1_f0000001.jpg"):
        ImageDataset([rec], None, cache=True, image_size=(32, 16))


def test_auto_cache_only_without_loader_workers():
    from tcul_helpers.training.image_dataset import ImageCache, resolve_cache

    assert isinstance(resolve_cache(None, 100, 64, 32), ImageCache)  # CPU profiles: cache
    assert resolve_cache(None, 100, 64, 32, workers=4) is None  # GPU: workers decode
    given = ImageCache(64, 32)
    assert resolve_cache(given, 100, 64, 32, workers=4) is given  # an explicit cache is used
    assert resolve_cache(None, 10**6, 256, 128) is None  # too large for memory
