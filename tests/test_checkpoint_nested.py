"""Checkpoints of whole training states: ``cr.save`` of nested dicts, lists and tuples,
``cr.load`` giving them back; still safetensors, still never unpickling."""

import json
import math
import struct

import numpy as np
import pytest
import safetensors.numpy

import chainrule as cr
from chainrule import nn
from chainrule.serialization import TREE_KEY, CheckpointError, load, load_metadata, save


def assert_same(got, expected, where="root"):
    """Equal values of exactly the same types, arrays bit for bit (NaN payloads too)."""
    if isinstance(expected, cr.Tensor):
        expected = expected.data
    assert type(got) is type(expected), f"{where}: {type(got)} != {type(expected)}"
    if isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        assert got.tobytes() == expected.tobytes(), where
    elif isinstance(expected, np.generic):
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), where
    elif isinstance(expected, float):
        assert struct.pack("<d", got) == struct.pack("<d", expected), where
    elif isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            assert type(key) is type(next(k for k in got if k == key)), where
            assert_same(got[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}/{i}")
    else:
        assert got == expected, where


def test_a_nested_structure_round_trips_with_its_types(tmp_path, rng):
    state = {
        "model": {"0.weight": rng.standard_normal((3, 2)), "0.bias": np.zeros(2, np.float32)},
        "tensor": cr.tensor([1.0, 2.0], requires_grad=True),  # comes back as its ndarray
        "ints": {0: np.arange(3), 7: [1, 2**70, -5]},
        "mixed keys": {"0": "a string key", 0: "an int key"},
        "floats": [0.1, -0.0, math.inf, -math.inf, math.nan, 1e-310],
        "scalars": (np.float32(1.5), np.int64(-3), np.bool_(True)),
        "atoms": [True, False, None, "text with / and ~ and ünïcode", ""],
        "empty": {"dict": {}, "list": [], "tuple": ()},
        "a/b": np.ones(1),  # a key with a "/" does not collide with "a" -> "b"
        "a": {"b": np.full(1, 2.0)},
        "nested tuple": ((np.ones((2, 0)),), [np.array(5, np.uint8)]),
        "epoch": 3,
    }
    path = tmp_path / "state.safetensors"
    save(state, path)
    assert_same(load(path), state)
    loaded = load(path)
    loaded["model"]["0.weight"] += 1  # writable arrays
    assert isinstance(loaded["scalars"], tuple) and loaded["ints"][7][1] == 2**70


def test_arrays_are_path_named_tensors_and_the_structure_is_json_metadata(tmp_path):
    save({"model": {"w": np.ones(2)}, "optimizer": {"state": {0: {"step": 4}}}}, tmp_path / "c")
    arrays = safetensors.numpy.load_file(tmp_path / "c")  # any safetensors reader sees them
    assert list(arrays) == ["model/w"]
    with open(tmp_path / "c", "rb") as stream:
        header = json.loads(stream.read(struct.unpack("<Q", stream.read(8))[0]))
    tree = json.loads(header["__metadata__"][TREE_KEY])
    assert tree["version"] == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: cr.optim.Adam(ps, lr=0.01, weight_decay=0.01),
        lambda ps: cr.optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
        lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9),
    ],
    ids=["adam", "rmsprop", "sgd"],
)
def test_an_optimizer_state_dict_round_trips_and_resumes_bit_for_bit(tmp_path, rng, make):
    start = rng.standard_normal((3, 2)).astype(np.float32)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(8)]

    def run(p, opt, some):
        for g in some:
            p.grad = cr.tensor(g)
            opt.step()

    straight = cr.tensor(start, requires_grad=True)
    run(straight, make([straight]), grads)

    first = cr.tensor(start, requires_grad=True)
    opt = make([first])
    run(first, opt, grads[:4])
    save({"param": first, "optimizer": opt.state_dict()}, tmp_path / "c.safetensors")
    loaded = load(tmp_path / "c.safetensors")
    assert_same(loaded["optimizer"], opt.state_dict())
    resumed = cr.tensor(loaded["param"], requires_grad=True)
    resumed_opt = make([resumed])
    resumed_opt.load_state_dict(loaded["optimizer"])
    run(resumed, resumed_opt, grads[4:])
    np.testing.assert_array_equal(resumed.data, straight.data)


def test_training_resumes_bit_for_bit_from_one_nested_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)

    def setup():
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        optimizer = cr.optim.Adam(model.parameters(), lr=0.01)
        scheduler = cr.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)
        loader = cr.data.DataLoader(cr.data.TensorDataset(X, y), batch_size=16, shuffle=True)
        return model, optimizer, scheduler, loader

    def train(model, optimizer, scheduler, loader, first, last):
        loader.set_epoch(first)
        for _ in range(first, last):
            for inputs, targets in loader:
                optimizer.zero_grad()
                nn.CrossEntropyLoss()(model(inputs), targets).backward()
                optimizer.step()
            scheduler.step()

    model, optimizer, scheduler, loader = setup()
    train(model, optimizer, scheduler, loader, 0, 4)
    straight = model.state_dict()

    model, optimizer, scheduler, loader = setup()
    train(model, optimizer, scheduler, loader, 0, 2)
    path = tmp_path / "run.safetensors"
    save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": 2,
        },
        path,
    )
    model, optimizer, scheduler, loader = setup()
    state = load(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    train(model, optimizer, scheduler, loader, state["epoch"], 4)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, straight[name])


