"""Slide "Gradients" and the matrix-calculus table: "this math informs what matrix shapes
you need".

The gradient ∇y(x) = ∂y/∂x has one entry per variable and the shape of x. For y scalar,
**y** in R^N, **x** in R^n and **X** of shape (n, m):

    scalar by vector   ∂y/∂x   (n)
    scalar by matrix   ∂y/∂X   (n, m)
    vector by vector   ∂y/∂x   (n, N) in the lecture's (denominator) layout, (N, n) in
                                the numerator layout of JAX and PyTorch
    vector by matrix   ∂y/∂X   (N, n, m): N matrices shaped like X, "along the 3rd dimension"

Every entry below is checked against central finite differences, computed here in plain
NumPy, independently of chainrule. Run: ``python examples/lecture/03_gradients.py``.
"""

import numpy as np

import chainrule as cr

rng = np.random.default_rng(0)
n, m, N = 4, 3, 2
w = rng.standard_normal(n)
A = rng.standard_normal((n, N))
x = rng.standard_normal(n)
X = rng.standard_normal((n, m))
v = rng.standard_normal(m)


def numeric_jacobian(f, point, eps=1e-6):
    """∂f(point)/∂point by central differences, numerator layout (out.shape + in.shape)."""
    point = np.array(point, dtype=np.float64)
    out_shape = np.shape(f(point))
    J = np.zeros(out_shape + point.shape)
    for index in np.ndindex(point.shape):
        step = np.zeros_like(point)
        step[index] = eps
        J[(...,) + index] = (np.asarray(f(point + step)) - np.asarray(f(point - step))) / (2 * eps)
    return J


# each case: the function in chainrule, the same in NumPy, the point, the expected shape
cases = [
    ("scalar by vector", "y = wᵀx", lambda x: cr.dot(cr.tensor(w), x), lambda x: w @ x, x, (n,)),
    ("scalar by matrix", "y = Σ tanh(X)", lambda X: cr.tanh(X).sum(),
     lambda X: np.tanh(X).sum(), X, (n, m)),
    ("vector by vector", "y = σ(Aᵀx)", lambda x: cr.sigmoid(cr.tensor(A).T @ x),
     lambda x: 1 / (1 + np.exp(-(A.T @ x))), x, (N, n)),
    ("vector by matrix", "y = (Xv)[:N]", lambda X: (X @ cr.tensor(v))[:N],
     lambda X: (X @ v)[:N], X, (N, n, m)),
]  # fmt: skip

print(f"{'derivative':<18} {'function':<15} {'numerator':<11} denominator")
for name, formula, f, f_numpy, point, shape in cases:
    numeric = numeric_jacobian(f_numpy, point)
    if name.startswith("scalar"):
        gradient = cr.grad(f)(point)  # ∇y(x): shaped like x
        assert gradient.shape == point.shape == shape
        np.testing.assert_allclose(gradient.numpy(), numeric, rtol=1e-6, atol=1e-8)
        row = (str(gradient.shape), str(gradient.shape))
    else:
        numerator = cr.jacobian(f)(point)
        denominator = cr.jacobian(f, layout="denominator")(point)
        assert numerator.shape == shape
        assert denominator.shape == point.shape + (N,)  # in.shape + out.shape
        np.testing.assert_allclose(numerator.numpy(), numeric, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(
            np.moveaxis(denominator.numpy(), -1, 0), numerator.numpy(), rtol=1e-12
        )
        row = (str(numerator.shape), str(denominator.shape))
    print(f"{name:<18} {formula:<15} {row[0]:<11} {row[1]}")

# The closed forms the shapes come from: ∂(wᵀx)/∂x = w, and for y = Aᵀx (a layer's
# f = Wᵀa) the lecture's table puts ∂y_j/∂x_i in row i, column j: that is A itself.
np.testing.assert_allclose(cr.grad(cases[0][2])(x).numpy(), w)
layer = cr.jacobian(lambda x: cr.tensor(A).T @ x, layout="denominator")(x)
np.testing.assert_allclose(layer.numpy(), A)
print("∂(wᵀx)/∂x = w and ∂(Aᵀx)/∂x = A (denominator layout): the shape of W[l] is (n[l−1], n[l])")
