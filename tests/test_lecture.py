"""chainrule.lecture: the slides' backprop in plain NumPy equals autodiff, and says so."""

import importlib
import itertools
import zlib

import numpy as np
import pytest

from chainrule import lecture, nn

# the module, not the function of the same name that chainrule.lecture exports
backprop_module = importlib.import_module("chainrule.lecture.backprop")

ACTIVATIONS = ("sigmoid", "tanh", "relu")
LOSSES = ("mse", "cross-entropy")


def random_case(rng, depth, activation, loss, batch):
    """A random network of ``depth`` layers and data for it (None batch: one example).

    ReLU networks are drawn again while every unit of some layer is dead for the data
    (all gradients below it would be 0, and the comparison would prove nothing).
    """
    # a ReLU output layer can be dead for every example too: give it none
    output = activation if loss == "mse" and activation != "relu" else "identity"
    while True:
        widths = [int(n) for n in rng.integers(2, 7, size=depth + 1)]
        seed = int(rng.integers(1e6))
        network = lecture.Network.random(widths, activation, output=output, seed=seed)
        shape = (widths[0],) if batch is None else (batch, widths[0])
        x = rng.standard_normal(shape)
        if all(np.any(layer.g_prime) for layer in lecture.forward(network, x).layers):
            break
    if loss == "mse":
        y = rng.standard_normal(shape[:-1] + (widths[-1],))
    elif batch is None:
        y = int(rng.integers(widths[-1]))
    else:
        y = rng.integers(widths[-1], size=batch)
    return network, x, y


@pytest.mark.parametrize(
    "depth, activation, loss, batch",
    list(itertools.product(range(1, 6), ACTIVATIONS, LOSSES, (None, 5))),
)
def test_manual_backprop_equals_autodiff(depth, activation, loss, batch):
    rng = np.random.default_rng(zlib.crc32(repr((depth, activation, loss, batch)).encode()))
    network, x, y = random_case(rng, depth, activation, loss, batch)
    for reduction in ("mean", "sum"):
        comparison = lecture.compare(network, x, y, loss, reduction)
        assert comparison.agrees(1e-10), comparison.table()
        # every quantity of every layer was compared, and the gradients are not all zero
        names = {d.name for d in comparison.differences}
        for l in range(1, depth + 1):
            assert {f"δ[{l}]", f"∂L/∂W[{l}]", f"∂L/∂b[{l}]"} <= names
        assert comparison.differences[2].name == "δ[1]" and comparison.differences[2].scale > 0


def test_probability_targets_equal_one_hot_labels(rng):
    network, x, labels = random_case(rng, 3, "tanh", "cross-entropy", 6)
    one_hot = np.eye(network.widths[-1])[labels]
    with_labels = lecture.backprop(network, x, labels, "cross-entropy")
    with_probs = lecture.backprop(network, x, one_hot, "cross-entropy")
    assert with_labels.value == pytest.approx(with_probs.value, abs=1e-14)
    soft = rng.dirichlet(np.ones(network.widths[-1]), size=6)
    assert lecture.compare(network, x, soft, "cross-entropy").agrees(1e-10)


def test_a_wrong_rule_is_caught(rng, monkeypatch):
    """The comparison can fail: a wrong g′ in the manual backprop shows up."""
    network, x, y = random_case(rng, 3, "sigmoid", "mse", 4)
    assert lecture.compare(network, x, y).agrees(1e-10)

    def wrong(name, f, a):
        return a  # σ′ = σ(1 − σ), not σ

    monkeypatch.setattr(backprop_module, "derivative", wrong)
    comparison = lecture.compare(network, x, y)
    assert not comparison.agrees(1e-10)
    with pytest.raises(AssertionError, match="differ by more than"):
        comparison.assert_agrees()


def test_one_layer_closed_form(rng):
    """ŷ = Wᵀx + b with MSE over n outputs: ∂L/∂W = x (2(ŷ − y)/n)ᵀ, by hand."""
    W = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    x = rng.standard_normal(4)
    y = rng.standard_normal(3)
    trace = lecture.backprop(lecture.Network([W], [b], ["identity"]), x, y)
    residual = W.T @ x + b - y
    np.testing.assert_allclose(trace.value, np.mean(residual**2), rtol=1e-14)
    np.testing.assert_allclose(trace.layers[0].dW, np.outer(x, 2 * residual / 3), rtol=1e-14)
    np.testing.assert_allclose(trace.layers[0].db[:, 0], 2 * residual / 3, rtol=1e-14)


def test_columns_and_rows_are_the_same_computation(rng):
    """One example in columns equals a batch of one in rows, transposed; and a batch with
    the sum reduction adds up the per-example gradients."""
    network, x, y = random_case(rng, 3, "tanh", "mse", 4)
    batch = lecture.backprop(network, x, y, reduction="sum")
    singles = [lecture.backprop(network, x[i], y[i], reduction="sum") for i in range(4)]
    for l in range(3):
        total = sum(s.layers[l].dW for s in singles)
        np.testing.assert_allclose(batch.layers[l].dW, total, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batch.layers[l].delta[0], singles[0].layers[l].delta[:, 0])
        assert singles[0].layers[l].f.shape == (network.widths[l + 1], 1)  # a column
        assert batch.layers[l].f.shape == (4, network.widths[l + 1])  # rows


