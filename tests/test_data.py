"""Data layer: IDX reading and validation, dataset sources, deterministic splits, loaders."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
import train_helpers

from lets_core.data import (FASHION_MNIST_INSTALL, DatasetError, DatasetNotFoundError, ImageDataset, eval_loader,
                            fashion_mnist_available, load_fashion_mnist, load_image_folder, load_splits, read_idx,
                            set_epoch, train_loader, write_idx)


def fake_fashion_mnist(folder):
    return train_helpers.fake_fashion_mnist(folder, n_train=120, n_test=40)


def test_idx_roundtrip_gzip_and_raw(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.gz", "a"):
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, array), expect_ndim=3), array)


def test_idx_truncated_gzip_is_detected(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8) + 7)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="corrupted or truncated"):
        read_idx(path)


def test_idx_payload_shorter_or_longer_than_header(tmp_path):
    good = bytes([0, 0, 8, 2]) + (3).to_bytes(4, "big") + (4).to_bytes(4, "big")
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as f:
        f.write(good + bytes(11))  # 12 values declared
    with pytest.raises(DatasetError, match=r"truncated: header declares shape \(3, 4\)"):
        read_idx(short)
    long = tmp_path / "long"
    long.write_bytes(good + bytes(13))
    with pytest.raises(DatasetError, match="longer than its header"):
        read_idx(long)


def test_idx_wrong_magic_and_rank(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x89PNG" + bytes(20))
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(bad)
    labels = write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="1-D array; 3-D was expected"):
        read_idx(labels, expect_ndim=3)


def test_missing_fashion_mnist_names_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LETS_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    assert not fashion_mnist_available()
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist("train")
    assert FASHION_MNIST_INSTALL in str(info.value)
    assert "nowhere" in str(info.value)
    with pytest.raises(DatasetError, match="'train' or 'test'"):
        load_fashion_mnist("validation", tmp_path)


def test_image_label_count_mismatch(tmp_path):
    folder = fake_fashion_mnist(tmp_path / "fm")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(39, np.uint8))
    with pytest.raises(DatasetError, match="40 images but .* 39 labels"):
        load_fashion_mnist("test", folder)


def test_float_idx_images_are_named(tmp_path):
    """A float32 IDX image file reached torch as a big-endian array and failed on its byte order."""
    folder = fake_fashion_mnist(tmp_path / "fm")
    values = np.zeros((32, 28, 28), dtype=">f4")
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 0x0D, 3]) + b"".join(d.to_bytes(4, "big") for d in values.shape) + values.tobytes())
    with pytest.raises(DatasetError, match=r"holds float32 values; Fashion-MNIST images are uint8 \(IDX type 0x08\)"):
        load_fashion_mnist("test", folder)


def test_env_var_and_path_argument(tmp_path, monkeypatch):
    folder = fake_fashion_mnist(tmp_path / "fm")
    monkeypatch.setenv("LETS_FASHION_MNIST_DIR", str(folder))
    a = load_splits("fashion-mnist", val_size=20, seed=3)
    monkeypatch.delenv("LETS_FASHION_MNIST_DIR")
    b = load_splits("fashion-mnist", folder, val_size=20, seed=3)
    assert (len(a.train), len(a.val), len(a.test)) == (100, 20, 40)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    assert a.train.images.shape[1:] == (1, 28, 28) and a.num_classes == 10


def test_splits_are_deterministic_per_seed(tmp_path):
    folder = fake_fashion_mnist(tmp_path / "fm")
    a, b = (load_splits("fashion-mnist", folder, val_size=0.25, train_limit=50, test_limit=10, seed=1)
            for _ in range(2))
    c = load_splits("fashion-mnist", folder, val_size=0.25, train_limit=50, test_limit=10, seed=2)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.images, c.train.images)
    assert (len(a.train), len(a.val), len(a.test)) == (50, 30, 10)
    # normalization statistics come from the training split
    x = a.train.images.double() / 255
    assert a.mean[0] == pytest.approx(x.mean().item()) and a.std[0] == pytest.approx(x.std().item())


def test_bad_split_sizes(tmp_path):
    folder = fake_fashion_mnist(tmp_path / "fm")
    with pytest.raises(DatasetError, match="val_size=1.5"):
        load_splits("fashion-mnist", folder, val_size=1.5)
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'"):
        load_splits("cifar")


def test_digits_resized_and_split():
    s = load_splits("digits", image_size=28, val_size=0.1, seed=0)
    assert len(s.train) + len(s.val) + len(s.test) == 1797
    assert s.train.images.shape[1:] == (1, 28, 28) and s.num_classes == 10 and not s.hflip
    assert s.train.images.max() > 200


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    s = load_splits("folder", tmp_path / "imgs", image_size=16, channels=3, val_size=2, seed=0)
    assert s.train.classes == ("cat", "dog") and s.train.images.shape[1:] == (3, 16, 16)
    assert len(s.train) + len(s.val) + len(s.test) == 20
    grey = load_splits("folder", tmp_path / "imgs", image_size=8, channels=1, val_size=0, seed=0)
    assert grey.in_chans == 1 and grey.image_size == 8
    (tmp_path / "imgs" / "dog" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="broken.png"):
        load_splits("folder", tmp_path / "imgs", image_size=16)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_splits("folder", tmp_path / "missing", image_size=16)


def test_train_loader_order_and_augmentation_depend_only_on_seed_and_epoch(tmp_path):
    s = load_splits("fashion-mnist", fake_fashion_mnist(tmp_path / "fm"), val_size=0, seed=0)

    def first_batch(epoch, seed=0, workers=0):
        loader = train_loader(s, 16, seed=seed, num_workers=workers)
        set_epoch(loader, epoch)
        return next(iter(loader))

    x0, y0 = first_batch(0)
    assert torch.equal(x0, first_batch(0)[0])
    assert torch.equal(x0, first_batch(0, workers=1)[0])  # workers do not change augmentation
    assert not torch.equal(x0, first_batch(1)[0]) and not torch.equal(x0, first_batch(0, seed=5)[0])
    assert x0.shape == (16, 1, 28, 28) and y0.dtype == torch.int64


def test_distributed_shards_cover_the_global_batch(tmp_path):
    s = load_splits("fashion-mnist", fake_fashion_mnist(tmp_path / "fm"), val_size=0, seed=0)
    single = train_loader(s, 16, seed=0)
    ranks = [train_loader(s, 16, seed=0, rank=r, world_size=2) for r in range(2)]
    for loader in [single, *ranks]:
        set_epoch(loader, 2)
    for (xs, ys), (x0, y0), (x1, y1) in zip(single, *ranks):
        assert x0.shape[0] == 8
        key = lambda x, y: sorted(zip(y.tolist(), x.flatten(1).sum(1).tolist()))
        assert key(xs, ys) == key(torch.cat([x0, x1]), torch.cat([y0, y1]))
    with pytest.raises(DatasetError, match="multiple of the number of processes"):
        train_loader(s, 15, world_size=2)
    evals = [eval_loader(s, "train", 7, rank=r, world_size=2) for r in range(2)]
    seen = sorted(i for ev in evals for i in ev.sampler)
    assert seen == list(range(len(s.train)))


def test_eval_dataset_is_normalized_without_augmentation(tmp_path):
    s = load_splits("fashion-mnist", fake_fashion_mnist(tmp_path / "fm"), val_size=0, seed=0)
    ds = ImageDataset(s.train, s.mean, s.std)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    assert x.mean().item() == pytest.approx(0.0, abs=1e-5) and x.std().item() == pytest.approx(1.0, abs=1e-2)


@pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST is not installed (apt package dataset-fashion-mnist)")
def test_real_fashion_mnist_files():
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.labels).tolist() == [1000] * 10


def test_image_folder_reads_16_bit_and_float_images_by_their_range(tmp_path):
    """Pillow's convert("L") clipped 16-bit values to 255 (a nearly white image) and rounded floats
    in [0, 1] to 0 (all black); they are scaled from their mode's range instead."""
    from PIL import Image

    gradient = np.tile(np.linspace(0, 1, 16), (16, 1))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    Image.fromarray((gradient * 255).round().astype(np.uint8)).save(tmp_path / "a" / "eight.png")
    Image.fromarray((gradient * 65535).round().astype(np.uint16)).save(tmp_path / "b" / "sixteen.png")
    Image.fromarray(gradient.astype(np.float32), mode="F").save(tmp_path / "b" / "float.tif")
    images = load_image_folder(tmp_path, 1, 16).images
    for image in images[1:]:
        assert torch.equal(image, images[0])  # the same picture in three encodings
    Image.fromarray((gradient * 3).astype(np.float32), mode="F").save(tmp_path / "b" / "float.tif")
    with pytest.raises(DatasetError, match=r"float.tif' \(Pillow mode F\) has values in \[0, 3\]"):
        load_image_folder(tmp_path, 1, 16)


