"""Datasets, the DataLoader (determinism, sharding) and the IDX / Fashion-MNIST reader."""

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import (
    FASHION_MNIST_ROOT,
    DataLoader,
    TensorDataset,
    load_diabetes,
    load_digits,
    load_fashion_mnist,
    read_idx,
    train_test_split,
)


def _ids(loader):
    """The example ids of each batch (datasets below hold their own index in column 0)."""
    return [batch[0].data[:, 0].astype(int).tolist() for batch in loader]


def _indexed(n):
    """n examples whose input is (i, 2i) and whose label is i % 3."""
    x = np.stack([np.arange(n), 2 * np.arange(n)], axis=1).astype(np.float32)
    return TensorDataset(x, np.arange(n) % 3)


# ----------------------------------------------------------------- TensorDataset
def test_tensor_dataset_indexes_every_array_and_shares_memory():
    x = np.arange(12.0).reshape(6, 2)
    y = np.arange(6)
    ds = TensorDataset(cr.tensor(x), y)
    assert len(ds) == 6
    xi, yi = ds[4]
    assert isinstance(xi, cr.Tensor) and isinstance(yi, cr.Tensor)
    np.testing.assert_array_equal(xi.data, x[4])
    assert yi.item() == 4
    assert np.shares_memory(ds.arrays[1], y)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ((), "at least one"),
        ((np.zeros((3, 2)), np.zeros(4)), r"\(3, 2\).*\(4,\)"),
        ((np.zeros(3), np.float32(1.0)), "first"),
    ],
    ids=["none", "lengths differ", "0-d"],
)
def test_tensor_dataset_rejects_bad_arrays(arrays, match):
    with pytest.raises(ValueError, match=match):
        TensorDataset(*arrays)


# ----------------------------------------------------------------- DataLoader basics
@pytest.mark.parametrize("n, batch, drop_last, expected", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3),
    (2, 5, False, 1), (2, 5, True, 0), (0, 4, False, 0),
])  # fmt: skip
def test_len_and_batch_sizes(n, batch, drop_last, expected):
    loader = DataLoader(_indexed(n), batch_size=batch, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == expected
    sizes = [len(b[0].data) for b in batches]
    assert all(size == batch for size in sizes[:-1])
    assert sum(sizes) == (n // batch * batch if drop_last else n)


def test_unshuffled_batches_are_in_order_and_keep_dtypes():
    loader = DataLoader(_indexed(7), batch_size=3)
    assert _ids(loader) == [[0, 1, 2], [3, 4, 5], [6]]
    x, y = next(iter(loader))
    assert isinstance(x, cr.Tensor) and x.dtype == np.float32 and y.dtype == np.int64
    assert not x.requires_grad
    np.testing.assert_array_equal(y.data, [0, 1, 2])


def test_shuffle_same_seed_same_batches_new_order_each_epoch():
    a = DataLoader(_indexed(50), batch_size=8, shuffle=True, seed=7)
    b = DataLoader(_indexed(50), batch_size=8, shuffle=True, seed=7)
    epochs_a = [_ids(a) for _ in range(3)]
    epochs_b = [_ids(b) for _ in range(3)]
    assert epochs_a == epochs_b
    assert epochs_a[0] != epochs_a[1] != epochs_a[2]
    for epoch in epochs_a:
        assert sorted(i for batch in epoch for i in batch) == list(range(50))
    other = DataLoader(_indexed(50), batch_size=8, shuffle=True, seed=8)
    assert _ids(other) != epochs_a[0]


def test_set_epoch_resumes_the_order_of_the_remaining_epochs():
    full = DataLoader(_indexed(30), batch_size=4, shuffle=True, seed=3)
    orders = [_ids(full) for _ in range(5)]
    resumed = DataLoader(_indexed(30), batch_size=4, shuffle=True, seed=3)
    resumed.set_epoch(3)
    assert [_ids(resumed) for _ in range(2)] == orders[3:]


def test_no_seed_is_reproducible_after_manual_seed():
    cr.manual_seed(11)
    first = _ids(DataLoader(_indexed(20), batch_size=5, shuffle=True))
    cr.manual_seed(11)
    second = _ids(DataLoader(_indexed(20), batch_size=5, shuffle=True))
    assert first == second


def test_generic_dataset_is_batched_by_stacking():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float32), i

    x, y = next(iter(DataLoader(Squares(), batch_size=3)))
    np.testing.assert_array_equal(x.data, [[0, 0], [1, 1], [2, 4]])
    np.testing.assert_array_equal(y.data, [0, 1, 2])


# ----------------------------------------------------------------- sharding
@pytest.mark.parametrize("n, drop_last", [(40, False), (37, False), (37, True)])
def test_two_ranks_split_every_global_batch_disjointly(n, drop_last):
    kwargs = {"shuffle": True, "seed": 5, "drop_last": drop_last}
    ranks = [DataLoader(_indexed(n), batch_size=4, shard=(r, 2), **kwargs) for r in range(2)]
    single = DataLoader(_indexed(n), batch_size=8, **kwargs)
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for _ in range(2):  # two epochs: the shards follow the single loader's new order
        per_rank = [_ids(loader) for loader in ranks]
        whole = _ids(single)
        assert len(per_rank[0]) == len(per_rank[1]) == len(whole)
        for batch0, batch1, batch in zip(per_rank[0], per_rank[1], whole):
            assert not set(batch0) & set(batch1)
            assert batch0 + batch1 == batch
            assert abs(len(batch0) - len(batch1)) <= 1
        covered = sorted(i for r in per_rank for b in r for i in b)
        assert covered == (sorted(i for b in whole for i in b))
        if not drop_last:
            assert covered == list(range(n))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"batch_size": 0}, ValueError),
        ({"batch_size": 2.5}, TypeError),
        ({"batch_size": True}, TypeError),
        ({"shard": (2, 2)}, ValueError),
        ({"shard": (-1, 2)}, ValueError),
        ({"shard": (0, 0)}, ValueError),
        ({"shard": (0,)}, ValueError),
        ({"shuffle": True, "seed": -3}, ValueError),
    ],
    ids=["batch 0", "batch float", "batch bool", "rank=world", "rank<0", "world 0",
         "shard short", "seed<0"],
)  # fmt: skip
def test_bad_loader_arguments(kwargs, error):
    with pytest.raises(error):
        DataLoader(_indexed(4), **kwargs)


