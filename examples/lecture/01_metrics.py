"""Slide "Metrics": MAE, MSE and RMSE on a test set of m instances.

    MAE  = (1/m) Σ |ŷ − y|
    MSE  = (1/m) Σ (ŷ − y)²
    RMSE = √MSE            (the slide prints √(1/m)·Σ(ŷ − y)²: a misprint)

Two predictors with the same MAE: one is off by 0.5 everywhere, the other is exact except
for one large error. MSE and RMSE penalise the large error more, because they square it.
Run: ``python examples/lecture/01_metrics.py``.
"""

import numpy as np

import chainrule as cr
from chainrule import nn

y = np.array([3.0, 5.0, 2.5, 7.0, 4.0, 6.0])  # the test set's targets, m = 6
m = y.size
predictions = {
    "steady (every error 0.5)": y + np.array([0.5, -0.5, 0.5, -0.5, 0.5, -0.5]),
    "one big error (3.0)": y + np.array([0.0, 0.0, 0.0, 0.0, 0.0, 3.0]),
}

print(f"{'predictor':<26} {'MAE':>6} {'MSE':>6} {'RMSE':>6}")
results = {}
for name, y_hat in predictions.items():
    mae, mse, rmse = cr.metrics.mae(y_hat, y), cr.metrics.mse(y_hat, y), cr.metrics.rmse(y_hat, y)
    # the definitions, written out
    assert np.isclose(mae, np.sum(np.abs(y_hat - y)) / m)
    assert np.isclose(mse, np.sum((y_hat - y) ** 2) / m)
    assert np.isclose(rmse, np.sqrt(mse))
    # the training losses of cr.nn are the same quantities (L1 is the lecture's MAE)
    y_hat_t, y_t = cr.tensor(y_hat), cr.tensor(y)
    assert np.isclose(nn.L1Loss()(y_hat_t, y_t).item(), mae)
    assert np.isclose(nn.MSELoss()(y_hat_t, y_t).item(), mse)
    assert np.isclose(nn.RMSELoss()(y_hat_t, y_t).item(), rmse)
    results[name] = (mae, mse, rmse)
    print(f"{name:<26} {mae:>6.3f} {mse:>6.3f} {rmse:>6.3f}")

(steady_mae, steady_mse, steady_rmse), (big_mae, big_mse, big_rmse) = results.values()
assert np.isclose(steady_mae, big_mae)  # MAE cannot tell them apart
assert big_mse > 5 * steady_mse and big_rmse > 2 * steady_rmse  # squared errors can
print("Same MAE, but MSE and RMSE penalise the one large error more.")

# The misprint √(1/m)·Σ(ŷ − y)² is not the RMSE: it grows with m at a fixed error size.
y_hat = predictions["steady (every error 0.5)"]
misprint = np.sqrt(1 / m) * np.sum((y_hat - y) ** 2)
assert not np.isclose(misprint, steady_rmse)
print(f"RMSE = √MSE = {steady_rmse:.3f}; the slide's formula would give {misprint:.3f}")

# RMSE and MAE have the units of y; MSE has those units squared.
assert np.isclose(cr.metrics.rmse(10 * y_hat, 10 * y), 10 * steady_rmse)
assert np.isclose(cr.metrics.mse(10 * y_hat, 10 * y), 100 * steady_mse)
print("In centimetres instead of decimetres: MAE and RMSE ×10, MSE ×100.")