def test_hidden_and_archive_folders_are_not_classes(tmp_path):
    from PIL import Image

    for name in ("cat", "dog", ".ipynb_checkpoints", "__MACOSX"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / name / "x.png")
    assert load_image_folder(tmp_path, 1, 4).classes == ("cat", "dog")


@pytest.mark.parametrize("val_size, message", [
    (5.0, r"a float is a fraction of the training images and must be below 1; give a count as an integer \(5\)"),
    (1.5, "a float is a fraction of the training images and must be below 1"),
    (0.0001, "is less than one image"),  # it gave 0 validation images: training ran unvalidated
])
def test_val_size_floats_are_fractions_and_a_positive_one_keeps_an_image(val_size, message):
    with pytest.raises(DatasetError, match=message):
        load_splits("digits", val_size=val_size)


def test_the_test_subset_depends_only_on_seed_and_test_limit(tmp_path):
    """It was drawn after the validation and training draws, so --val-size and --train-limit
    changed which test images a run was scored on."""
    root = train_helpers.fake_fashion_mnist(tmp_path / "fm", n_test=64)
    tests = [load_splits("fashion-mnist", root, test_limit=20, seed=3, **kw).test
             for kw in ({"val_size": 16}, {"val_size": 0.25, "train_limit": 30}, {"val_size": 0})]
    assert all(torch.equal(t.images, tests[0].images) and torch.equal(t.labels, tests[0].labels) for t in tests)
    other = load_splits("fashion-mnist", root, test_limit=20, seed=4, val_size=16).test
    assert not torch.equal(other.images, tests[0].images)
