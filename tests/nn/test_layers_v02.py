"""The v0.2 layers against PyTorch: GELU, SiLU, LeakyReLU, ELU, Softplus, LayerNorm and
Embedding (modules and ``F`` forms), Flatten's ``start_dim``/``end_dim`` and the gradient
clipping of ``cr.nn.utils``; values and gradients in float64, gradcheck and gradgradcheck,
the kinks' conventions, float32, the summary and ONNX export."""

import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _torch():
    return pytest.importorskip("torch")


def _against_torch(ours, theirs, arrays, rng):
    """Same values and same gradients w.r.t. every array, for a random upstream gradient."""
    torch = _torch()
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, t_y = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(y.data, t_y.detach().numpy(), **TOL)
    upstream = rng.standard_normal(y.shape)
    y.backward(cr.tensor(upstream))
    t_y.backward(torch.tensor(upstream))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), **TOL)


def _inputs(rng, shape=(3, 4), scale=3.0):
    """Normal inputs with 0 among them (the kinks) and a large value each way."""
    x = rng.standard_normal(shape) * scale
    x.flat[0], x.flat[1], x.flat[2] = 0.0, 40.0, -40.0
    return x


# (name, our F call, torch's F call, module, torch module)
ACTIVATIONS = [
    ("gelu", F.gelu, "gelu", nn.GELU, "GELU", {}),
    ("silu", F.silu, "silu", nn.SiLU, "SiLU", {}),
    ("leaky_relu", F.leaky_relu, "leaky_relu", nn.LeakyReLU, "LeakyReLU", {}),
    ("leaky_relu-0.2", F.leaky_relu, "leaky_relu", nn.LeakyReLU, "LeakyReLU",
     {"negative_slope": 0.2}),
    ("elu", F.elu, "elu", nn.ELU, "ELU", {}),
    ("elu-1.7", F.elu, "elu", nn.ELU, "ELU", {"alpha": 1.7}),
    ("softplus", F.softplus, "softplus", nn.Softplus, "Softplus", {}),
    ("softplus-beta", F.softplus, "softplus", nn.Softplus, "Softplus",
     {"beta": 2.5, "threshold": 7.0}),
]  # fmt: skip


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activation_matches_torch_including_zero_and_large_inputs(case, rng):
    torch = _torch()
    _, ours, theirs, _, _, kwargs = case
    _against_torch(
        lambda x: ours(x, **kwargs), lambda x: getattr(torch.nn.functional, theirs)(x, **kwargs),
        [_inputs(rng)], rng,
    )  # fmt: skip


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activation_module_is_its_functional_form(case, rng):
    torch = _torch()
    _, _, _, ours, theirs, kwargs = case
    _against_torch(ours(**kwargs), getattr(torch.nn, theirs)(**kwargs), [_inputs(rng)], rng)


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activation_gradcheck_and_gradgradcheck(case, rng):
    _, ours, _, _, _, kwargs = case
    x = rng.uniform(0.1, 3.0, (2, 3)) * rng.choice([-1.0, 1.0], (2, 3))  # off the kink
    x[0, 0] = 12.0  # softplus-beta: β·x above its threshold of 7
    x = cr.tensor(x, requires_grad=True)
    assert cr.gradcheck(lambda t: ours(t, **kwargs), x)
    assert cr.gradgradcheck(lambda t: ours(t, **kwargs), x)


def test_conventions_at_the_kinks():
    zero = cr.tensor(np.zeros(1), requires_grad=True)
    F.leaky_relu(zero, 0.3).sum().backward()
    assert zero.grad.data.tolist() == [0.3]  # the left slope, as PyTorch
    zero.grad = None
    F.elu(zero, 1.7).sum().backward()
    assert zero.grad.data.tolist() == [1.7]  # α·e⁰, the left side, as PyTorch


def test_elu_and_gelu_do_not_overflow_far_out():
    x = cr.tensor([1e4, -1e4, 800.0], requires_grad=True)
    for f in (F.elu, F.gelu, F.silu, F.softplus):
        x.grad = None
        y = f(x)
        y.sum().backward()
        assert np.isfinite(y.data).all() and np.isfinite(x.grad.data).all(), f.__name__


def test_softplus_above_threshold_is_the_identity():
    x = cr.tensor([10.0, 21.0, 50.0], requires_grad=True)
    y = F.softplus(x, beta=2.0, threshold=20.0)  # βx = 20 (not above), 42, 100
    y.sum().backward()
    assert y.data[1:].tolist() == [21.0, 50.0]
    assert x.grad.data[1:].tolist() == [1.0, 1.0]
    assert y.data[0] == pytest.approx(math.log1p(math.exp(20.0)) / 2.0)