def test_shapes_follow_the_lecture(rng):
    network = lecture.Network.random([4, 3, 2], seed=0)
    trace = lecture.backprop(network, rng.standard_normal(4), rng.uniform(size=2))
    first, second = trace.layers
    assert first.W.shape == (4, 3) and first.dW.shape == (4, 3)  # n[l−1]×n[l]
    assert first.a_prev.shape == (4, 1) and first.f.shape == (3, 1) and first.delta.shape == (3, 1)
    assert second.a.shape == (2, 1) and trace.dL_da.shape == (2, 1)
    # δ[1] = g′(f[1]) ∘ (W[2] δ[2]), written out once more
    np.testing.assert_allclose(first.delta, first.g_prime * (second.W @ second.delta))


def test_float32_network_agrees_to_float32_precision(rng):
    network = lecture.Network.random([5, 4, 3], "tanh", seed=3, dtype=np.float32)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    comparison = lecture.compare(network, x, rng.standard_normal((6, 3)))
    assert comparison.trace.layers[0].dW.dtype == np.float32
    assert comparison.agrees(1e-5)


def test_no_bias_layers(rng):
    network = lecture.Network.random([3, 4, 2], "relu", seed=1, bias=False)
    comparison = lecture.compare(network, rng.standard_normal(3), rng.standard_normal(2))
    assert comparison.agrees(1e-10)
    assert all(layer.db is None for layer in comparison.trace.layers)


# ------------------------------------------------------------------------- nn.Sequential
@pytest.mark.parametrize("activation", ["ReLU", "Sigmoid", "Tanh"])
@pytest.mark.parametrize("loss", [nn.MSELoss(), nn.CrossEntropyLoss(reduction="sum")])
def test_sequential_matches_its_autodiff(activation, loss, rng):
    act = getattr(nn, activation)
    model = nn.Sequential(
        nn.Linear(5, 4, generator=rng), act(), nn.Linear(4, 4, generator=rng), act(),
        nn.Linear(4, 3, generator=rng),
    ).double()  # fmt: skip
    x = rng.standard_normal((7, 5))
    y = rng.standard_normal((7, 3)) if isinstance(loss, nn.MSELoss) else rng.integers(3, size=7)
    comparison = lecture.compare(model, x, y, loss)
    assert comparison.agrees(1e-10), comparison.table()
    network = comparison.trace.network
    assert network.activations == [activation.lower()] * 2 + ["identity"]
    assert network.weights[0] is model[0].weight.data  # shared, not copied


def test_sequential_with_unsupported_modules_is_refused():
    with pytest.raises(ValueError, match=r"item 1 of the Sequential \(Dropout\)"):
        lecture.Network.from_sequential(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)))
    with pytest.raises(ValueError, match="before the first Linear"):
        lecture.Network.from_sequential(nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="after an activation"):
        lecture.Network.from_sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Tanh()))


# ------------------------------------------------------------------------- errors
def test_shape_errors_in_the_lectures_words(rng):
    with pytest.raises(
        ValueError, match=r"layer 2: f\[2\] = W\[2\]ᵀ a\[1\] needs a\[1\] with 256 features, "
        r"got 128"
    ):  # fmt: skip
        lecture.Network([np.zeros((784, 128)), np.zeros((256, 10))], [None, None], ["relu"] * 2)
    network = lecture.Network.random([4, 3, 2])
    with pytest.raises(ValueError, match=r"layer 1: f\[1\] = W\[1\]ᵀ a\[0\] needs a\[0\] "
                       r"with 4 features, got 3"):  # fmt: skip
        lecture.forward(network, np.zeros((5, 3)))
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"layer 2: f\[2\] = W\[2\]ᵀ a\[1\] needs a\[1\] with 5"):
        lecture.Network.from_sequential(model)


def test_target_errors_name_both_shapes():
    network = lecture.Network.random([4, 3, 2])
    with pytest.raises(ValueError, match=r"ŷ = a\[L\] has shape .*\(5, 2\).*y has shape \(5, 3\)"):
        lecture.backprop(network, np.zeros((5, 4)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"class labels must be in 0 … 1"):
        lecture.backprop(network, np.zeros(4), 2, loss="cross-entropy")
    with pytest.raises(ValueError, match="unknown loss"):
        lecture.backprop(network, np.zeros(4), np.zeros(2), loss="hinge")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        lecture.Network.random([2, 2], activation="swish")
    with pytest.raises(ValueError, match="KLDivLoss|knows MSELoss"):
        lecture.compare(network, np.zeros(4), np.zeros(2), loss=nn.L1Loss())


def test_manual_gradients_agree_with_torch(rng):
    torch = pytest.importorskip("torch")
    network, x, y = random_case(rng, 3, "tanh", "cross-entropy", 5)
    trace = lecture.backprop(network, x, y, "cross-entropy")
    ws = [torch.tensor(w, requires_grad=True) for w in network.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in network.biases]
    h = torch.tensor(x)
    for l, (w, b) in enumerate(zip(ws, bs)):
        h = h @ w + b
        h = torch.tanh(h) if l < 2 else h
    torch.nn.functional.cross_entropy(h, torch.tensor(y)).backward()
    for layer, w, b in zip(trace.layers, ws, bs):
        np.testing.assert_allclose(layer.dW, w.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.db, b.grad.numpy(), rtol=1e-10, atol=1e-12)
