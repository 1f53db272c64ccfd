"""Float32 stays float32, and float32 reductions are accurate.

Covered elsewhere: every op of ``tests/op_specs.py`` keeps float32 and float64 through its
forward and first-order gradients (``tests/test_ops.py``), NumPy float64 scalars do not
promote (``tests/test_ops.py``), optimizers keep float32 state for one parameter
(``tests/test_optim.py``), a CNN stays float32 (``tests/nn/test_nn_layers.py``). Here: the
same table under ``create_graph`` (second-order gradients), every loss with every reduction
and target dtype, every optimizer with its schedulers through a training loop, the
functional transforms, and the accuracy of float32 reductions along any axis.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine, nn, optim
from chainrule.nn import functional as F
from op_specs import OP_SPECS, spec_id

F32 = np.dtype(np.float32)
DIFFERENTIABLE = [s for s in OP_SPECS if s.differentiable]


# ------------------------------------------------------------------ every op, second order
@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_float32_is_kept_by_gradients_of_gradients(spec, rng):
    xs = [cr.tensor(a, requires_grad=True) for a in spec.inputs(rng, np.float32)]
    out = spec.fn(*xs)
    seed = cr.tensor(rng.standard_normal(out.shape).astype(np.float32))
    grads = engine.grad(out, xs, grad_outputs=seed, create_graph=True)
    for x, g in zip(xs, grads):
        assert g.dtype == F32 and g.shape == x.shape
    total = sum((g * g).sum() for g in grads)
    if total.requires_grad:  # not for ops whose gradient is a constant (add, reshape, ...)
        for x, gg in zip(xs, engine.grad(total, xs)):
            assert gg.dtype == F32 and gg.shape == x.shape


def test_functional_transforms_keep_float32():
    x = cr.tensor(np.array([0.5, -1.0, 2.0], dtype=np.float32))

    def f(t):
        return (t.tanh() * t).sum()

    assert cr.grad(f)(x).dtype == F32
    value, gradient = cr.value_and_grad(f)(x)
    assert value.dtype == F32 and gradient.dtype == F32
    assert cr.hessian(f)(x).dtype == F32
    assert cr.jacobian(lambda t: t.exp() * 2.0)(x).dtype == F32
    out, vjp_fn = cr.vjp(lambda t: t.sigmoid(), x)
    assert out.dtype == F32 and vjp_fn(np.ones(3))[0].dtype == F32  # a float64 cotangent
    out, tangent = cr.jvp(lambda t: t.sqrt(), (x * x,), (np.ones(3),))
    assert out.dtype == F32 and tangent.dtype == F32


# ------------------------------------------------------------------ every loss
LOSSES = [
    ("mse", nn.MSELoss, "regression"),
    ("l1", nn.L1Loss, "regression"),
    ("rmse", nn.RMSELoss, "regression"),
    ("bce", nn.BCEWithLogitsLoss, "binary"),
    ("cross_entropy-labels", nn.CrossEntropyLoss, "labels"),
    ("cross_entropy-probabilities", nn.CrossEntropyLoss, "probabilities"),
]


def _target(kind, rng, as_dtype):
    if kind == "labels":
        return rng.integers(0, 3, 4).astype(as_dtype)
    if kind == "probabilities":
        return rng.dirichlet(np.ones(3), 4).astype(as_dtype)
    values = rng.uniform(0, 1, (4, 3)) if kind == "binary" else rng.standard_normal((4, 3))
    return values.astype(as_dtype)


TARGET_DTYPES = {
    "labels": [np.int64, np.int32, np.uint8],
    "probabilities": [np.float64, np.float32],
    "binary": [np.float64, np.float32, np.int64],
    "regression": [np.float64, np.float32, np.int64],
}


def _loss_params():
    for name, loss_class, kind in LOSSES:
        for target_dtype in TARGET_DTYPES[kind]:
            for reduction in ("mean", "sum", "none"):
                label = f"{name}-{np.dtype(target_dtype).name}-{reduction}"
                yield pytest.param(loss_class, kind, target_dtype, reduction, id=label)


@pytest.mark.parametrize("loss_class, kind, target_dtype, reduction", list(_loss_params()))
def test_every_loss_keeps_float32(loss_class, kind, target_dtype, reduction, rng):
    prediction = cr.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    target = _target(kind, rng, target_dtype)
    loss = loss_class(reduction=reduction)(prediction, target)
    assert loss.dtype == F32
    loss.sum().backward()
    assert prediction.grad.dtype == F32
    again = cr.tensor(prediction.data, requires_grad=True)
    (g,) = engine.grad(loss_class(reduction=reduction)(again, target).sum(), [again],
                       create_graph=True)  # fmt: skip
    assert g.dtype == F32


def test_a_float32_target_that_requires_grad_gets_a_float32_gradient(rng):
    prediction = cr.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    target = cr.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    for loss in (F.mse_loss, F.l1_loss, F.rmse_loss, F.binary_cross_entropy_with_logits):
        prediction.grad = target.grad = None
        loss(prediction, target).backward()
        assert prediction.grad.dtype == F32 and target.grad.dtype == F32


# ------------------------------------------------------------------ every optimizer step
OPTIMIZERS = [
    ("sgd", lambda ps: optim.SGD(ps, lr=0.05)),
    ("sgd-momentum", lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9)),
    ("sgd-momentum-wd", lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3)),
    ("sgd-nesterov-wd",
     lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("sgd-dampening", lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3)),
    ("adam", lambda ps: optim.Adam(ps, lr=1e-2)),
    ("adam-wd", lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3)),
    ("adamw", lambda ps: optim.AdamW(ps, lr=1e-2)),
    # hyper-parameters as NumPy float64 scalars (e.g. from np.linspace) must not promote
    ("sgd-numpy-scalars", lambda ps: optim.SGD(
        ps, lr=np.float64(0.05), momentum=np.float64(0.9), weight_decay=np.float64(1e-3))),
    ("adamw-numpy-scalars", lambda ps: optim.AdamW(
        ps, lr=np.float64(1e-2), betas=(np.float64(0.9), np.float64(0.99)),
        eps=np.float64(1e-8), weight_decay=np.float64(1e-2))),
]  # fmt: skip
SCHEDULERS = [
    ("constant", None),
    ("step", lambda opt: optim.lr_scheduler.StepLR(opt, step_size=2, gamma=np.float64(0.5))),
    ("cosine", lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-4)),
]


def _mlp():
    cr.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 2)
    )


@pytest.mark.parametrize("schedule", [s for _, s in SCHEDULERS], ids=[n for n, _ in SCHEDULERS])
@pytest.mark.parametrize("make", [m for _, m in OPTIMIZERS], ids=[n for n, _ in OPTIMIZERS])
def test_training_keeps_parameters_gradients_and_state_float32(make, schedule, rng):
    model = _mlp()
    opt = make(model.parameters())
    scheduler = schedule(opt) if schedule else None
    x = rng.standard_normal((16, 3))  # float64 data: the model's float32 wins
    y = rng.integers(0, 2, 16)
    for _ in range(5):
        opt.zero_grad()
        loss = F.cross_entropy(model(cr.tensor(x.astype(np.float32))), y)
        assert loss.dtype == F32
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    for name, value in model.state_dict().items():
        assert value.dtype == F32, name
    for p in model.parameters():
        assert p.dtype == F32 and p.grad.dtype == F32
    for entry in opt.state:
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == F32, key
    assert isinstance(opt.param_groups[0]["lr"], float)


@pytest.mark.parametrize("make", [m for _, m in OPTIMIZERS], ids=[n for n, _ in OPTIMIZERS])
def test_a_float64_gradient_set_by_hand_does_not_promote_the_state(make):
    p = nn.Parameter(np.array([1.0, -2.0, 0.5], dtype=np.float32))
    opt = make([p])
    for _ in range(3):
        p.grad = cr.tensor(np.array([0.3, -0.1, 0.2]))  # float64
        opt.step()
    assert p.dtype == F32
    for key, value in opt.state[0].items():
        if isinstance(value, np.ndarray):
            assert value.dtype == F32, key


def test_dropout_with_a_numpy_float64_probability_keeps_float32():
    x = cr.tensor(np.ones((4, 5), dtype=np.float32), requires_grad=True)
    y = F.dropout(x, p=np.float64(0.2), generator=np.random.default_rng(0))
    assert y.dtype == F32
    y.sum().backward()
    assert x.grad.dtype == F32
    assert nn.Dropout(np.float64(0.2))(x).dtype == F32


# ------------------------------------------------------------------ accurate reductions
N = 1_000_000


@pytest.fixture(scope="module")
def tenths():
    """(1,000,000 × 2) float32 of 0.1: NumPy's own mean along axis 0 is ~1% off."""
    return np.full((N, 2), 0.1, dtype=np.float32)