def test_softplus_rejects_a_non_positive_beta():
    with pytest.raises(ValueError, match="beta must be positive"):
        F.softplus(cr.tensor([1.0]), beta=0.0)
    with pytest.raises(ValueError, match="beta must be positive"):
        nn.Softplus(beta=-1.0)


@pytest.mark.parametrize(
    "layer",
    [nn.GELU(), nn.SiLU(), nn.LeakyReLU(), nn.ELU(), nn.Softplus(beta=2.0), nn.LayerNorm(4)],
    ids=lambda m: type(m).__name__,
)
def test_float32_stays_float32(layer, rng):
    x = cr.tensor(rng.standard_normal((2, 4)).astype(np.float32), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


# ----------------------------------------------------------------------- layer norm
@pytest.mark.parametrize("shape, normalized", [((3, 5), (5,)), ((2, 3, 4), (3, 4)), ((4,), 4)])
def test_layer_norm_matches_torch(shape, normalized, rng):
    torch = _torch()
    trailing = (normalized,) if isinstance(normalized, int) else normalized
    x = rng.standard_normal(shape) * 2 + 1
    w, b = rng.standard_normal(trailing), rng.standard_normal(trailing)
    _against_torch(
        lambda x, w, b: F.layer_norm(x, normalized, w, b, eps=1e-3),
        lambda x, w, b: torch.nn.functional.layer_norm(x, trailing, w, b, eps=1e-3),
        [x, w, b], rng,
    )  # fmt: skip
    _against_torch(
        lambda x: F.layer_norm(x, normalized),
        lambda x: torch.nn.functional.layer_norm(x, trailing), [x], rng,
    )  # fmt: skip


def test_layer_norm_module_matches_torch_with_its_parameters(rng):
    torch = _torch()
    ours, theirs = nn.LayerNorm((3, 4), eps=1e-4), torch.nn.LayerNorm((3, 4), eps=1e-4)
    ours.astype(np.float64)
    theirs = theirs.double()
    w, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ours.weight.data[...], ours.bias.data[...] = w, b
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
        theirs.bias.copy_(torch.tensor(b))
    x = rng.standard_normal((2, 3, 4))
    y, t_y = ours(cr.tensor(x)), theirs(torch.tensor(x))
    upstream = rng.standard_normal(y.shape)
    y.backward(cr.tensor(upstream))
    t_y.backward(torch.tensor(upstream))
    np.testing.assert_allclose(y.data, t_y.detach().numpy(), **TOL)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), **TOL)
    np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), **TOL)


def test_layer_norm_defaults_and_options():
    layer = nn.LayerNorm(4)
    assert layer.weight.data.tolist() == [1.0] * 4 and layer.bias.data.tolist() == [0.0] * 4
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).parameters()) == []
    assert [n for n, _ in nn.LayerNorm(4, bias=False).named_parameters()] == ["weight"]
    y = nn.LayerNorm(4)(cr.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert np.mean(y.data) == pytest.approx(0.0, abs=1e-6)
    assert np.mean(y.data**2) == pytest.approx(1.0, abs=1e-4)


def test_layer_norm_gradcheck_and_gradgradcheck(rng):
    x = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = cr.tensor(rng.standard_normal(3), requires_grad=True)
    b = cr.tensor(rng.standard_normal(3), requires_grad=True)
    assert cr.gradcheck(lambda x, w, b: F.layer_norm(x, 3, w, b), (x, w, b))
    assert cr.gradgradcheck(lambda x, w, b: F.layer_norm(x, 3, w, b), (x, w, b))


def test_layer_norm_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) does not end with normalized_shape \(4,\)"):
        F.layer_norm(cr.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match=r"weight has shape \(2,\), expected"):
        F.layer_norm(cr.zeros((2, 3)), 3, weight=np.ones(2))
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(())


# ----------------------------------------------------------------------- embedding
def test_embedding_matches_torch_for_indices_of_any_shape(rng):
    torch = _torch()
    weight = rng.standard_normal((6, 3))
    for indices in (np.array([0, 5, 0, 2]), np.array([[1, 1], [4, 0], [3, 3]]), np.array(2)):
        _against_torch(
            lambda w, i=indices: F.embedding(i, w),
            lambda w, i=indices: torch.nn.functional.embedding(torch.tensor(i), w), [weight],
            rng,
        )  # fmt: skip


