"""Checkpoints: bit-exact round trips, atomic writes, and a table of malformed files."""

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import chainrule as cr
from chainrule import serialization
from chainrule.optim import Adam
from chainrule.serialization import CheckpointError, load, load_metadata, save


# ----------------------------------------------------------------- round trips
def _random_bits(rng, dtype, shape):
    """Arbitrary bit patterns (NaN payloads, -0.0, subnormals) for a bit-exact test."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    raw = rng.integers(0, 256, int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16, np.int8,
          np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.complex64]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_is_bit_exact(tmp_path, rng, dtype):
    state = {
        "matrix": _random_bits(rng, dtype, (3, 5)),
        "scalar": _random_bits(rng, dtype, ()),
        "empty": _random_bits(rng, dtype, (0, 4)),
        "cube": _random_bits(rng, dtype, (2, 3, 4)),
    }
    save(state, tmp_path / "model.safetensors")
    loaded = load(tmp_path / "model.safetensors")
    assert set(loaded) == set(state)
    for name, array in state.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        assert loaded[name].tobytes() == array.tobytes()
        assert loaded[name].flags.writeable


def test_tensors_views_and_big_endian_arrays_are_converted(tmp_path, rng):
    base = rng.standard_normal((4, 6))
    state = {
        "tensor": cr.tensor(base.astype(np.float32), requires_grad=True),
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "big_endian": base.astype(">f8"),
        "numpy_scalar": np.float64(2.5),
    }
    save(state, tmp_path / "c.safetensors")
    loaded = load(tmp_path / "c.safetensors")
    np.testing.assert_array_equal(loaded["tensor"], base.astype(np.float32))
    np.testing.assert_array_equal(loaded["transposed"], base.T)
    np.testing.assert_array_equal(loaded["strided"], base[::2, 1::3])
    np.testing.assert_array_equal(loaded["big_endian"], base)
    assert loaded["big_endian"].dtype.isnative
    assert loaded["numpy_scalar"].shape == () and loaded["numpy_scalar"] == 2.5


def test_metadata_round_trip(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"w": np.ones(2)}, path, metadata={"epoch": "7", "note": "ünïcode"})
    arrays, metadata = load(path, with_metadata=True)
    assert metadata == {"epoch": "7", "note": "ünïcode"}
    assert load_metadata(path) == metadata
    save({"w": np.ones(2)}, path)
    assert load_metadata(path) == {}


def test_interoperates_with_the_safetensors_library(tmp_path, rng):
    ours = {"a": rng.standard_normal((2, 3)).astype(np.float32), "b": np.arange(5)}
    save(ours, tmp_path / "ours.safetensors")
    theirs = safetensors.numpy.load_file(str(tmp_path / "ours.safetensors"))
    for name in ours:
        np.testing.assert_array_equal(theirs[name], ours[name])
    safetensors.numpy.save_file(ours, str(tmp_path / "lib.safetensors"), metadata={"k": "v"})
    loaded, metadata = load(tmp_path / "lib.safetensors", with_metadata=True)
    assert metadata == {"k": "v"}
    for name in ours:
        np.testing.assert_array_equal(loaded[name], ours[name])


def test_optimizer_resume_through_a_checkpoint_file(tmp_path, rng):
    """Adam 5 steps, saved to disk (arrays + JSON metadata), resumed: same as 10 steps."""
    start = rng.standard_normal((3, 2)).astype(np.float32)
    grads = [rng.standard_normal((3, 2)) for _ in range(10)]

    def run(p, opt, steps):
        for g in steps:
            p.grad = cr.tensor(g.astype(np.float32))
            opt.step()

    straight = cr.tensor(start, requires_grad=True)
    run(straight, Adam([straight], lr=0.01), grads)

    first = cr.tensor(start, requires_grad=True)
    opt = Adam([first], lr=0.01)
    run(first, opt, grads[:5])
    state = opt.state_dict()
    arrays = {"param.0": first}
    steps = {}
    for index, entry in state["state"].items():
        steps[index] = entry["step"]
        arrays[f"state.{index}.exp_avg"] = entry["exp_avg"]
        arrays[f"state.{index}.exp_avg_sq"] = entry["exp_avg_sq"]
    meta = {"groups": json.dumps(state["param_groups"]), "steps": json.dumps(steps)}
    save(arrays, tmp_path / "run.safetensors", metadata=meta)

    loaded, meta = load(tmp_path / "run.safetensors", with_metadata=True)
    resumed = cr.tensor(loaded["param.0"], requires_grad=True)
    opt_b = Adam([resumed], lr=0.5)
    restored = {
        index: {
            "step": step,
            "exp_avg": loaded[f"state.{index}.exp_avg"],
            "exp_avg_sq": loaded[f"state.{index}.exp_avg_sq"],
        }
        for index, step in json.loads(meta["steps"]).items()
    }
    opt_b.load_state_dict({"state": restored, "param_groups": json.loads(meta["groups"])})
    run(resumed, opt_b, grads[5:])
    np.testing.assert_array_equal(resumed.data, straight.data)


@pytest.mark.parametrize(
    "state, metadata, match",
    [
        ({1.5: np.ones(2)}, None, "key must be a str or an int"),
        ({"__metadata__": np.ones(2)}, None, "__metadata__"),
        ({"w": {1, 2}}, None, "w: cannot store a set"),
        ({"w": np.array([object()])}, None, "dtype object"),
        ({"w": np.ones(2, np.complex128)}, None, "complex128"),
        ({"w": np.ones(2)}, {"epoch": 3}, "str to str"),
    ],
    ids=["float key", "reserved name", "set value", "object dtype", "complex128", "metadata"],
)
def test_save_rejects_what_safetensors_cannot_hold(tmp_path, state, metadata, match):
    with pytest.raises(TypeError, match=match):
        save(state, tmp_path / "x.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------- atomic writes
def _fail_halfway(stream, payload):
    stream.write(payload[: len(payload) // 2])
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize(
    "target, replacement",
    [
        ("_write_all", _fail_halfway),
        ("_write_all", lambda stream, payload: (_ for _ in ()).throw(KeyboardInterrupt)),
    ],
    ids=["crash mid-write", "interrupt"],
)
def test_a_crash_while_writing_keeps_the_previous_file(tmp_path, monkeypatch, target, replacement):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(4.0)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(serialization, target, replacement)
    with pytest.raises((OSError, KeyboardInterrupt)):
        save({"w": np.arange(1000.0)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    np.testing.assert_array_equal(load(path)["w"], np.arange(4.0))


@pytest.mark.parametrize("call", ["fsync", "replace"])
def test_a_failing_fsync_or_rename_keeps_the_previous_file(tmp_path, monkeypatch, call):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(4.0)}, path)
    before = path.read_bytes()

    def fail(*args):
        raise OSError(f"{call} failed (simulated)")

    monkeypatch.setattr(serialization.os, call, fail)
    with pytest.raises(OSError, match="simulated"):
        save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_save_replaces_an_existing_file_with_normal_permissions(tmp_path):
    path = tmp_path / "model.safetensors"
    save({"w": np.ones(3)}, path)
    save({"v": np.zeros(2)}, path)
    assert set(load(path)) == {"v"}
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ----------------------------------------------------------------- malformed files
def _file(header, data=b"", length=None):
    """A safetensors file from a header (dict, or raw bytes) and data bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(raw) if length is None else length
    return struct.pack("<Q", size) + raw + data


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


