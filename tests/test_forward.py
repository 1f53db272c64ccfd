"""Forward-mode Jacobians: ``cr.jacfwd`` equals ``cr.jacobian`` and torch.func.jacfwd.

The functions are those of ``test_functional.py`` (a tanh layer, a sigmoid of a matrix
product) and a few more with several inputs, matrix inputs and reductions, in float64.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule import forward


def arr(t):
    return np.asarray(t.data if isinstance(t, cr.Tensor) else t)


W = np.random.default_rng(7).standard_normal((5, 4))
V = np.random.default_rng(8).standard_normal(2)

#: (name, chainrule f, torch f given the torch module, input shape)
CASES = [
    ("tanh layer", lambda x: (cr.tensor(W) @ x).tanh(),
     lambda t: lambda x: t.tanh(t.from_numpy(W) @ x), (4,)),
    ("sigmoid of x @ v", lambda x: (x @ cr.tensor(V)).sigmoid(),
     lambda t: lambda x: t.sigmoid(x @ t.from_numpy(V)), (3, 2)),
    ("elementwise", lambda x: cr.exp(x) * cr.sin(x) + x**3,
     lambda t: lambda x: t.exp(x) * t.sin(x) + x**3, (2, 3)),
    ("softmax", lambda x: cr.softmax(x, axis=-1),
     lambda t: lambda x: t.softmax(x, dim=-1), (3, 4)),
    ("logsumexp (scalar)", lambda x: cr.logsumexp(x, axis=None),
     lambda t: lambda x: t.logsumexp(x.reshape(-1), dim=0), (3, 2)),
    ("matrix square", lambda x: x @ x,
     lambda t: lambda x: x @ x, (3, 3)),
    ("tall: 2 → 6", lambda x: cr.cumsum(cr.concatenate([x, x * x, cr.sin(x)]), axis=0),
     lambda t: lambda x: t.cumsum(t.cat([x, x * x, t.sin(x)]), dim=0), (2,)),
]  # fmt: skip


@pytest.mark.parametrize("name, f, torch_f, shape", CASES, ids=[c[0] for c in CASES])
def test_jacfwd_matches_torch_func_jacfwd_and_jacobian(rng, name, f, torch_f, shape):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    jac = arr(cr.jacfwd(f)(x))
    expected = torch.func.jacfwd(torch_f(torch))(torch.from_numpy(x)).numpy()
    assert jac.shape == expected.shape
    np.testing.assert_allclose(jac, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jac, arr(cr.jacobian(f)(x)), rtol=1e-12, atol=1e-14)


def test_denominator_layout_and_tuple_argnums(rng):
    x, y = rng.standard_normal((2, 3)), rng.standard_normal(3)

    def f(x, y):
        return (x * y).exp().sum(axis=0) * y

    for layout in ("numerator", "denominator"):
        fwd = cr.jacfwd(f, argnums=(0, 1), layout=layout)(x, y)
        rev = cr.jacobian(f, argnums=(0, 1), layout=layout)(x, y)
        for a, b in zip(fwd, rev):
            assert a.shape == b.shape
            np.testing.assert_allclose(arr(a), arr(b), rtol=1e-12, atol=1e-14)
    assert cr.jacfwd(f, argnums=1, layout="denominator")(x, y).shape == (3, 3)
    with pytest.raises(ValueError, match="layout"):
        cr.jacfwd(f, layout="rows")


def test_jacfwd_of_jacobian_is_the_hessian(rng):
    x = rng.standard_normal(4)

    def f(x):
        return ((cr.tensor(W) @ x).tanh() ** 2).sum() * x[0]

    hess = arr(cr.hessian(f)(x))
    np.testing.assert_allclose(arr(cr.jacfwd(cr.jacobian(f))(x)), hess, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(arr(cr.jacobian(cr.jacfwd(f))(x)), hess, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(arr(cr.jacfwd(cr.jacfwd(f))(x)), hess, rtol=1e-12, atol=1e-14)


def test_jacfwd_nests_inside_grad_and_sees_closed_over_variables(rng):
    x = rng.standard_normal(3)

    def f(x):
        return (cr.tensor(W[:, :3]) @ x).tanh() * x.sum()

    # d/dx Σ J(x): the same through jacfwd as through jacobian
    np.testing.assert_allclose(
        arr(cr.grad(lambda x: cr.jacfwd(f)(x).sum())(x)),
        arr(cr.grad(lambda x: cr.jacobian(f)(x).sum())(x)),
        rtol=1e-12,
    )
    # an outer variable closed over: d/dy of jacfwd(z ↦ y z²)(2) = d/dy (4y) = 4
    outer = cr.grad(lambda y: cr.jacfwd(lambda z: y * z * z)(np.float64(2.0)))(np.float64(3.0))
    assert arr(outer) == pytest.approx(4.0)


def test_constant_and_unused_inputs_give_zeros():
    x = np.ones(3)
    assert np.array_equal(arr(cr.jacfwd(lambda x: np.ones(2))(x)), np.zeros((2, 3)))
    jx, jy = cr.jacfwd(lambda x, y: x * 2.0, argnums=(0, 1))(x, np.ones(2))
    np.testing.assert_array_equal(arr(jx), 2.0 * np.eye(3))
    np.testing.assert_array_equal(arr(jy), np.zeros((3, 2)))


class _Square(cr.Function):
    """x², batchable=False: jacfwd falls back to one walk per column."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 2 * x * grad_out


def test_a_function_that_is_not_batchable_takes_one_walk_per_column(rng):
    x = rng.standard_normal(4)
    jac = arr(cr.jacfwd(lambda x: _Square.apply(x).sin())(x))
    np.testing.assert_allclose(jac, np.diag(np.cos(x**2) * 2 * x), rtol=1e-12, atol=1e-14)


def test_large_inputs_are_split_into_batches(rng, monkeypatch):
    monkeypatch.setattr(forward, "_BATCH_ELEMENTS", 12)  # 2 columns of 5 a walk
    x = rng.standard_normal(4)
    f = cr.jacfwd(lambda x: (cr.tensor(W) @ x).tanh(), argnums=0)
    np.testing.assert_allclose(
        arr(f(x)), arr(cr.jacobian(lambda x: (cr.tensor(W) @ x).tanh())(x)), rtol=1e-12
    )


def test_jacfwd_over_pytrees_equals_jacrev():
    """A dict argument and a tuple output: the blocks nest as jacrev's (output structure
    outside, input structure inside), each equal to jacrev's; has_aux comes back as is."""
    p = {"w": np.array([0.3, -1.2, 0.7]), "b": np.array(0.4)}

    def f(p):
        y = cr.tanh(p["w"] * p["b"])
        return (y, (y**2).sum() + p["b"]), "aux"

    fwd, aux = cr.jacfwd(f, has_aux=True)(p)
    rev, _ = cr.jacrev(f, has_aux=True)(p)
    assert aux == "aux"
    for i in range(2):
        for key in ("w", "b"):
            assert fwd[i][key].shape == rev[i][key].shape
            np.testing.assert_allclose(fwd[i][key].data, rev[i][key].data, rtol=1e-12, atol=1e-15)
    two = cr.jacfwd(lambda a, b: a * b, argnums=(0, 1))(np.ones(2), np.array([2.0, 3.0]))
    np.testing.assert_allclose(two[0].data, np.diag([2.0, 3.0]))
    np.testing.assert_allclose(two[1].data, np.eye(2))
