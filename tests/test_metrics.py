"""cr.metrics: plain floats from Tensors, ndarrays and lists; strict shapes."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import metrics


def test_regression_metrics_are_the_lecture_formulas(rng):
    y_hat, y = rng.standard_normal(20), rng.standard_normal(20)
    residual = y_hat - y
    assert metrics.mae(y_hat, y) == pytest.approx(np.mean(np.abs(residual)), rel=1e-12)
    assert metrics.mse(y_hat, y) == pytest.approx(np.mean(residual**2), rel=1e-12)
    assert metrics.rmse(y_hat, y) == pytest.approx(np.sqrt(np.mean(residual**2)), rel=1e-12)


def test_rmse_is_the_root_of_the_mse_not_the_slide_misprint():
    y_hat, y = np.array([3.0, 0.0, 0.0, 0.0]), np.zeros(4)
    assert metrics.rmse(y_hat, y) == pytest.approx(1.5)  # √(9/4)
    misprint = np.sqrt(1 / 4) * np.sum((y_hat - y) ** 2)  # √(1/m)·Σ(ŷ − y)² = 4.5
    assert metrics.rmse(y_hat, y) != pytest.approx(misprint)


def test_metrics_return_python_floats_for_tensors_arrays_and_lists():
    y_hat = cr.tensor([1.0, 2.0, 4.0], requires_grad=True)
    for f in (metrics.mae, metrics.mse, metrics.rmse):
        for prediction in (y_hat, y_hat.data, [1.0, 2.0, 4.0]):
            value = f(prediction, np.array([1.0, 2.0, 3.0], dtype=np.float32))
            assert type(value) is float
    assert metrics.mae(y_hat, [1, 2, 3]) == pytest.approx(1 / 3)
    assert type(metrics.accuracy(np.array([1, 0]), cr.tensor(np.array([1, 1])))) is float


@pytest.mark.parametrize("name", ["mae", "mse", "rmse"])
def test_shape_mismatch_is_an_error(name):
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        getattr(metrics, name)(np.zeros((4, 1)), np.zeros(4))


def test_accuracy_from_logits_or_labels():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    y = np.array([0, 1, 1, 0])
    assert metrics.accuracy(logits, y) == 0.75
    assert metrics.accuracy(cr.tensor(logits), cr.tensor(y)) == 0.75
    assert metrics.accuracy(np.array([0, 1, 2, 0]), y) == 0.75
    spatial = np.zeros((2, 3, 2))  # (N, C, d): argmax along the class axis 1
    spatial[:, 2, :] = 1
    assert metrics.accuracy(spatial, np.array([[2, 2], [2, 0]])) == 0.75


def test_accuracy_errors():
    with pytest.raises(ValueError, match="single class column"):
        metrics.accuracy(np.zeros((4, 1)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5,\)"):
        metrics.accuracy(np.zeros((4, 3)), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="empty"):
        metrics.accuracy(np.zeros(0), np.zeros(0))
