"""Stable numerics at the extremes, in float32 and float64.

Every function of the issue's item 1 is evaluated at logits of ±1000 and ±1e4 (and at
neighbours 1 and 2 apart, where the rounding of a large shift shows), and both its value
and its gradient are compared with a float64 reference computed independently (SciPy's
special functions and closed-form derivatives), with NumPy RuntimeWarnings turned into
errors. Where else this area is tested: finiteness of softmax/log_softmax/logsumexp/
sigmoid (``tests/test_ops.py``, stability section) and of the losses
(``tests/nn/test_nn_losses.py``), float64 values at the extremes and the kink conventions
(``tests/test_ops.py``, kinks section).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import special

import chainrule as cr
from chainrule.nn import functional as F

SCALES = [1000.0, 1e4]
DTYPES = [np.float32, np.float64]
# float32 gets a few ulps of the result; float64 near machine precision.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-7, np.float64: 1e-300}


def logits(scale: float) -> np.ndarray:
    """Rows with a huge winner, huge negative logits only, and near-ties at the top."""
    s = scale
    return np.array(
        [
            [s, -s, 0.0, 1.0],
            [-s, -s, -s + 1.0, -s + 2.0],
            [s, s - 1.0, s - 2.0, -s],
        ]
    )


LABELS = np.array([1, 3, 1])  # a loss of 2s, a tiny loss, a loss of about 1.4
PROBABILITIES = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 0.0, 0.25, 0.75], [0.2, 0.3, 0.5, 0.0]])
BINARY = np.array([[1.0, 0.0, 0.5, 0.25], [0.0, 1.0, 1.0, 0.0], [1.0, 0.5, 0.0, 1.0]])
WEIGHTS = np.array([[0.3, -1.2, 0.7, 2.0], [1.1, 0.4, -0.6, 0.9], [-0.8, 1.5, 0.2, -0.3]])


def regression_target(x: np.ndarray) -> np.ndarray:
    """A target at the same scale as x, with one residual exactly 0 (the |·| kink)."""
    y = np.round(x / 3.0)
    y[0, 2] = x[0, 2]
    return y


@dataclass(frozen=True)
class Case:
    """A function of the issue's list: chainrule's call and its float64 reference.

    ``call(x)`` maps a chainrule tensor of logits to a tensor; ``reference(x, w)`` gives,
    for float64 logits x and output weights w (shaped like the output), the value and
    the gradient of Σ w ∘ f(x) with respect to x.
    """

    name: str
    call: Callable[[cr.Tensor], cr.Tensor]
    reference: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    out_shape: Callable[[tuple[int, ...]], tuple[int, ...]] = lambda shape: shape


def _softmax(x, w):
    p = special.softmax(x, axis=1)
    return p, p * (w - (w * p).sum(axis=1, keepdims=True))


def _log_softmax(x, w):
    p = special.softmax(x, axis=1)
    return special.log_softmax(x, axis=1), w - p * w.sum(axis=1, keepdims=True)


def _logsumexp_rows(x, w):
    return special.logsumexp(x, axis=1), w[:, None] * special.softmax(x, axis=1)


def _logsumexp_all(x, w):
    return special.logsumexp(x), w * special.softmax(x.ravel()).reshape(x.shape)


def _sigmoid(x, w):
    s = special.expit(x)
    return s, w * s * special.expit(-x)  # σ' = σ(x)σ(−x), no cancellation in 1 − σ


def _logsigmoid(x, w):
    return special.log_expit(x), w * special.expit(-x)


def _softplus(x, w):
    return np.logaddexp(0.0, x), w * special.expit(x)


def _tanh(x, w):
    y = np.tanh(x)
    return y, w / np.cosh(x) ** 2 if np.all(np.abs(x) < 700) else w * (1 - y) * (1 + y)


def _cross_entropy_labels(x, w):
    log_p = special.log_softmax(x, axis=1)
    n = len(LABELS)
    loss = -log_p[np.arange(n), LABELS]
    onehot = np.eye(x.shape[1])[LABELS]
    grad = (special.softmax(x, axis=1) - onehot) / n
    return loss.mean(), w * grad


def _cross_entropy_probabilities(x, w):
    t = PROBABILITIES
    log_p = special.log_softmax(x, axis=1)
    loss = -(t * log_p).sum(axis=1)
    grad = (special.softmax(x, axis=1) * t.sum(axis=1, keepdims=True) - t) / len(t)
    return loss.mean(), w * grad


def _bce(x, w):
    t = BINARY
    loss = np.logaddexp(0.0, x) - t * x
    return loss.mean(), w * (special.expit(x) - t) / x.size


def _mse(x, w):
    r = x - regression_target(x)
    return (r * r).mean(), w * 2 * r / x.size


def _mae(x, w):
    r = x - regression_target(x)
    return np.abs(r).mean(), w * np.sign(r) / x.size


def _rmse(x, w):
    r = x - regression_target(x)
    value = np.sqrt((r * r).mean())
    return value, w * r / (x.size * value)


def _scalar(shape):
    return ()


CASES = [
    Case("softmax", lambda t: cr.softmax(t, axis=1), _softmax),
    Case("log_softmax", lambda t: cr.log_softmax(t, axis=1), _log_softmax),
    Case("logsumexp-rows", lambda t: cr.logsumexp(t, axis=1), _logsumexp_rows, lambda s: s[:1]),
    Case("logsumexp-all", cr.logsumexp, _logsumexp_all, _scalar),
    Case("sigmoid", cr.sigmoid, _sigmoid),
    Case("logsigmoid", F.logsigmoid, _logsigmoid),
    Case("softplus", F.softplus, _softplus),
    Case("tanh", cr.tanh, _tanh),
    Case(
        "cross_entropy-labels",
        lambda t: F.cross_entropy(t, LABELS),
        _cross_entropy_labels,
        _scalar,
    ),  # fmt: skip
    Case(
        "cross_entropy-probabilities",
        lambda t: F.cross_entropy(t, PROBABILITIES),
        _cross_entropy_probabilities,
        _scalar,
    ),  # fmt: skip
    Case(
        "bce_with_logits", lambda t: F.binary_cross_entropy_with_logits(t, BINARY), _bce, _scalar
    ),  # fmt: skip
    Case("mse", lambda t: F.mse_loss(t, regression_target(t.data)), _mse, _scalar),
    Case("mae", lambda t: F.l1_loss(t, regression_target(t.data)), _mae, _scalar),
    Case("rmse", lambda t: F.rmse_loss(t, regression_target(t.data)), _rmse, _scalar),
]


def _params():
    for case in CASES:
        for dtype in DTYPES:
            for scale in SCALES:
                name = f"{case.name}-{np.dtype(dtype).name}-{scale:g}"
                yield pytest.param(case, dtype, scale, id=name)


def strict_numpy():
    """Overflow, division by zero and invalid results raise; underflow to 0 is right."""
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


@pytest.mark.parametrize("case, dtype, scale", list(_params()))
def test_value_and_gradient_at_extreme_logits(case, dtype, scale):
    values = logits(scale).astype(dtype)
    exact = values.astype(np.float64)  # the reference sees the very same (rounded) inputs
    weights = WEIGHTS if case.out_shape(values.shape) == values.shape else None
    x = cr.tensor(values, requires_grad=True)
    with warnings.catch_warnings(), strict_numpy():
        warnings.simplefilter("error")
        y = case.call(x)
        w = np.ones(y.shape) if weights is None else weights
        if y.shape == (3,):
            w = WEIGHTS[:, 0]
        y.backward(w.astype(dtype))
    expected_value, expected_grad = case.reference(exact, w)
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))
    rtol, atol = RTOL[dtype], ATOL[dtype]
    np.testing.assert_allclose(y.data, expected_value, rtol=rtol, atol=atol, err_msg="value")
    np.testing.assert_allclose(x.grad.data, expected_grad, rtol=rtol, atol=atol, err_msg="grad")


def test_the_table_covers_every_function_of_the_issue():
    names = {case.name.split("-")[0] for case in CASES}
    assert names == {
        "softmax", "log_softmax", "logsumexp", "sigmoid", "logsigmoid", "softplus", "tanh",
        "cross_entropy", "bce_with_logits", "mse", "mae", "rmse",
    }  # fmt: skip


# ------------------------------------------------------------------ −inf and zero residuals
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_target_at_a_minus_inf_logit_contributes_nothing(dtype, reduction):
    values = np.array([[-np.inf, 0.0, 1.0, -1e4], [2.0, -np.inf, -np.inf, 1e4]], dtype=dtype)
    target = np.array([[0.0, 0.25, 0.75, 0.0], [0.5, 0.0, 0.0, 0.5]], dtype=dtype)
    x = cr.tensor(values, requires_grad=True)
    with warnings.catch_warnings(), strict_numpy():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, target, reduction=reduction)
        loss.sum().backward()
    finite = np.where(np.isinf(values), -1e300, values.astype(np.float64))
    log_p = special.log_softmax(finite, axis=1)
    per_row = -(target * log_p).sum(axis=1)
    expected = {"mean": per_row.mean(), "sum": per_row.sum(), "none": per_row}[reduction]
    np.testing.assert_allclose(loss.data, expected, rtol=RTOL[dtype])
    scale = 1.0 / 2 if reduction == "mean" else 1.0
    p = special.softmax(finite, axis=1)
    np.testing.assert_allclose(x.grad.data, scale * (p - target), rtol=RTOL[dtype], atol=1e-7)
    assert np.all(x.grad.data[np.isinf(values)] == 0)
    assert loss.dtype == dtype


def test_zero_target_at_a_minus_inf_logit_is_differentiable_twice():
    values = np.array([[-np.inf, 0.3, -0.4], [0.1, 0.2, 0.9]])
    target = np.array([[0.0, 0.6, 0.4], [0.2, 0.3, 0.5]])
    x = cr.tensor(values, requires_grad=True)
    with warnings.catch_warnings(), strict_numpy():
        warnings.simplefilter("error")
        (g,) = cr.engine.grad(F.cross_entropy(x, target), [x], create_graph=True)
        (h,) = cr.engine.grad((g * g).sum(), [x])
    assert np.all(np.isfinite(g.data)) and np.all(np.isfinite(h.data))
    assert g.data[0, 0] == 0 and h.data[0, 0] == 0


def test_a_minus_inf_logit_of_another_class_with_integer_labels():
    x = cr.tensor(np.array([[-np.inf, 1.0, 2.0]], dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings(), strict_numpy():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, np.array([2]))
        loss.backward()
    np.testing.assert_allclose(loss.item(), np.log1p(np.exp(-1.0)), rtol=1e-6)
    assert x.grad.data[0, 0] == 0 and np.all(np.isfinite(x.grad.data))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_rmse_gradient_at_zero_residual_is_zero_without_warnings(dtype, reduction):
    values = np.array([[1.0, -2.0], [1e4, -1e4]], dtype=dtype)
    prediction = cr.tensor(values, requires_grad=True)
    with warnings.catch_warnings(), strict_numpy():
        warnings.simplefilter("error")
        loss = cr.nn.RMSELoss(reduction=reduction)(prediction, values.copy())
        loss.sum().backward()
    assert np.all(loss.data == 0) and loss.dtype == dtype
    np.testing.assert_array_equal(prediction.grad.data, np.zeros_like(values))
    assert prediction.grad.dtype == dtype


def test_rmse_at_zero_residual_is_a_fixed_point_of_training():
    w = cr.tensor(np.array([0.5, -1.5], dtype=np.float32), requires_grad=True)
    x = np.array([[1.0, 2.0], [3.0, -1.0]], dtype=np.float32)
    target = x @ w.data
    opt = cr.optim.SGD([w], lr=0.1, momentum=0.9)
    before = w.data.copy()
    for _ in range(3):
        opt.zero_grad()
        F.rmse_loss(cr.tensor(x) @ w, target).backward()
        opt.step()
    np.testing.assert_array_equal(w.data, before)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "axis, keepdims", [(None, False), (0, False), (1, True), ((0, 1), True)],
    ids=["all", "axis0", "axis1-keepdims", "both-keepdims"],
)  # fmt: skip
def test_logsumexp_of_all_minus_inf_is_minus_inf(dtype, axis, keepdims):
    x = cr.tensor(np.full((2, 3), -np.inf, dtype=dtype), requires_grad=True)
    with warnings.catch_warnings(), strict_numpy():
        warnings.simplefilter("error")
        y = cr.logsumexp(x, axis=axis, keepdims=keepdims)
        y.sum().backward()
    expected_shape = np.sum(np.zeros((2, 3)), axis=axis, keepdims=keepdims).shape
    assert y.shape == expected_shape and y.dtype == dtype
    assert np.all(y.data == -np.inf)
    np.testing.assert_array_equal(x.grad.data, np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_softmax_of_a_row_with_minus_inf_entries(dtype):
    values = np.array([[-np.inf, 0.0, -np.inf], [3.0, -np.inf, 3.0]], dtype=dtype)
    x = cr.tensor(values, requires_grad=True)
    with warnings.catch_warnings(), strict_numpy():
        warnings.simplefilter("error")
        y = cr.softmax(x, axis=1)
        (y * cr.tensor(np.array([[1.0, 2.0, 3.0]], dtype=dtype))).sum().backward()
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(y.data, [[0, 1, 0], [0.5, 0, 0.5]], rtol=4 * eps, atol=0)
    np.testing.assert_allclose(x.grad.data, [[0, 0, 0], [-0.5, 0, 0.5]], rtol=8 * eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_softmax_of_a_tie_at_1e4_is_exactly_one_half(dtype):
    """exp(0) / (exp(0) + exp(0)) is exact in any precision; PyTorch gives exactly 1/2."""
    x = cr.tensor(np.array([1e4, 1e4], dtype=dtype))
    np.testing.assert_array_equal(cr.softmax(x).data, [0.5, 0.5])
    log_half = np.log(np.array([0.5, 0.5], dtype=dtype))
    np.testing.assert_allclose(cr.log_softmax(x).data, log_half, rtol=np.finfo(dtype).eps)