def _exact(x, reduce, axis):
    return reduce(x.astype(np.float64), axis=axis)


def test_plain_numpy_is_inaccurate_here(tenths):
    """The premise: without float64 accumulation the test below would fail."""
    error = abs(np.mean(tenths, axis=0)[0] / np.float32(0.1) - 1)
    assert error > 1e-3


@pytest.mark.parametrize("axis", [0, 1, None, (0, 1)], ids=["axis0", "axis1", "all", "both"])
@pytest.mark.parametrize("name", ["mean", "sum", "var"])
def test_float32_reductions_are_accurate_along_any_axis(tenths, name, axis):
    values = tenths.copy()
    if name == "var":
        values[::2] = 0.3  # a variance that is not 0 (0.01)
    result = getattr(cr, name)(cr.tensor(values), axis=axis)
    assert result.dtype == F32
    expected = _exact(values, getattr(np, name), axis)
    np.testing.assert_allclose(result.data, expected, rtol=1e-6)


def test_the_transposed_layout_is_accurate_too(tenths):
    wide = np.ascontiguousarray(tenths.T)  # (2, 1,000,000): the reduced axis is contiguous
    np.testing.assert_allclose(cr.mean(cr.tensor(wide), axis=1).data, 0.1, rtol=1e-6)


def test_gradient_of_a_float32_mean_is_exactly_one_over_n(tenths):
    x = cr.tensor(tenths, requires_grad=True)
    x.mean().backward()
    assert x.grad.dtype == F32
    assert np.all(x.grad.data == np.float32(1.0 / tenths.size))


