"""Checkpoints that cannot hurt.

``tests/test_checkpoint.py`` holds the round trips, atomic writes under simulated crashes,
the refusal of pickles and ``torch.save`` archives, the check that nothing is allocated
before the whole header is valid, and a table of 44 malformed files. This module adds the
malformed files that table lacks (JSON corner cases, strings that are not text, shapes no
NumPy array can have, NumPy and zip files), proof that no unsafe loader is ever reached, a
real process crash in the middle of a save, and what a concurrent reader or a symlink sees.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import safetensors.numpy

import chainrule as cr
from chainrule import serialization
from chainrule.serialization import CheckpointError, load, load_metadata, save


def _file(header, data=b""):
    """A safetensors file from a header (a dict, or raw JSON bytes) and data bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _entry_json(**kwargs):
    return json.dumps(_entry(**kwargs)).encode()


def _npy(array, allow_pickle=False):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _npz():
    import io

    buffer = io.BytesIO()
    np.savez(buffer, w=np.ones(3))
    return buffer.getvalue()


MALFORMED = [
    ("Infinity in header", _file(b'{"a": Infinity}'), "Infinity"),
    ("-Infinity in header", _file(b'{"a": -Infinity}'), "Infinity"),
    ("UTF-8 byte order mark", _file(b"\xef\xbb\xbf{}"), "not valid JSON"),
    ("overlong UTF-8", _file(b'{"\xc0\xaf": 1}'), "UTF-8"),
    ("lone surrogate in a name", _file(b'{"\\ud800": ' + _entry_json() + b"}", bytes(8)),
     "surrogate"),
    ("lone surrogate in metadata", _file(b'{"__metadata__": {"k": "\\udc00"}}'), "surrogate"),
    ("duplicate name, one escaped",
     _file(b'{"a": ' + _entry_json() + b', "\\u0061": ' + _entry_json(offsets=(8, 16)) + b"}",
           bytes(16)), "'a' twice"),
    ("NUL padding after the JSON", _file(json.dumps({"a": _entry()}).encode() + b"\0\0", bytes(8)),
     "not valid JSON"),
    ("two JSON documents", _file(b"{} {}"), "not valid JSON"),
    ("header is null", _file(b"null"), "JSON object"),
    ("header is a number", _file(b"42"), "JSON object"),
    ("5,000-digit number", _file(b'{"a": ' + b"9" * 5000 + b"}"), "not valid JSON"),
    ("offsets as floats", _file({"a": _entry(offsets=(0.0, 8.0))}, bytes(8)), "data_offsets"),
    ("offsets as bools", _file({"a": _entry(shape=(1,), offsets=(False, 4))}, bytes(4)),
     "data_offsets"),
    ("offsets beyond 2**64", _file({"a": _entry(offsets=(2**64, 2**64 + 8))}, bytes(8)),
     "past the end"),
    ("lowercase dtype", _file({"a": _entry("f32")}, bytes(8)), "unknown dtype"),
    ("bfloat16 lookalike", _file({"a": _entry("BF16 ")}, bytes(8)), "unknown dtype"),
    ("tensor named __metadata__", _file({"__metadata__": _entry()}, bytes(8)), "__metadata__"),
    ("nested metadata", _file({"__metadata__": {"a": {"b": "c"}}}), "__metadata__"),
    ("metadata null", _file({"__metadata__": None}), "__metadata__"),
    ("nested shape", _file({"a": _entry(shape=([2],))}, bytes(8)), "shape"),
    ("shape of 1e30", _file({"a": _entry(shape=(1e30,))}, bytes(8)), "shape"),
    ("65 dimensions", _file({"a": _entry(shape=(1,) * 65, offsets=(0, 4))}, bytes(4)),
     "dimensions"),
    ("empty but too big", _file({"a": _entry(shape=(2**62, 2**62, 0), offsets=(0, 0))}),
     "too big"),
    ("empty with a dimension past int64", _file({"a": _entry(shape=(2**64, 0), offsets=(0, 0))}),
     "too big"),
    ("NumPy .npy of objects", _npy(np.array([{"x": 1}], dtype=object), allow_pickle=True),
     "npy"),
    ("NumPy .npy", _npy(np.ones(3)), "npy"),
    ("NumPy .npz", _npz(), "zip archive"),
]  # fmt: skip