def test_embedding_module_shape_init_and_repeated_rows():
    layer = nn.Embedding(1000, 8, generator=np.random.default_rng(0))
    assert layer.weight.shape == (1000, 8) and layer.weight.dtype == np.float32
    assert abs(layer.weight.data.mean()) < 0.05 and abs(layer.weight.data.std() - 1) < 0.05
    y = layer(cr.tensor(np.array([[3, 3, 7]])))
    assert y.shape == (1, 3, 8) and y.dtype == np.float32
    y.sum().backward()
    counts = np.zeros(1000)
    counts[3], counts[7] = 2, 1
    np.testing.assert_array_equal(layer.weight.grad.data, np.repeat(counts[:, None], 8, 1))
    assert repr(layer) == "Embedding(1000, 8)"


def test_embedding_gradcheck_and_gradgradcheck(rng):
    w = cr.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    indices = np.array([[0, 3], [3, 3]])
    assert cr.gradcheck(lambda w: F.embedding(indices, w), w)
    assert cr.gradgradcheck(lambda w: F.embedding(indices, w) ** 2, w)


def test_embedding_refuses_bad_indices():
    layer = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"in \[0, 4\] for 5 embeddings; got .*\[-1, 5\]"):
        layer(np.array([0, 5, -1]))
    with pytest.raises(TypeError, match="indices must be integers, got dtype float32"):
        layer(cr.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        F.embedding(np.array([0]), cr.zeros((3,)))


# ----------------------------------------------------------------------- Flatten
def test_flatten_takes_pytorch_start_dim_and_end_dim():
    x = cr.zeros((2, 3, 4, 5))
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    assert nn.Flatten(start_dim=0, end_dim=1)(x).shape == (6, 4, 5)
    assert nn.Flatten(end_dim=2)(x).shape == (2, 12, 5)
    assert nn.Flatten(start_dim=2).start_axis == 2
    with pytest.raises(TypeError, match="start_axis or start_dim"):
        nn.Flatten(start_axis=2, start_dim=2)
    with pytest.raises(TypeError, match="end_axis or end_dim"):
        nn.Flatten(end_axis=2, end_dim=2)


def test_flatten_matches_torch_with_the_same_keywords():
    torch = _torch()
    x = np.zeros((2, 3, 4, 5))
    for kwargs in ({"start_dim": 1, "end_dim": 2}, {"start_dim": 0}, {"end_dim": -2}):
        assert nn.Flatten(**kwargs)(x).shape == tuple(torch.nn.Flatten(**kwargs)(
            torch.tensor(x)).shape)  # fmt: skip


# ----------------------------------------------------------------------- clipping
def _parameter_pairs(rng, dtype=np.float64):
    """Three parameters with gradients, one without, here and in torch."""
    torch = _torch()
    shapes = [(3, 4), (4,), (2, 2, 2)]
    ours, theirs = [], []
    for shape in shapes:
        value, grad = rng.standard_normal(shape), rng.standard_normal(shape) * 3
        p = cr.tensor(value.astype(dtype), requires_grad=True)
        p.grad = cr.tensor(grad.astype(dtype))
        t = torch.tensor(value.astype(dtype), requires_grad=True)
        t.grad = torch.tensor(grad.astype(dtype))
        ours.append(p)
        theirs.append(t)
    ours.append(cr.tensor(np.ones(3, dtype), requires_grad=True))  # no grad: skipped
    theirs.append(torch.ones(3, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True))
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, rng):
    torch = _torch()
    ours, theirs = _parameter_pairs(rng)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, cr.Tensor) and total.shape == () and total.dtype == np.float64
    assert total.item() == pytest.approx(t_total.item(), rel=1e-12)
    for p, t in zip(ours, theirs):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12)
    if max_norm < total.item():  # clipped: the new norm is max_norm, just under
        grads = np.concatenate([p.grad.data.ravel() for p in ours if p.grad is not None])
        new = np.max(np.abs(grads)) if math.isinf(norm_type) else np.linalg.norm(grads, norm_type)
        assert new == pytest.approx(max_norm, rel=1e-5) and new < max_norm


def test_clip_grad_norm_on_a_model_one_tensor_float32_and_no_grads(rng):
    model = nn.Linear(3, 2)
    model(cr.tensor(rng.standard_normal((4, 3)).astype(np.float32))).sum().backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    assert total.dtype == np.float32 and model.weight.grad.dtype == np.float32
    after = np.sqrt(sum((p.grad.data.astype(np.float64) ** 2).sum() for p in model.parameters()))
    assert after == pytest.approx(0.1, rel=1e-4)
    single = cr.tensor([3.0, 4.0], requires_grad=True)
    single.grad = cr.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(single, 1.0).item() == pytest.approx(5.0)
    assert single.grad.data.tolist() == pytest.approx([0.6, 0.8], rel=1e-5)
    assert nn.utils.clip_grad_norm_([cr.tensor([1.0], requires_grad=True)], 1.0).item() == 0.0