_VALID = _file({"a": _entry(), "b": _entry("I64", (1,), (8, 16))}, bytes(16))


class _Marker:
    """Unpickling this creates the file at ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


MALFORMED = [
    ("empty file", b"", "too short"),
    ("shorter than 8 bytes", b"\x10\x00\x00", "too short"),
    ("header length past the end", _file({}, length=500), "larger than"),
    ("header length absurd", struct.pack("<Q", 2**40) + b"{}", "absurdly large"),
    ("header length 101 MB", struct.pack("<Q", 101_000_000) + b"{}", "absurdly large"),
    ("truncated header", _VALID[:20], "larger than"),
    ("truncated data", _VALID[:-3], "past the end"),
    ("empty header", _file(b""), "not valid JSON"),
    ("invalid UTF-8", _file(b'{"\xff\xfe": 1}'), "UTF-8"),
    ("invalid JSON", _file(b'{"a": {'), "not valid JSON"),
    ("NaN in header", _file(b'{"a": NaN}'), "NaN"),
    ("deeply nested JSON", _file(b"[" * 100_000 + b"]" * 100_000), "JSON"),
    ("header is a list", _file([1, 2]), "JSON object"),
    ("header is a string", _file("weights"), "JSON object"),
    ("duplicate names", _file(b'{"a": {}, "a": {}}'), "'a' twice"),
    ("duplicate entry field", _file(b'{"a": {"dtype": "F32", "dtype": "F64"}}'), "twice"),
    ("entry not an object", _file({"a": [0, 8]}, bytes(8)), "exactly"),
    ("entry missing a field", _file({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)), "exactly"),
    ("entry extra field", _file({"a": {**_entry(), "x": 1}}, bytes(8)), "exactly"),
    ("unknown dtype", _file({"a": _entry("BF16", (2,), (0, 4))}, bytes(4)), "unknown dtype"),
    ("dtype not a string", _file({"a": _entry(7)}, bytes(8)), "unknown dtype"),
    ("pickle dtype", _file({"a": _entry("O")}, bytes(8)), "unknown dtype"),
    ("shape not a list", _file({"a": {**_entry(), "shape": 2}}, bytes(8)), "shape"),
    ("negative dimension", _file({"a": _entry("F32", (-2,))}, bytes(8)), "shape"),
    ("float dimension", _file({"a": _entry("F32", (2.0,))}, bytes(8)), "shape"),
    ("bool dimension", _file({"a": _entry("F32", (True, True))}, bytes(8)), "shape"),
    ("string dimension", _file({"a": _entry("F32", ("2",))}, bytes(8)), "shape"),
    ("offsets past the end", _file({"a": _entry("F32", (2,), (0, 8))}, bytes(4)), "past the end"),
    ("offsets reversed", _file({"a": _entry("F32", (0,), (8, 0))}, bytes(8)), "begin <= end"),
    ("offsets negative", _file({"a": _entry("F32", (2,), (-8, 0))}, bytes(8)), "data_offsets"),
    ("offsets wrong length", _file({"a": _entry("F32", (2,), (0,))}, bytes(8)), "data_offsets"),
    ("size mismatch", _file({"a": _entry("F32", (3,), (0, 8))}, bytes(8)), "needs 12 bytes"),
    ("huge shape", _file({"a": _entry("F64", (2**40, 2**40), (0, 8))}, bytes(8)), "needs"),
    (
        "overlapping ranges",
        _file({"a": _entry("F32", (2,), (0, 8)), "b": _entry("F32", (2,), (4, 12))}, bytes(12)),
        "overlaps",
    ),
    (
        "gap between ranges",
        _file({"a": _entry("F32", (1,), (0, 4)), "b": _entry("F32", (1,), (8, 12))}, bytes(12)),
        "gap",
    ),
    ("gap at the start", _file({"a": _entry("F32", (1,), (4, 8))}, bytes(8)), "gap"),
    ("trailing bytes", _file({"a": _entry()}, bytes(12)), "trailing"),
    ("metadata not strings", _file({"__metadata__": {"epoch": 3}}), "__metadata__"),
    ("metadata not an object", _file({"__metadata__": ["x"]}), "__metadata__"),
    ("bool bytes not 0/1", _file({"a": _entry("BOOL", (2,), (0, 2))}, b"\x01\x07"), "0/1"),
    ("pickle protocol 4", pickle.dumps({"w": [1.0, 2.0]}, protocol=4), "pickle"),
    ("pickle protocol 2", pickle.dumps([1, 2, 3], protocol=2), "pickle"),
    ("pickle protocol 0", pickle.dumps({"w": 1}, protocol=0), "safetensors"),
    ("random bytes", bytes(range(256)) * 4, "safetensors"),
]


@pytest.mark.parametrize(
    "payload, match", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_file_raises_checkpoint_error(tmp_path, payload, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match=match) as info:
        load(path)
    assert isinstance(info.value, ValueError)
    assert "bad.safetensors" in str(info.value)


def test_the_malformed_table_is_large():
    assert len(MALFORMED) >= 40


def test_the_valid_base_of_the_table_loads(tmp_path):
    path = tmp_path / "good.safetensors"
    path.write_bytes(_VALID)
    loaded = load(path)
    assert loaded["a"].shape == (2,) and loaded["b"].dtype == np.int64


def _forbid_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the loader tried to unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


def test_a_pickle_that_would_run_code_raises_and_runs_nothing(tmp_path, monkeypatch):
    proof = tmp_path / "proof"
    payload = pickle.dumps({"weights": _Marker(str(proof))})
    pickle.loads(payload)  # the payload is live: unpickling it creates the file
    assert proof.exists()
    marker = tmp_path / "marker"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"weights": _Marker(str(marker))}))
    _forbid_unpickling(monkeypatch)
    with pytest.raises(CheckpointError, match="pickle"):
        load(path)
    with pytest.raises(CheckpointError):
        load_metadata(path)
    assert not marker.exists()


def test_a_zip_archive_like_torch_save_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_Marker(str(marker))))
    _forbid_unpickling(monkeypatch)
    with pytest.raises(CheckpointError, match="zip archive"):
        load(path)
    assert not marker.exists()


def test_a_real_torch_save_file_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, path)
    with pytest.raises(CheckpointError, match="torch.save"):
        load(path)


def test_nothing_is_allocated_before_the_whole_header_is_valid(tmp_path, monkeypatch):
    # "a" is fine, "b" (later in the data) lies about its size: no array may be read.
    payload = _file({"a": _entry(), "b": _entry("F32", (4,), (8, 16))}, bytes(16))
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    reads = []
    monkeypatch.setattr(serialization, "_read_array", lambda *args: reads.append(args))
    with pytest.raises(CheckpointError, match="needs 16 bytes"):
        load(path)
    assert reads == []


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nowhere.safetensors")


def test_a_model_state_dict_round_trips(tmp_path):
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(4, 3), cr.nn.ReLU(), cr.nn.Linear(3, 2))
    save(model.state_dict(), tmp_path / "model.safetensors")
    cr.manual_seed(1)
    other = cr.nn.Sequential(cr.nn.Linear(4, 3), cr.nn.ReLU(), cr.nn.Linear(3, 2))
    other.load_state_dict(load(tmp_path / "model.safetensors"))
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), name