class Opaque:
    pass


@pytest.mark.parametrize(
    "state, match",
    [
        ({"optimizer": {"hooks": [np.ones(1), lambda: 0]}}, r"optimizer/hooks/1: .*function"),
        ({"model": Opaque()}, r"model: cannot store a Opaque"),
        ({"a": {1.5: 2}}, r"a: a key must be a str or an int, got 1.5"),
        ({"a": {(1, 2): 2}}, r"a: a key must be a str or an int"),
        ({"a": [np.ones(2, np.complex128)]}, r"a/0: dtype complex128"),
        ({"a": np.array([object()]), "b": 1}, r"a: dtype object"),
        ({"a": b"bytes"}, r"a: cannot store a bytes"),
    ],
    ids=["lambda", "object", "float key", "tuple key", "complex128", "object dtype", "bytes"],
)
def test_unsupported_objects_are_refused_naming_the_key_path(tmp_path, state, match):
    with pytest.raises(TypeError, match=match):
        save(state, tmp_path / "c.safetensors")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_a_structure_that_contains_itself_is_refused(tmp_path):
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(TypeError, match="1: the structure contains itself"):
        save({"x": loop}, tmp_path / "c")


def test_metadata_beside_a_nested_state(tmp_path):
    save({"epoch": 1, "w": [np.ones(1)]}, tmp_path / "c", metadata={"note": "hi"})
    state, metadata = load(tmp_path / "c", with_metadata=True)
    assert metadata == {"note": "hi"} == load_metadata(tmp_path / "c")
    assert state["epoch"] == 1
    with pytest.raises(TypeError, match="reserved"):
        save({"epoch": 1}, tmp_path / "d", metadata={TREE_KEY: "{}"})


def _write(path, arrays, tree):
    metadata = None if tree is None else {TREE_KEY: json.dumps(tree)}
    path.write_bytes(safetensors.numpy.save(arrays, metadata=metadata))


@pytest.mark.parametrize(
    "arrays, tree, match",
    [
        ({}, {"version": 2, "root": 1}, "version"),
        ({}, {"version": 1, "root": {"array": "missing"}}, "missing or used twice"),
        (
            {"w": np.ones(1)},
            {"version": 1, "root": {"list": [{"array": "w"}, {"array": "w"}]}},
            "used twice",
        ),
        ({"w": np.ones(1), "v": np.ones(1)}, {"version": 1, "root": {"array": "w"}}, "'v'"),
        ({}, {"version": 1, "root": {"pickle": "x"}}, "not a node"),
        ({}, {"version": 1, "root": {"float": "one"}}, "not a float"),
        ({}, {"version": 1, "root": {"dict": [["a", 1], ["a", 2]]}}, "key 'a'"),
        ({}, {"version": 1, "root": {"dict": [[True, 1]]}}, "key True"),
        ({"w": np.ones(2)}, {"version": 1, "root": {"scalar": "w"}}, "shape"),
        ({}, {"version": 1, "root": 1.5}, "not a node"),
    ],
    ids=[
        "version", "missing tensor", "tensor twice", "tensor left out", "unknown node",
        "bad float", "duplicate key", "bool key", "scalar shape", "bare float",
    ],
)  # fmt: skip
def test_a_corrupt_structure_raises_checkpoint_error(tmp_path, arrays, tree, match):
    _write(tmp_path / "c", arrays, tree)
    with pytest.raises(CheckpointError, match=match):
        load(tmp_path / "c")


def test_a_structure_that_is_not_json_or_too_deep_raises_checkpoint_error(tmp_path):
    path = tmp_path / "c"
    path.write_bytes(safetensors.numpy.save({}, metadata={TREE_KEY: "{not json"}))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(path)
    deep = '{"list": [' * 100_000 + "]}" * 100_000
    path.write_bytes(safetensors.numpy.save({}, metadata={TREE_KEY: deep}))
    with pytest.raises(CheckpointError, match=TREE_KEY):
        load(path)


def test_a_truncated_nested_file_raises_checkpoint_error(tmp_path):
    path = tmp_path / "c"
    save({"model": {"w": np.ones((4, 4))}, "epoch": 2}, path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        load(path)


def test_flat_dicts_are_written_and_read_as_before(tmp_path, rng):
    arrays = {"w": rng.standard_normal((2, 3)), "b": np.arange(3, dtype=np.int32)}
    save(arrays, tmp_path / "new")
    # byte for byte what the safetensors library writes: files of older chainrule versions
    assert (tmp_path / "new").read_bytes() == safetensors.numpy.save(arrays)
    (tmp_path / "old").write_bytes(safetensors.numpy.save(arrays, metadata={"epoch": "3"}))
    loaded, metadata = load(tmp_path / "old", with_metadata=True)
    assert_same(loaded, arrays)
    assert metadata == {"epoch": "3"}
    save({"w": cr.tensor([1.0])}, tmp_path / "tensor")  # a Tensor value is still flat
    assert list(safetensors.numpy.load_file(tmp_path / "tensor")) == ["w"]
