"""cr.nn.describe: one registry of layer descriptions that the summary, ONNX export and the
lecture share; a user's layer joins them with one ``register`` call."""

import importlib.util

import numpy as np
import pytest

import chainrule as cr
from chainrule import lecture, nn
from chainrule.nn import describe as registry


@pytest.fixture(autouse=True)
def scratch_registry(monkeypatch):
    """Registrations made by a test are forgotten after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


class Swish(nn.Module):
    """y = x·σ(x)."""

    def forward(self, x):
        return x * x.sigmoid()


class SwishDescription(registry.LayerDescription):
    def output_shape(self, module, shape, l):
        return shape

    def symbol(self, l):
        return f"a[{l}] = f[{l}]·σ(f[{l}])"

    def to_onnx(self, module, graph, x, name, in_shape, out_shape):
        gate = graph.node("Sigmoid", [x], f"{name}.sigmoid")
        return graph.node("Mul", [x, gate], name)


def swish_model():
    cr.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), Swish(), nn.Linear(8, 3))


def test_every_built_in_layer_is_described_and_subclasses_inherit():
    for layer in (nn.Linear(2, 3), nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                  nn.BatchNorm1d(3), nn.Softmax(), nn.Dropout(0.1), nn.Identity()):  # fmt: skip
        assert registry.describe(layer).exportable, type(layer).__name__

    class Wider(nn.Linear):
        pass

    assert registry.describe(Wider(2, 3)) is registry.describe(nn.Linear)
    assert registry.describe(nn.Linear).weighted
    assert registry.describe(nn.ReLU).activation == "relu"
    assert not registry.describe(Swish()).exportable  # the default description


def test_an_unregistered_layer_is_summarised_by_running_it_but_not_exported(tmp_path):
    model = swish_model()
    table = str(model.summary((16,)))
    assert "Swish" in table and "(m, 8)" in table
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("onnx is not installed")
    with pytest.raises(cr.onnx.ExportError, match=r"layer 2 \(Swish\) is not supported"):
        cr.onnx.export(model, np.zeros((2, 16), dtype=np.float32), tmp_path / "m.onnx")


def test_a_registered_layer_joins_the_summary_and_the_onnx_export(tmp_path):
    registry.register(Swish, SwishDescription())
    model = swish_model()
    rows = model.summary((16,)).rows
    assert [r.symbol for r in rows][2] == "a[1] = f[1]·σ(f[1])"
    assert rows[3].symbol == "f[2] = W[2]ᵀ a[1]"
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("onnx is not installed")
    assert Swish in cr.onnx.supported_layers()
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    exported = cr.onnx.export(model, x, tmp_path / "swish.onnx")
    assert [node.op_type for node in exported.graph.node] == [
        "Flatten", "Gemm", "Sigmoid", "Mul", "Gemm"
    ]  # fmt: skip
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(tmp_path / "swish.onnx"))
    (got,) = session.run(None, {"input": x})
    with cr.no_grad():
        np.testing.assert_allclose(got, model(cr.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_a_registered_activation_takes_part_in_the_lectures_network():
    class Hyperbolic(nn.Module):
        def forward(self, x):
            return x.tanh()

    class HyperbolicDescription(registry.LayerDescription):
        lecture_role = "activation"
        activation = "tanh"

    with pytest.raises(ValueError, match=r"item 1 of the Sequential \(Hyperbolic\)"):
        lecture.Network.from_sequential(nn.Sequential(nn.Linear(3, 2), Hyperbolic()))
    registry.register(Hyperbolic, HyperbolicDescription())
    model = nn.Sequential(nn.Linear(3, 4), Hyperbolic(), nn.Linear(4, 2)).double()
    assert lecture.Network.from_sequential(model).activations == ["tanh", "identity"]
    x = np.random.default_rng(1).standard_normal((6, 3))
    lecture.compare(model, x, np.zeros((6, 2)), "mse").assert_agrees(1e-10)


def test_classes_are_matched_by_identity_not_by_name(tmp_path):
    class ReLU(nn.Module):  # named like nn.ReLU, but not one
        def forward(self, x):
            return x.relu()

    model = nn.Sequential(nn.Linear(3, 2), ReLU())
    with pytest.raises(ValueError, match="not a Linear layer or an element-wise activation"):
        lecture.Network.from_sequential(model)
    assert model.summary((3,)).rows[1].symbol == ""  # not the lecture's g
    if importlib.util.find_spec("onnx") is not None:
        with pytest.raises(cr.onnx.ExportError, match=r"layer 1 \(ReLU\) is not supported"):
            cr.onnx.export(model, np.zeros((1, 3), dtype=np.float32), tmp_path / "m.onnx")


def test_register_refuses_what_is_not_a_class_and_a_description():
    with pytest.raises(TypeError, match="expected a layer class"):
        registry.register(Swish(), SwishDescription())
    with pytest.raises(TypeError, match="expected a LayerDescription"):
        registry.register(Swish, object())


def test_the_summary_follows_flatten_over_any_axes():
    model = nn.Sequential(nn.Flatten(1, 2), nn.Linear(8, 3))
    assert model.check((2, 4, 8)) == ("m", 8, 3)
    assert model(cr.tensor(np.zeros((5, 2, 4, 8), dtype=np.float32))).shape == (5, 8, 3)
