"""The lecture's matrix-calculus shape table, computed by chainrule and checked by hand.

"This math informs what matrix shapes you need." For y scalar, **y** in R^N, **x** in R^n
and **X** of shape (n, m):

    ∂y/∂x   (n)        ∂y/∂X   (n, m)
    ∂y/∂x   (N, n) numerator layout, (n, N) denominator layout (the lecture's)
    ∂y/∂X   (N, n, m): N matrices shaped like X, "along the 3rd dimension"

Each case below uses a function of the slides (w·x, the Hadamard product, the matrix
product, the convolution of a filter over an image) and compares chainrule's answer with
the formula derived by hand. Run: ``python examples/matrix_calculus.py``.
"""

import numpy as np

import chainrule as cr

rng = np.random.default_rng(0)
n, m, N = 4, 3, 2


def show(name: str, value: cr.Tensor, expected: np.ndarray) -> None:
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12, atol=1e-12)
    print(f"{name:<44} shape {str(value.shape):<14} matches the hand-derived formula")


# Scalar by vector: y = wᵀx (the dot product); ∂y/∂x = w, shaped like x.
w = rng.standard_normal(n)
x = rng.standard_normal(n)
show("∂(wᵀx)/∂x = w", cr.grad(lambda x: cr.dot(cr.tensor(w), x))(x), w)

# Scalar by matrix: y = Σ W ∘ X (Hadamard, then sum); ∂y/∂X = W, shaped like X.
W = rng.standard_normal((n, m))
X = rng.standard_normal((n, m))
show("∂(Σ W∘X)/∂X = W", cr.grad(lambda X: (cr.tensor(W) * X).sum())(X), W)

# Vector by vector: y = Aᵀx (a layer's f = Wᵀa, N outputs); ∂y_j/∂x_i = A[i, j].
A = rng.standard_normal((n, N))
layer = lambda x: cr.tensor(A).T @ x  # noqa: E731
show("∂(Aᵀx)/∂x, numerator layout (N, n) = Aᵀ", cr.jacobian(layer)(x), A.T)
show(
    "∂(Aᵀx)/∂x, denominator layout (n, N) = A",
    cr.jacobian(layer, layout="denominator")(x),
    A,
)

# Vector by vector, elementwise: y = w ∘ x; the Jacobian is diagonal.
show("∂(w∘x)/∂x = diag(w)", cr.jacobian(lambda x: cr.tensor(w) * x)(x), np.diag(w))

# Vector by matrix: y = Xᵀv has N = m outputs; ∂y_k/∂X[i, j] = v_i if j = k, else 0.
v = rng.standard_normal(n)
expected = np.zeros((m, n, m))
for k in range(m):
    expected[k, :, k] = v
show(
    "∂(Xᵀv)/∂X (N, n, m), N matrices like X",
    cr.jacobian(lambda X: X.T @ cr.tensor(v))(X),
    expected,
)

# The matrix product: Y = X B, L = Σ Y; ∂L/∂X = 1 Bᵀ (ones times B transposed).
B = rng.standard_normal((m, N))
show("∂(Σ XB)/∂X = 1 Bᵀ", cr.grad(lambda X: (X @ cr.tensor(B)).sum())(X), np.ones((n, N)) @ B.T)


# The convolution of the slides: a k×k filter K slides over an image; each output is the
# sum of K ∘ (the patch under it) ("valid", stride 1; deep learning's cross-correlation).
def convolve(image: cr.Tensor, kernel: np.ndarray) -> cr.Tensor:
    k = kernel.shape[0]
    rows = []
    for r in range(image.shape[0] - k + 1):
        row = [(image[r : r + k, c : c + k] * kernel).sum() for c in range(image.shape[1] - k + 1)]
        rows.append(cr.stack(row))
    return cr.stack(rows)


image = rng.standard_normal((5, 5))
kernel = rng.standard_normal((3, 3))
by_hand = np.zeros((3, 3, 5, 5))  # ∂out[r, c]/∂image = K placed at (r, c)
for r in range(3):
    for c in range(3):
        by_hand[r, c, r : r + 3, c : c + 3] = kernel
show(
    "∂(K * image)/∂image (3, 3, 5, 5)",
    cr.jacobian(lambda im: convolve(im, kernel))(image),
    by_hand,
)
# and with respect to the filter: ∂out[r, c]/∂K = the patch at (r, c)
patches = np.stack([np.stack([image[r : r + 3, c : c + 3] for c in range(3)]) for r in range(3)])
show(
    "∂(K * image)/∂K (3, 3, 3, 3) = the patches",
    cr.jacobian(lambda K: convolve(cr.tensor(image), K))(kernel),
    patches,
)
print("all shapes and values agree")