def test_clip_grad_norm_errors():
    p = cr.tensor([1.0], requires_grad=True)
    p.grad = cr.tensor([np.inf])
    with pytest.raises(ValueError, match="is inf"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="norm_type must be positive"):
        nn.utils.clip_grad_norm_([p], 1.0, norm_type=0)
    with pytest.raises(TypeError, match="parameter 0 is a list"):
        nn.utils.clip_grad_norm_([[1.0]], 1.0)


def test_clip_grad_value_matches_torch(rng):
    torch = _torch()
    ours, theirs = _parameter_pairs(rng)
    assert nn.utils.clip_grad_value_(ours, 1.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, t in zip(ours, theirs):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad.data, t.grad.numpy())
            assert np.abs(p.grad.data).max() <= 1.5
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        nn.utils.clip_grad_value_(ours, -1.0)


# ----------------------------------------------------------------------- tools
def _model():
    return nn.Sequential(
        nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 8), nn.SiLU(),
        nn.LeakyReLU(0.1), nn.ELU(0.5), nn.Softplus(), nn.Linear(8, 2),
    )  # fmt: skip


def test_summary_of_a_model_with_the_new_layers():
    text = str(_model().summary((6,)))
    for name in ("LayerNorm", "GELU", "SiLU", "LeakyReLU", "ELU", "Softplus"):
        assert name in text
    assert "(m, 2)" in text and "Total params: 162" in text
    tokens = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(start_dim=1), nn.Linear(12, 3))
    text = str(tokens.summary((3,)))
    assert "(m, 3, 4)" in text and "(m, 12)" in text and "Total params: 79" in text
    with pytest.raises(ValueError, match="LayerNorm over"):
        nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(8)).summary((6,))


def test_onnx_export_of_the_exportable_new_layers(tmp_path, rng):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = nn.Sequential(
        nn.Linear(6, 8), nn.LayerNorm(8), nn.SiLU(), nn.LeakyReLU(0.1), nn.ELU(0.5),
        nn.Linear(8, 2),
    )  # fmt: skip
    x = rng.standard_normal((5, 6)).astype(np.float32)
    path = tmp_path / "model.onnx"
    cr.onnx.export(model, cr.tensor(x), path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    model.eval()
    np.testing.assert_allclose(out, model(cr.tensor(x)).data, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", [nn.GELU(), nn.Softplus(), nn.Embedding(4, 2)])
def test_onnx_export_names_the_unsupported_new_layers(layer, tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(cr.onnx.ExportError, match=f"{type(layer).__name__}.* is not supported"):
        cr.onnx.export(nn.Sequential(layer), cr.tensor(np.zeros((1, 2))), tmp_path / "m.onnx")


EXTREMES = np.array([-1e4, -1000.0, -1.0, 0.0, 1.0, 1000.0, 1e4])


def _closed_forms():
    special = pytest.importorskip("scipy.special")
    phi = np.exp(-0.5 * np.minimum(EXTREMES**2, 1e6)) / np.sqrt(2 * np.pi)
    s, cdf = special.expit(EXTREMES), special.ndtr(EXTREMES)
    return [
        ("gelu", F.gelu, EXTREMES * cdf, cdf + EXTREMES * phi),
        ("silu", F.silu, EXTREMES * s, s * (1 + EXTREMES * (1 - s))),
        ("elu", F.elu, np.where(EXTREMES > 0, EXTREMES, np.expm1(np.minimum(EXTREMES, 0))),
         np.where(EXTREMES > 0, 1.0, np.exp(np.minimum(EXTREMES, 0)))),
        ("leaky_relu", F.leaky_relu, np.where(EXTREMES > 0, EXTREMES, 0.01 * EXTREMES),
         np.where(EXTREMES > 0, 1.0, 0.01)),
        ("softplus", F.softplus, np.where(EXTREMES > 20, EXTREMES, np.logaddexp(0, EXTREMES)),
         np.where(EXTREMES > 20, 1.0, s)),
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_at_the_extremes_are_exact_without_warnings(dtype):
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    for name, f, value, slope in _closed_forms():
        x = cr.tensor(EXTREMES.astype(dtype), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = f(x)
            y.sum().backward()
        assert y.dtype == dtype and x.grad.dtype == dtype, name
        np.testing.assert_allclose(y.data, value, rtol=rtol, atol=1e-30, err_msg=name)
        np.testing.assert_allclose(x.grad.data, slope, rtol=rtol, atol=1e-30, err_msg=name)
