"""The v0.2 ops where the op table cannot reach: gradients with zeros in a product, std at a
constant input, ties in sort and topk, the step functions flagged by gradcheck, arcsin and
arccos at ±1, float32 kept, erf to the last bit, and the errors.

The rows of tests/op_specs.py (ELEMENTWISE_V02, REDUCTIONS_V02) check the rest: NumPy,
gradcheck, gradgradcheck, dtypes, 0-d, the batched Jacobian and Hessian, and torch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine


def grad_of(fn, x, seed=None):
    """∂/∂x of Σ seed ∘ fn(x) at float64 x, and the output."""
    t = cr.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    out = fn(t)
    out.backward(np.ones(out.shape) if seed is None else np.asarray(seed, dtype=np.float64))
    return t.grad.data, out


def products_without(x):
    """Π_{j≠i} xⱼ for each i, by brute force (no division)."""
    x = np.asarray(x, dtype=np.float64)
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


def torch_grad(torch_fn, x, seed=None):
    torch = pytest.importorskip("torch")
    t = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    out = torch_fn(torch, t)
    out.backward(torch.ones_like(out) if seed is None else torch.tensor(seed))
    return t.grad.numpy()


# ------------------------------------------------------------------ prod, cumprod with zeros
@pytest.mark.parametrize(
    "x",
    [[2.0, 0.0, 3.0, -1.5], [0.0, 2.0, 0.0, 3.0], [0.0, 0.0, 0.0], [1.5, -2.0, 0.5, 4.0]],
    ids=["one-zero", "two-zeros", "all-zeros", "no-zero"],
)
def test_prod_gradient_is_the_product_of_the_others_with_zeros(x):
    grad, out = grad_of(cr.prod, x)
    assert out.item() == np.prod(x)
    np.testing.assert_allclose(grad, products_without(x), rtol=1e-15, atol=0)
    assert np.all(np.isfinite(grad))


def test_prod_with_one_zero_sends_the_others_product_to_the_zero_only():
    grad, _ = grad_of(cr.prod, [2.0, 0.0, 3.0])
    assert grad.tolist() == [0.0, 6.0, 0.0]
    grad, _ = grad_of(cr.prod, [2.0, 0.0, 3.0, 0.0])
    assert grad.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_prod_over_axes_with_zeros_matches_torch():
    x = np.array([[[1.5, 0.0], [2.0, -1.0]], [[0.0, 0.5], [0.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    seed = np.array([0.5, -2.0, 1.5])
    ours, _ = grad_of(lambda t: cr.prod(t, axis=(1, 2)), x, seed)
    theirs = torch_grad(lambda T, t: T.prod(t.reshape(3, -1), -1), x, seed)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)


@pytest.mark.parametrize(
    "x",
    [[2.0, 0.0, 3.0, -1.5], [0.0, 2.0, 0.0, 3.0], [1.5, 0.5, 0.0], [0.0, -2.0, 1.0]],
    ids=["one-zero", "two-zeros", "zero-last", "zero-first"],
)
def test_cumprod_gradient_with_zeros_matches_torch_and_finite_differences(x):
    seed = np.linspace(-1.0, 2.0, len(x))
    ours, _ = grad_of(cr.cumprod, x, seed)
    # ∂/∂xᵢ Σₖ sₖ Π_{j≤k} xⱼ = Σ_{k≥i} sₖ Π_{j≤k, j≠i} xⱼ, by brute force
    x64 = np.asarray(x)
    expected = [
        sum(seed[k] * np.prod(np.delete(x64[: k + 1], i)) for k in range(i, len(x)))
        for i in range(len(x))
    ]
    np.testing.assert_allclose(ours, expected, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ours, torch_grad(lambda T, t: T.cumprod(t, 0), x, seed))
    assert cr.gradcheck(cr.cumprod, np.asarray(x))


def test_cumprod_second_derivative_with_zeros_matches_torch():
    """The recorded rule (create_graph) has no division either."""
    torch = pytest.importorskip("torch")
    x = np.array([[1.5, 0.0, -2.0, 0.5], [0.0, 3.0, 0.0, 1.0]])
    v = np.array([[0.3, -1.0, 2.0, 0.7], [1.0, 0.5, -0.5, 2.0]])
    u = np.array([[1.0, 2.0, -1.0, 0.5], [0.25, -1.5, 1.0, 3.0]])
    t = cr.tensor(x, requires_grad=True)
    (g,) = engine.grad(cr.cumprod(t, axis=1), [t], grad_outputs=cr.tensor(v), create_graph=True)
    (hess_u,) = engine.grad((g * u).sum(), [t])
    tt = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.cumprod(tt, 1), tt, torch.tensor(v), create_graph=True)
    (t_hess_u,) = torch.autograd.grad((tg * torch.tensor(u)).sum(), tt)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(hess_u.data, t_hess_u.numpy(), rtol=1e-14, atol=1e-15)
    assert cr.gradgradcheck(lambda a: cr.cumprod(a, axis=1), x)


def test_prod_is_twice_differentiable_at_a_zero():
    # ∂²(abc)/∂a∂b = c, whatever a and b are
    hess = cr.hessian(cr.prod)(np.array([0.0, 0.0, 2.0]))
    np.testing.assert_array_equal(hess.data, [[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


# ------------------------------------------------------------------ std
def test_std_at_a_constant_input_has_gradient_zero_as_torch():
    x = np.full((2, 3), 1.5)
    for kwargs in ({}, {"axis": 1}, {"axis": 0, "ddof": 1}):
        grad, out = grad_of(lambda t, kw=kwargs: cr.std(t, **kw), x)
        assert np.all(out.data == 0)
        assert grad.tolist() == np.zeros((2, 3)).tolist()
    theirs = torch_grad(lambda T, t: T.std(t, dim=1, correction=0), x)
    assert theirs.tolist() == np.zeros((2, 3)).tolist()


def test_std_gradient_with_one_constant_row_is_finite():
    x = np.array([[2.0, 2.0, 2.0], [1.0, -0.5, 3.0]])
    ours, _ = grad_of(lambda t: cr.std(t, axis=1), x)
    np.testing.assert_allclose(ours, torch_grad(lambda T, t: T.std(t, 1, correction=0), x))
    assert ours[0].tolist() == [0.0, 0.0, 0.0]


# ------------------------------------------------------------------ sort, argsort, topk ties
def test_sort_ties_keep_input_order_and_follow_the_permutation():
    x = [1.0, 2.0, 2.0, 0.5]
    seed = [1.0, 2.0, 3.0, 4.0]
    grad, out = grad_of(cr.sort, x, seed)
    assert out.data.tolist() == [0.5, 1.0, 2.0, 2.0]
    assert cr.argsort(np.array(x)).data.tolist() == [3, 0, 1, 2]
    # each element gets the seed of the position it lands in: x[1] → 2, x[2] → 3
    assert grad.tolist() == [2.0, 3.0, 4.0, 1.0]
    np.testing.assert_array_equal(
        grad, torch_grad(lambda T, t: T.sort(t, stable=True)[0], x, seed)
    )


def test_topk_ties_take_the_earlier_element_first():
    """torch leaves the order of tied indices unspecified (it differs between 1-D and 2-D
    inputs); chainrule's is stable: among equal values, the earlier element comes first."""
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 3.0, 3.0, 0.5, 3.0], [2.0, 2.0, -1.0, 2.0, -1.0]])
    expected = {
        (2, True): [[1, 2], [0, 1]],
        (3, True): [[1, 2, 4], [0, 1, 3]],
        (2, False): [[3, 0], [2, 4]],
        (4, False): [[3, 0, 1, 2], [2, 4, 0, 1]],
    }
    for (k, largest), index in expected.items():
        values, got = cr.topk(x, k, largest=largest)
        assert got.data.tolist() == index
        assert got.dtype.kind == "i" and not got.requires_grad
        np.testing.assert_array_equal(values.data, np.take_along_axis(x, got.data, -1))
        t_values, _ = torch.topk(torch.tensor(x), k, largest=largest, sorted=True)
        np.testing.assert_array_equal(values.data, t_values.numpy())