def test_float32_logsumexp_is_accurate_along_a_long_axis_too():
    """With equal entries every exp is 1 and a float32 sum of ones is exact."""
    x = cr.tensor(np.zeros((N, 2), dtype=np.float32))
    np.testing.assert_allclose(cr.logsumexp(x, axis=0).data, np.log(N), rtol=1e-6)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_float32_softmax_family_is_accurate_along_a_long_axis(name):
    values = np.zeros((N, 2), dtype=np.float32)
    values[1::2] = -1.0
    exact = values.astype(np.float64)
    shift = np.log(np.exp(exact).sum(axis=0))
    expected = {"logsumexp": shift, "softmax": np.exp(exact - shift), "log_softmax": exact - shift}
    result = getattr(cr, name)(cr.tensor(values), axis=0)
    np.testing.assert_allclose(result.data, expected[name], rtol=1e-6)


def test_the_gradient_of_a_broadcast_bias_is_accurate(tenths):
    bias = cr.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    (cr.tensor(tenths) + bias).sum().backward()
    np.testing.assert_allclose(bias.grad.data, N, rtol=1e-6)
    weight = cr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    (cr.tensor(tenths) * weight).sum().backward()
    np.testing.assert_allclose(weight.grad.data, _exact(tenths, np.sum, 0), rtol=1e-6)