def test_loader_rejects_a_non_dataset():
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(42)


# ----------------------------------------------------------------- train_test_split
def test_train_test_split_is_deterministic_and_disjoint():
    x = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    (x_tr, y_tr), (x_te, y_te) = train_test_split(x, y, test_fraction=0.3, seed=1)
    assert len(y_te) == 3 and len(y_tr) == 7
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(10))
    np.testing.assert_array_equal(x_tr[:, 0], 2 * y_tr)  # rows stay paired
    again = train_test_split(x, y, test_fraction=0.3, seed=1)
    np.testing.assert_array_equal(again[1][1], y_te)
    assert train_test_split(x, y, 0.3, seed=2)[1][1].tolist() != y_te.tolist()


@pytest.mark.parametrize(
    "x, y, fraction",
    [(np.zeros(4), np.zeros(5), 0.5), (np.zeros(4), np.zeros(4), 1.0),
     (np.zeros(4), np.zeros(4), 0.01)],
    ids=["lengths", "fraction 1", "empty test part"],
)  # fmt: skip
def test_train_test_split_errors(x, y, fraction):
    with pytest.raises(ValueError):
        train_test_split(x, y, fraction)


# ----------------------------------------------------------------- built-in datasets
def test_load_digits():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y).tolist()) == set(range(10))


def test_load_diabetes():
    x, y = load_diabetes()
    assert x.shape == (442, 10) and x.dtype == np.float32
    assert y.shape == (442,) and y.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose((x.astype(np.float64) ** 2).sum(axis=0), 1.0, rtol=1e-4)


# ----------------------------------------------------------------- IDX files
_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
          np.float32: 0x0D, np.float64: 0x0E}  # fmt: skip


def _idx_bytes(array):
    array = np.asarray(array)
    header = bytes([0, 0, _CODES[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, payload):
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trip(tmp_path, rng, dtype, suffix):
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = _write(tmp_path / f"a.idx{suffix}", _idx_bytes(array))
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


_GOOD = _idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))