def test_topk_values_gradient_reaches_the_chosen_elements_only():
    x = [0.5, 3.0, -1.0, 3.0, 2.0]
    grad, out = grad_of(lambda t: cr.topk(t, 3)[0], x, [10.0, 20.0, 30.0])
    assert out.data.tolist() == [3.0, 3.0, 2.0]
    assert grad.tolist() == [0.0, 10.0, 0.0, 20.0, 30.0]


def test_topk_indices_match_torch_along_an_axis(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 5))
    for axis in (0, 1, -1):
        values, index = cr.topk(x, 2, axis=axis, largest=False)
        t_values, t_index = torch.topk(torch.tensor(x), 2, dim=axis, largest=False)
        np.testing.assert_array_equal(index.data, t_index.numpy())
        np.testing.assert_array_equal(values.data, t_values.numpy())


def test_topk_k_larger_than_the_axis_is_a_clear_error():
    with pytest.raises(ValueError, match=r"k=5 is out of range for axis 1 of size 4.*\(3, 4\)"):
        cr.topk(np.zeros((3, 4)), 5)
    with pytest.raises(ValueError, match="k=-1"):
        cr.topk(np.zeros(3), -1)


# ------------------------------------------------------------------ step functions
@pytest.mark.parametrize("name", ["sign", "floor", "ceil", "round"])
def test_gradcheck_flags_the_step_functions(name):
    x = np.array([0.3, 1.7, -2.2, 0.45])
    with pytest.raises(cr.GradcheckError, match="jumps by"):
        cr.gradcheck(getattr(cr, name), x)
    # finite differences alone agree with the 0 gradient: it is the scan that flags them
    assert cr.gradcheck(getattr(cr, name), x, check_continuity=False)


