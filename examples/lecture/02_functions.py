"""Slide "Functions": scaling, dot product, Hadamard product, matrix product, convolution.

    scaling         w·x          a scalar times a vector
    dot product     w·x = wᵀx    a scalar from two vectors
    Hadamard        W ∘ X        element by element, same shapes
    matrix product  W X          (n, k) by (k, m) gives (n, m)
    convolution     W * X        slide the filter W over the image X, multiply and sum

The convolution of computer vision filters is what deep-learning libraries compute
("cross-correlation": the filter is not flipped), "valid" (no padding), stride 1.
Each result from chainrule is checked against the definition written out in NumPy.
Run: ``python examples/lecture/02_functions.py``.
"""

import numpy as np

import chainrule as cr
from chainrule.nn import functional as F

rng = np.random.default_rng(0)
x = rng.standard_normal(4)
w_vec = rng.standard_normal(4)
W = rng.standard_normal((3, 4))
X = rng.standard_normal((3, 4))

# scaling: w·x with w a scalar
scaled = 2.5 * cr.tensor(x)
assert np.allclose(scaled.numpy(), [2.5 * xi for xi in x])
print("scaling      2.5·x            shape", scaled.shape)

# dot product: w·x = wᵀx = Σᵢ wᵢxᵢ
dot = cr.dot(cr.tensor(w_vec), cr.tensor(x))
assert np.isclose(dot.item(), sum(wi * xi for wi, xi in zip(w_vec, x)))
assert np.isclose(dot.item(), (cr.tensor(w_vec).T @ cr.tensor(x)).item())
print(f"dot product  w·x = wᵀx = {dot.item():+.4f}")

# Hadamard product: (W ∘ X)ᵢⱼ = Wᵢⱼ Xᵢⱼ
hadamard = cr.tensor(W) * cr.tensor(X)
expected = np.array([[W[i, j] * X[i, j] for j in range(4)] for i in range(3)])
assert np.allclose(hadamard.numpy(), expected)
print("Hadamard     W ∘ X            shape", hadamard.shape)

# matrix product: (W Xᵀ)ᵢⱼ = Σₖ Wᵢₖ Xⱼₖ, (3, 4) by (4, 3) gives (3, 3)
product = cr.tensor(W) @ cr.tensor(X).T
expected = np.array([[sum(W[i, k] * X[j, k] for k in range(4)) for j in range(3)]
                     for i in range(3)])  # fmt: skip
assert np.allclose(product.numpy(), expected)
print("matrix       W Xᵀ             shape", product.shape)
try:
    cr.tensor(W) @ cr.tensor(X)  # (3, 4) by (3, 4): the inner sizes differ
except ValueError as error:
    print("             W X              ", str(error).splitlines()[0])
else:
    raise SystemExit("a (3, 4) @ (3, 4) product should be refused")

# convolution: a vertical-edge filter slid over a 6×6 image with a bright right half
image = np.zeros((6, 6))
image[:, 3:] = 1.0
edge = np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
out = F.conv2d(cr.tensor(image[None, None]), cr.tensor(edge[None, None]))[0, 0]
# the slide's definition: put the filter on each 3×3 patch, multiply element-wise, sum
by_hand = np.array(
    [[np.sum(edge * image[i : i + 3, j : j + 3]) for j in range(4)] for i in range(4)]
)
assert out.shape == (6 - 3 + 1, 6 - 3 + 1)  # "valid": (H − kh + 1, W − kw + 1)
assert np.allclose(out.numpy(), by_hand)
assert np.all(out.numpy()[:, 1:3] == 3.0) and np.all(out.numpy()[:, [0, 3]] == 0.0)
print("convolution  W * X            shape", out.shape, "(the edge lights up columns 1, 2)")
print(out.numpy())

# every one of these functions is differentiable, so backprop can pass through it
assert cr.gradcheck(lambda W, X: (W * X).sum(), (W, X))
assert cr.gradcheck(lambda k: F.conv2d(cr.tensor(image[None, None]), k), edge[None, None])
print("each passes cr.gradcheck")