BAD_IDX = [
    ("empty", "", b"", "too short"),
    ("short magic", "", b"\x00\x00", "too short"),
    ("wrong magic", "", b"\x01" + _GOOD[1:], "bad magic"),
    ("wrong magic 2nd byte", "", b"\x00\x07" + _GOOD[2:], "bad magic"),
    ("gzip named raw", "", gzip.compress(_GOOD), "name the file"),
    ("unknown dtype code", "", _GOOD[:2] + b"\x0a" + _GOOD[3:], "dtype code 0x0a"),
    ("zero dimensions", "", b"\x00\x00\x08\x00", "0 dimensions"),
    ("truncated header", "", _GOOD[:10], "truncated header"),
    ("truncated data", "", _GOOD[:-5], "truncated file"),
    ("truncated data gz", ".gz", _GOOD[:-1], "truncated file"),
    ("trailing bytes", "", _GOOD + b"\x00", "trailing bytes"),
    (
        "lying header",
        "",
        _GOOD[:4] + struct.pack(">3I", 2**31, 2**31, 9) + _GOOD[16:],
        "truncated",
    ),
]


@pytest.mark.parametrize(
    "suffix, payload, match", [c[1:] for c in BAD_IDX], ids=[c[0] for c in BAD_IDX]
)
def test_malformed_idx_raises_value_error_naming_the_file(tmp_path, suffix, payload, match):
    path = _write(tmp_path / f"bad-file.idx{suffix}", payload)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert "bad-file.idx" in str(info.value)


@pytest.mark.parametrize(
    "payload", [b"not gzip at all", gzip.compress(_GOOD)[:-12]], ids=["not gzip", "cut gzip"]
)
def test_corrupt_gzip_raises_value_error(tmp_path, payload):
    path = tmp_path / "corrupt.gz"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match="corrupt.gz"):
        read_idx(path)


# ----------------------------------------------------------------- Fashion-MNIST layout
_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]  # fmt: skip


def _fake_fashion(root, rng, n_train=6, n_test=4, gz=(True, False, True, False), **override):
    root.mkdir(exist_ok=True)
    arrays = {
        _NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        _NAMES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        _NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        _NAMES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays.update(override)
    for (name, array), zipped in zip(arrays.items(), gz):
        _write(root / (name + (".gz" if zipped else "")), _idx_bytes(array))
    return arrays


def test_load_fashion_mnist_from_synthetic_files(tmp_path, rng):
    arrays = _fake_fashion(tmp_path / "fm", rng)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(tmp_path / "fm")
    assert x_train.dtype == np.uint8 and x_train.shape == (6, 28, 28)
    assert y_train.dtype == np.int64 and y_test.shape == (4,)
    np.testing.assert_array_equal(x_train, arrays[_NAMES[0]])
    np.testing.assert_array_equal(y_test, arrays[_NAMES[3]])


@pytest.mark.parametrize(
    "override, match",
    [
        ({_NAMES[1]: np.zeros(5, np.uint8)}, "5 labels for 6"),
        ({_NAMES[3]: np.full(4, 10, np.uint8)}, "label 10"),
        ({_NAMES[0]: np.zeros((6, 784), np.uint8)}, "images"),
        ({_NAMES[2]: np.zeros((4, 28, 28), np.float32)}, "uint8"),
        ({_NAMES[1]: np.zeros((6, 1), np.uint8)}, "labels"),
    ],
    ids=["count mismatch", "label out of range", "2-d images", "float images", "2-d labels"],
)
def test_load_fashion_mnist_validates_contents(tmp_path, rng, override, match):
    _fake_fashion(tmp_path / "fm", rng, **override)
    with pytest.raises(ValueError, match=match):
        load_fashion_mnist(tmp_path / "fm")


def test_missing_directory_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_missing_file_says_how_to_install(tmp_path, rng):
    _fake_fashion(tmp_path / "fm", rng)
    os.remove(tmp_path / "fm" / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "fm")


@pytest.mark.skipif(
    not os.path.isdir(FASHION_MNIST_ROOT), reason="dataset-fashion-mnist is not installed"
)
def test_real_fashion_mnist():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))
    assert x_train.max() == 255 and x_train.min() == 0


def test_a_missing_fashion_mnist_folder_or_file_is_a_dataset_not_found(tmp_path):
    with pytest.raises(cr.data.DatasetNotFound, match="does not exist") as missing:
        cr.data.load_fashion_mnist(tmp_path / "nowhere")
    assert missing.value.missing is None and isinstance(missing.value, FileNotFoundError)
    (tmp_path / "file").write_text("")
    with pytest.raises(cr.data.DatasetNotFound, match="is a file, not a folder"):
        cr.data.load_fashion_mnist(tmp_path / "file")
    with pytest.raises(cr.data.DatasetNotFound, match="apt-get install") as empty:
        cr.data.load_fashion_mnist(tmp_path)
    assert empty.value.missing == "train-images-idx3-ubyte"