@pytest.mark.parametrize("name", ["sign", "floor", "ceil", "round"])
def test_step_functions_have_gradient_zero_at_their_jumps_too(name):
    x = [0.0, 1.0, -2.0, 0.5, 2.5]  # sign's jump, floor's and ceil's, round's halves
    grad, _ = grad_of(getattr(cr, name), x)
    assert grad.tolist() == [0.0] * 5
    grad, _ = grad_of(getattr(cr, name), x, [np.inf] * 5)  # 0, not 0·inf = NaN
    assert grad.tolist() == [0.0] * 5


def test_round_halves_to_even_as_numpy():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.25, 0.35])
    np.testing.assert_array_equal(cr.round(x).data, np.round(x))
    assert cr.round(x).data.tolist()[:5] == [0.0, 2.0, 2.0, -0.0, -2.0]
    np.testing.assert_array_equal(cr.round(x, decimals=1).data, np.round(x, 1))


def test_sign_of_zero_is_zero():
    assert cr.sign(np.array([-3.0, 0.0, 2.0])).data.tolist() == [-1.0, 0.0, 1.0]


# ------------------------------------------------------------------ poles and edges
def test_arcsin_and_arccos_have_infinite_derivative_at_plus_minus_one():
    with np.errstate(all="raise"):  # the documented inf comes without a warning
        grad, out = grad_of(cr.arcsin, [-1.0, 1.0, 0.0])
        assert grad.tolist() == [np.inf, np.inf, 1.0]
        np.testing.assert_allclose(out.data, [-np.pi / 2, np.pi / 2, 0.0])
        grad, _ = grad_of(cr.arccos, [-1.0, 1.0, 0.0])
        assert grad.tolist() == [-np.inf, -np.inf, -1.0]
    np.testing.assert_array_equal(grad, torch_grad(lambda T, t: T.acos(t), [-1.0, 1.0, 0.0]))


def test_arctan2_gradient_at_the_origin_is_zero_as_torch():
    y = cr.tensor(np.array([0.0, 1.0]), requires_grad=True)
    x = cr.tensor(np.array([0.0, 1.0]), requires_grad=True)
    cr.arctan2(y, x).sum().backward()
    assert y.grad.data.tolist() == [0.0, 0.5]
    assert x.grad.data.tolist() == [0.0, -0.5]


def test_reciprocal_of_zero_is_inf_as_numpy():
    with np.errstate(all="raise"):
        grad, out = grad_of(cr.reciprocal, [0.0, -0.0, 2.0])
    assert out.data.tolist() == [np.inf, -np.inf, 0.5]
    assert grad.tolist() == [-np.inf, -np.inf, -0.25]


def test_log1p_and_expm1_keep_tiny_values():
    x = np.array([1e-20, -3e-18])
    np.testing.assert_array_equal(cr.log1p(x).data, x)
    np.testing.assert_array_equal(cr.expm1(x).data, x)


def test_erf_matches_the_standard_library_to_the_last_bits():
    xs = np.concatenate([np.linspace(-6.0, 6.0, 2001), [1e-300, -1e-8, 0.0, 0.5, 27.0]])
    ours = cr.erf(xs).data
    expected = np.array([math.erf(v) for v in xs])
    relative = np.abs(ours - expected) / np.maximum(np.abs(expected), 1e-300)
    assert relative.max() <= 1e-15, xs[np.argmax(relative)]