@pytest.mark.parametrize(
    "payload, match", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_file_raises_checkpoint_error(tmp_path, payload, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match=match) as info:
        load(path)
    assert isinstance(info.value, ValueError)  # the one documented type, a ValueError
    assert "bad.safetensors" in str(info.value)
    with pytest.raises(CheckpointError):
        load_metadata(path)


def test_malformed_files_in_total():
    """The issue's note reports this number: both tables together."""
    from test_checkpoint import MALFORMED as EARLIER

    names = [m[0] for m in EARLIER] + [m[0] for m in MALFORMED]
    assert len(names) == len(set(names)) >= 70


VALID_CORNERS = [
    ("space padding (the library pads to 8 bytes)",
     _file(json.dumps({"a": _entry()}).encode() + b"    ", bytes(8)), {"a": (2,)}),
    ("empty tensors sharing an offset",
     _file({"a": _entry(shape=(0,), offsets=(0, 0)), "b": _entry("F64", (0, 3), (0, 0)),
            "c": _entry()}, bytes(8)), {"a": (0,), "b": (0, 3), "c": (2,)}),
    ("an empty name", _file({"": _entry()}, bytes(8)), {"": (2,)}),
    ("as many dimensions as NumPy allows",
     _file({"a": _entry(shape=(1,) * serialization._MAX_DIMS, offsets=(0, 4))}, bytes(4)),
     {"a": (1,) * serialization._MAX_DIMS}),
    ("a scalar", _file({"a": _entry(shape=(), offsets=(0, 4))}, bytes(4)), {"a": ()}),
]  # fmt: skip


@pytest.mark.parametrize(
    "payload, shapes", [v[1:] for v in VALID_CORNERS], ids=[v[0] for v in VALID_CORNERS]
)
def test_valid_corner_cases_load(tmp_path, payload, shapes):
    path = tmp_path / "ok.safetensors"
    path.write_bytes(payload)
    loaded = load(path)
    assert {name: array.shape for name, array in loaded.items()} == shapes
    assert set(safetensors.numpy.load(payload)) == set(shapes)  # the reference agrees


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_endless_or_empty_devices_are_refused_at_once(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    with pytest.raises(CheckpointError, match="too short"):
        load(device)  # reads 0 size from fstat: never an endless read


def test_a_directory_is_an_os_error(tmp_path):
    with pytest.raises(IsADirectoryError if os.name != "nt" else PermissionError):
        load(tmp_path)


# ------------------------------------------------------------------ no unsafe loader
@pytest.fixture
def unsafe_loaders_forbidden(monkeypatch):
    """Every loader that can run code or that chainrule could fall back to raises."""

    def refuse(*args, **kwargs):
        raise AssertionError("an unsafe or foreign loader was called")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(np, "load", refuse)
    monkeypatch.setattr(safetensors.numpy, "load", refuse)
    monkeypatch.setattr(safetensors.numpy, "load_file", refuse)
    if "torch" in sys.modules:
        monkeypatch.setattr(sys.modules["torch"], "load", refuse)


def test_valid_files_load_without_any_other_loader(tmp_path, unsafe_loaders_forbidden):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(6.0).reshape(2, 3), "b": np.ones(2, np.float32)}, path)
    loaded = load(path)
    np.testing.assert_array_equal(loaded["w"], np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize(
    "payload", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)  # fmt: skip
def test_a_bad_file_never_falls_back_to_another_loader(tmp_path, unsafe_loaders_forbidden,
                                                        payload):  # fmt: skip
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError):  # not AssertionError from a fallback
        load(path)


def test_a_pickle_inside_a_zip_named_like_a_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Touch(str(marker)))
    path = tmp_path / "model.safetensors"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", payload)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load(path)
    assert not marker.exists()


class _Touch:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ------------------------------------------------------------------ atomic saves
CRASH = """
import os, sys
import numpy as np
from chainrule import serialization

def write_half_then_die(stream, payload):
    stream.write(payload[: len(payload) // 2])
    stream.flush()
    os._exit(3)  # a hard crash: no finally, no cleanup, no exception handler

serialization._write_all = write_half_then_die
serialization.save({"w": np.zeros(100_000)}, sys.argv[1])
"""


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()
    result = subprocess.run([sys.executable, "-c", CRASH, str(path)], timeout=60)
    assert result.returncode == 3
    assert path.read_bytes() == before
    np.testing.assert_array_equal(load(path)["w"], np.arange(5.0))
    # A hard crash cannot remove its temporary file; it is hidden and never the checkpoint.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.safetensors"]
    assert all(name.startswith(".model.safetensors.") for name in leftovers)
    save({"w": np.ones(2)}, path)  # the next save is not disturbed by the leftover
    np.testing.assert_array_equal(load(path)["w"], np.ones(2))


def test_a_reader_during_a_save_sees_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(3.0)}, path)
    seen = []
    write_all = serialization._write_all

    def write_and_read(stream, payload):
        write_all(stream, payload[:100])
        seen.append(load(path)["w"].copy())  # another process reading mid-write
        stream.write(payload[100:])

    monkeypatch.setattr(serialization, "_write_all", write_and_read)
    save({"w": np.zeros(1000)}, path)
    np.testing.assert_array_equal(seen[0], np.arange(3.0))
    assert load(path)["w"].shape == (1000,)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_saving_over_a_symlink_does_not_write_through_it(tmp_path):
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(b"not yours to overwrite")
    link = tmp_path / "model.safetensors"
    os.symlink(target, link)
    save({"w": np.ones(2)}, link)
    assert target.read_bytes() == b"not yours to overwrite"
    assert not link.is_symlink()
    np.testing.assert_array_equal(load(link)["w"], np.ones(2))


def test_saving_into_a_missing_directory_fails_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        save({"w": np.ones(2)}, tmp_path / "missing" / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_a_model_restored_from_a_checkpoint_trains_on_identically(tmp_path):
    """Loading copies into the model's own arrays: no alias to the loaded dict remains."""
    cr.manual_seed(0)
    model = cr.nn.Linear(3, 2)
    save(model.state_dict(), tmp_path / "m.safetensors")
    state = load(tmp_path / "m.safetensors")
    other = cr.nn.Linear(3, 2)
    other.load_state_dict(state)
    state["weight"][...] = 99.0
    np.testing.assert_array_equal(other.weight.data, model.weight.data)
