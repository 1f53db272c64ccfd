"""Losses: values against NumPy formulas, gradcheck per reduction, errors, stability."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

REDUCTIONS = ["mean", "sum", "none"]


def _reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# ----------------------------------------------------------------------- regression losses
REGRESSION = [
    (nn.MSELoss, lambda d: d**2),
    (nn.L1Loss, np.abs),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss_class, elementwise", REGRESSION, ids=["mse", "l1"])
def test_regression_losses_values_and_gradcheck(rng, loss_class, elementwise, reduction):
    prediction, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss = loss_class(reduction=reduction)
    expected = _reduce(elementwise(prediction - target), reduction)
    np.testing.assert_allclose(loss(prediction, target).data, expected, rtol=1e-12)
    assert cr.gradcheck(loss, (prediction, target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_rmse_is_the_root_of_the_mean_square_and_gradchecks(rng, reduction):
    prediction, target = rng.standard_normal(6), rng.standard_normal(6)
    squares = (prediction - target) ** 2
    expected = {
        "mean": np.sqrt(squares.mean()),
        "sum": np.sqrt(squares.sum()),
        "none": np.abs(prediction - target),
    }[reduction]
    loss = nn.RMSELoss(reduction=reduction)
    np.testing.assert_allclose(loss(prediction, target).data, expected, rtol=1e-12)
    assert cr.gradcheck(loss, (prediction, target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_rmse_gradient_at_zero_residual_is_zero_not_nan(reduction):
    prediction = cr.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    loss = F.rmse_loss(prediction, np.array([1.0, -2.0, 3.0]), reduction)
    assert np.all(loss.data == 0)
    loss.sum().backward()
    np.testing.assert_array_equal(prediction.grad.data, [0.0, 0.0, 0.0])


def test_rmse_is_differentiable_twice(rng):
    assert cr.gradgradcheck(lambda p: F.rmse_loss(p, np.zeros(4)), rng.standard_normal(4))


# ----------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2), (5,)], ids=["NC", "NCd", "C"])
def test_cross_entropy_with_labels(rng, shape, reduction):
    logits = rng.standard_normal(shape)
    axis = 1 if len(shape) > 1 else 0
    label_shape = shape[:axis] + shape[axis + 1 :]
    labels = rng.integers(0, shape[axis], label_shape)
    log_p = _log_softmax(logits, axis)
    nll = -np.take_along_axis(log_p, np.expand_dims(labels, axis), axis).squeeze(axis)
    loss = nn.CrossEntropyLoss(reduction=reduction)
    np.testing.assert_allclose(loss(logits, labels).data, _reduce(nll, reduction), rtol=1e-12)
    assert cr.gradcheck(lambda x: loss(x, labels), logits)


def test_cross_entropy_with_labels_is_differentiable_twice(rng):
    labels = np.array([0, 2, 1])
    assert cr.gradgradcheck(lambda x: F.cross_entropy(x, labels), rng.standard_normal((3, 3)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_probability_targets(rng, reduction):
    logits = rng.standard_normal((4, 3))
    target = rng.dirichlet(np.ones(3), 4)
    expected = _reduce(-(target * _log_softmax(logits, 1)).sum(axis=1), reduction)
    loss = nn.CrossEntropyLoss(reduction=reduction)
    np.testing.assert_allclose(loss(logits, target).data, expected, rtol=1e-12)
    assert cr.gradcheck(loss, (logits, target))


def test_zero_probability_at_minus_inf_logit_contributes_nothing():
    for dtype in (np.float32, np.float64):
        logits = cr.tensor(np.array([[-np.inf, 0.0, 1.0]], dtype=dtype), requires_grad=True)
        target = np.array([[0.0, 0.25, 0.75]], dtype=dtype)
        loss = F.cross_entropy(logits, target)
        loss.backward()
        finite = np.array([[0.0, 1.0]])
        expected = -(target[:, 1:] * _log_softmax(finite, 1)).sum()
        np.testing.assert_allclose(loss.data, expected, rtol=1e-6)
        assert np.all(np.isfinite(logits.grad.data)) and logits.grad.data[0, 0] == 0
        assert loss.dtype == dtype


@pytest.mark.parametrize("bad", [-1, 5, 12])
def test_cross_entropy_label_out_of_range_names_the_range(bad):
    labels = np.array([0, bad, 1])
    with pytest.raises(ValueError, match=rf"\[0, 4\].*5 classes.*\[{bad}\]"):
        F.cross_entropy(cr.zeros(3, 5), labels)


def test_cross_entropy_target_shape_errors():
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        F.cross_entropy(cr.zeros(3, 5), np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="probabilities of the logits' shape"):
        F.cross_entropy(cr.zeros(3, 5), np.zeros(3, dtype=np.float32))  # float labels
    with pytest.raises(ValueError, match="probabilities of the logits' shape"):
        F.cross_entropy(cr.zeros(3, 5), np.zeros((3, 4)))


# ----------------------------------------------------------------------- BCE with logits
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(rng, reduction):
    logits, target = rng.standard_normal((3, 2)), rng.uniform(0, 1, (3, 2))
    p = 1 / (1 + np.exp(-logits))
    expected = _reduce(-(target * np.log(p) + (1 - target) * np.log(1 - p)), reduction)
    loss = nn.BCEWithLogitsLoss(reduction=reduction)
    np.testing.assert_allclose(loss(logits, target).data, expected, rtol=1e-12)
    assert cr.gradcheck(loss, (logits, target))


def test_softplus_and_logsigmoid(rng):
    x = rng.standard_normal(5)
    np.testing.assert_allclose(F.softplus(x).data, np.log1p(np.exp(x)), rtol=1e-12)
    np.testing.assert_allclose(F.logsigmoid(x).data, -np.log1p(np.exp(-x)), rtol=1e-12)
    assert cr.gradcheck(F.softplus, x) and cr.gradcheck(F.logsigmoid, x)
    assert cr.gradgradcheck(F.softplus, x)
    zero = cr.tensor(np.zeros(1), requires_grad=True)
    F.softplus(zero).backward()
    assert zero.grad.data[0] == 0.5  # no kink at 0: softplus'(0) = σ(0)


# ----------------------------------------------------------------------- shape mismatch
def _all_losses():
    return [
        ("mse", F.mse_loss), ("l1", F.l1_loss), ("rmse", F.rmse_loss),
        ("bce", F.binary_cross_entropy_with_logits),
        ("mse-module", nn.MSELoss()), ("bce-module", nn.BCEWithLogitsLoss()),
    ]  # fmt: skip


@pytest.mark.parametrize("name, loss", _all_losses(), ids=[n for n, _ in _all_losses()])
def test_column_prediction_against_flat_target_is_an_error(name, loss):
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\).*no broadcasting"):
        loss(cr.zeros(4, 1), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\)"):
        loss(cr.zeros(4), np.zeros((4, 1)))


def test_bad_reduction_is_an_error():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(cr.zeros(2, 2), np.array([0, 1]), reduction="max")


# ----------------------------------------------------------------------- stability
@pytest.mark.filterwarnings("error")  # a RuntimeWarning (overflow, invalid) fails the test
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e3, 1e4])
def test_cross_entropy_and_bce_are_finite_for_huge_logits(dtype, scale):
    values = np.array([[scale, -scale, 0.0], [-scale, scale, scale]], dtype=dtype)
    logits = cr.tensor(values, requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 1]), reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.data, [2 * scale, np.log(2)], rtol=1e-6)
    assert loss.dtype == dtype and logits.grad.dtype == dtype
    np.testing.assert_allclose(logits.grad.data, [[1, -1, 0], [0, -0.5, 0.5]], atol=1e-6)

    logits = cr.tensor(values, requires_grad=True)
    target = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    loss.sum().backward()
    expected = [[0.0, scale, np.log(2)], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(loss.data, expected, rtol=1e-6, atol=1e-6)
    assert loss.dtype == dtype
    sigma = (values > 0) + 0.5 * (values == 0)
    np.testing.assert_allclose(logits.grad.data, sigma - target, atol=1e-6)

    probabilities = np.array([[0.5, 0.0, 0.5], [0.0, 0.0, 1.0]], dtype=dtype)
    logits = cr.tensor(values, requires_grad=True)
    loss = F.cross_entropy(logits, probabilities)
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad.data))

    for f in (F.softplus, F.logsigmoid):
        x = cr.tensor(values, requires_grad=True)
        y = f(x)
        y.sum().backward()
        assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))


def test_float64_target_keeps_a_float32_loss(rng):
    prediction = cr.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    target = rng.standard_normal(5)  # float64 from NumPy
    for loss in (F.mse_loss, F.l1_loss, F.rmse_loss, F.binary_cross_entropy_with_logits):
        value = loss(prediction, target)
        assert value.dtype == np.float32
        value.backward()
        assert prediction.grad.dtype == np.float32
    assert F.cross_entropy(cr.zeros(2, 3), rng.dirichlet(np.ones(3), 2)).dtype == np.float32