def test_erf_derivative_is_two_over_root_pi_times_gaussian():
    x = np.linspace(-3.0, 3.0, 13)
    grad, _ = grad_of(cr.erf, x)
    np.testing.assert_allclose(grad, 2 / np.sqrt(np.pi) * np.exp(-x * x), rtol=1e-15)


# ------------------------------------------------------------------ float32
ELEMENTWISE = [
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "log1p", "expm1",
    "log2", "log10", "square", "reciprocal", "sign", "floor", "ceil", "round", "erf",
]  # fmt: skip
REDUCING = {
    "prod": lambda t: cr.prod(t, axis=0),
    "cumsum": lambda t: cr.cumsum(t, axis=1),
    "cumprod": lambda t: cr.cumprod(t),
    "std": lambda t: cr.std(t, axis=1, ddof=1),
    "sort": lambda t: cr.sort(t),
    "topk": lambda t: cr.topk(t, 2)[0],
    "arctan2": lambda t: cr.arctan2(t, t + 1.0),
}


@pytest.mark.parametrize("fn", [*ELEMENTWISE, *REDUCING])
def test_float32_inputs_give_float32_outputs_and_gradients(fn):
    call = REDUCING.get(fn) or getattr(cr, fn)
    x = cr.tensor(np.array([[0.3, 0.6, 0.2], [0.1, 0.7, 0.4]], dtype=np.float32),
                  requires_grad=True)  # fmt: skip
    out = call(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    (g,) = engine.grad(call(x).sum(), [x], create_graph=True)
    assert g.dtype == np.float32


@pytest.mark.parametrize("fn", ["all", "any", "argsort"])
def test_forward_only_ops_take_float32(fn):
    x = cr.tensor(np.array([0.0, 1.5, -2.0], dtype=np.float32), requires_grad=True)
    assert not getattr(cr, fn)(x).requires_grad


# ------------------------------------------------------------------ aliases and errors
def test_dim_and_keepdim_aliases():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    assert cr.prod(x, dim=1, keepdim=True).shape == (2, 1)
    assert cr.std(x, dim=0, keepdim=True).shape == (1, 3)
    assert cr.all(x, dim=0, keepdim=True).shape == (1, 3)
    assert cr.cumsum(x, dim=0).data.tolist() == np.cumsum(x, axis=0).tolist()
    assert cr.sort(-x, dim=0).data.tolist() == np.sort(-x, axis=0).tolist()
    assert cr.tensor(x).topk(1, dim=0)[1].data.tolist() == [[1, 1, 1]]
    with pytest.raises(TypeError, match="keepdims= or keepdim="):
        cr.prod(x, keepdims=True, keepdim=True)
    with pytest.raises(TypeError, match="axis= or dim="):
        cr.std(x, axis=0, dim=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: cr.prod(x, axis=2),
        lambda x: cr.std(x, axis=-3),
        lambda x: cr.all(x, axis=5),
        lambda x: cr.any(x, dim=2),
        lambda x: cr.cumsum(x, axis=2),
        lambda x: cr.cumprod(x, dim=-3),
        lambda x: cr.sort(x, axis=2),
        lambda x: cr.argsort(x, axis=-3),
        lambda x: cr.topk(x, 1, axis=2),
    ],
    ids=["prod", "std", "all", "any", "cumsum", "cumprod", "sort", "argsort", "topk"],
)
def test_out_of_range_axis_is_a_clear_error(call):
    with pytest.raises(ValueError, match="out of range for a tensor with 2 dimension"):
        call(np.zeros((2, 3)))


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "sort", "argsort"])
def test_scans_and_sorts_take_a_single_axis(name):
    with pytest.raises(ValueError, match="single axis"):
        getattr(cr, name)(np.zeros((2, 3)), axis=(0, 1))


def test_sorting_a_0d_tensor_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 1 dimension"):
        cr.sort(np.float64(1.0))


def test_tensor_methods_call_the_ops():
    x = cr.tensor(np.array([[0.3, 0.6], [0.2, 0.9]]))
    for name in ELEMENTWISE:
        np.testing.assert_array_equal(getattr(x, name)().data, getattr(cr, name)(x).data)
    np.testing.assert_array_equal(x.arctan2(x + 2).data, cr.arctan2(x, x + 2).data)
    for name in ("prod", "cumsum", "cumprod", "std", "all", "any", "sort", "argsort"):
        np.testing.assert_array_equal(getattr(x, name)(axis=0).data,
                                      getattr(cr, name)(x, axis=0).data)  # fmt: skip
