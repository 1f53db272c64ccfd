"""The op library against NumPy and finite differences, driven by the table in op_specs.py.

For every spec: the forward matches its NumPy reference, ``cr.gradcheck`` (first order) and
``cr.gradgradcheck`` (second order, through create_graph) pass in float64, and float32 and
float64 inputs keep their dtype through the forward and the gradients. Then the conventions
that finite differences cannot check (kinks, ties), numerical stability, and the errors.
"""

from __future__ import annotations

import operator
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine
from op_specs import OP_SPECS, SPEC_METHODS, SPEC_OPERATORS, spec_id

DIFFERENTIABLE = [s for s in OP_SPECS if s.differentiable]
SPEC_FUNCTIONS = {
    "matmul", "dot", "outer", "maximum", "minimum", "where", "concatenate", "stack",
    "logsumexp", "softmax", "log_softmax", "einsum",
}  # fmt: skip


def leaves(arrays: list[np.ndarray]) -> list[cr.Tensor]:
    return [cr.tensor(a, requires_grad=True) for a in arrays]


def backward_of(fn, *values, seed=None):
    """Gradients of sum(fn(*xs) * seed) with respect to float64 leaves holding ``values``."""
    xs = leaves([np.asarray(v, dtype=np.float64) for v in values])
    out = fn(*xs)
    out.backward(np.ones(out.shape) if seed is None else np.asarray(seed, dtype=np.float64))
    return [x.grad.data for x in xs]


# ------------------------------------------------------------------ the table is complete
def test_every_public_op_has_a_spec():
    assert set(cr.ops.__all__) == {s.name for s in OP_SPECS}


FORWARD_ONLY = {"argmax", "argmin", "argsort", "all", "any"}  # integer or bool results


def test_only_the_index_and_logical_ops_are_forward_only():
    assert {s.name for s in OP_SPECS if not s.differentiable} == FORWARD_ONLY
    assert set(cr.ops.__all__) - FORWARD_ONLY == {s.name for s in DIFFERENTIABLE}


def test_spec_ids_are_unique():
    ids = [s.id for s in OP_SPECS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_specs_reach_every_method_and_operator_of_spec():
    assert SPEC_METHODS <= {s.name for s in OP_SPECS if s.via == "method"}
    assert SPEC_OPERATORS <= {s.name for s in OP_SPECS if s.via == "operator"}


@pytest.mark.parametrize("name", sorted(SPEC_METHODS | SPEC_FUNCTIONS))
def test_spec_names_are_public(name):
    assert callable(getattr(cr, name))
    if name in SPEC_METHODS:
        assert callable(getattr(cr.Tensor, name))


@pytest.mark.parametrize("spec", OP_SPECS, ids=spec_id)
def test_spec_inputs_stay_small(spec, rng):
    # ~12; (2, 3, 4) & (4,) has 24, and the conv and pooling images up to 24
    assert all(a.size <= 24 for a in spec.inputs(rng))


# ------------------------------------------------------------------ forward, gradients, dtype
@pytest.mark.parametrize("spec", OP_SPECS, ids=spec_id)
def test_forward_matches_numpy(spec, rng):
    arrays = spec.inputs(rng)
    out = spec.fn(*[cr.tensor(a) for a in arrays])
    expected = np.asarray(spec.ref(*arrays))
    assert isinstance(out, cr.Tensor)
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype
    if spec.differentiable:
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_gradcheck(spec, rng):
    assert cr.gradcheck(spec.fn, tuple(spec.inputs(rng)))


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_gradgradcheck(spec, rng):
    assert cr.gradgradcheck(spec.fn, tuple(spec.inputs(rng)))


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_create_graph_gives_the_same_first_derivatives(spec, rng):
    """gradgradcheck checks the derivative of the recorded backward, not its value."""
    arrays = spec.inputs(rng)
    seed = rng.standard_normal(np.shape(spec.ref(*arrays)))
    plain = backward_of(spec.fn, *arrays, seed=seed)
    xs = leaves(arrays)
    recorded = engine.grad(spec.fn(*xs), xs, grad_outputs=cr.tensor(seed), create_graph=True)
    for index, (p, r) in enumerate(zip(plain, recorded)):
        np.testing.assert_allclose(r.data, p, rtol=1e-12, atol=1e-12, err_msg=f"input {index}")


def _nodes(out):
    """Every recorded node behind ``out``."""
    stack, seen = [out.grad_fn], {}
    while stack:
        node = stack.pop()
        if isinstance(node, cr.Context) and id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.parents)
    return list(seen.values())


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_jacobian_in_one_batched_walk_equals_one_backward_per_output(spec, rng):
    """Every rule is ``batchable``: it passes extra leading axes of grad_out (a batch of
    cotangents) through, so ``cr.jacobian`` walks once with a block of the identity. Its
    rows must be the gradients of one backward per output element."""
    arrays = spec.inputs(rng)
    out = spec.fn(*leaves(arrays))
    nodes = _nodes(out)
    assert all(node.function.batchable for node in nodes), [node.name for node in nodes]
    # a node may opt out for its arguments (an index whose advanced parts a batch axis
    # would move): then cr.jacobian falls back to one walk per row, still equal
    opted_out = [node.name for node in nodes if not node.__dict__.get("batchable", True)]
    assert engine.is_batchable(out) == (not opted_out)
    seeds = np.eye(out.size).reshape((out.size,) + out.shape)
    for argnum, array in enumerate(arrays):
        jac = cr.jacobian(spec.fn, argnums=argnum)(*arrays)
        rows = [backward_of(spec.fn, *arrays, seed=seed)[argnum] for seed in seeds]
        expected = np.stack(rows).reshape(out.shape + array.shape)
        np.testing.assert_allclose(
            jac.data, expected, rtol=1e-12, atol=1e-12, err_msg=f"input {argnum}"
        )


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_hessian_in_one_batched_walk_equals_one_second_backward_per_element(spec, rng):
    """``cr.hessian`` walks the recorded backward graph (the rules run on Tensors) once,
    batched: the nodes a backward records (transposed convolutions, scatters, ...) are
    batchable too. All inputs are slices of one vector z, so the mixed partials of a
    bilinear op (conv2d in x and w) count. Rows: one backward per element of ∇f(z)."""
    arrays = spec.inputs(rng)
    u = rng.standard_normal(np.shape(spec.ref(*arrays)))
    ends = np.cumsum([a.size for a in arrays])

    def f(z):
        pieces = [z[end - a.size : end].reshape(a.shape) for a, end in zip(arrays, ends)]
        return (spec.fn(*pieces) * u).sum()

    z0 = np.concatenate([a.ravel() for a in arrays])
    z = cr.tensor(z0, requires_grad=True)
    (grad,) = engine.grad(f(z), [z], create_graph=True)
    if not grad.requires_grad:
        pytest.skip("linear in its inputs: the Hessian is zero")
    assert engine.is_batchable(grad) or any(
        not node.__dict__.get("batchable", True) for node in _nodes(grad)
    )
    rows = []
    for k in range(grad.size):
        (second,) = engine.grad(grad[k], [z], retain_graph=True)
        rows.append(np.zeros(z.shape) if second is None else second.data)
    np.testing.assert_allclose(cr.hessian(f)(z0).data, np.stack(rows), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_a_jacobian_under_differentiation_is_a_recorded_batched_walk(spec, rng):
    """A Jacobian that must stay differentiable (connected to inputs that require grad)
    runs the batched rules on Tensors. Differentiating a function of it gives what the
    same function of a Jacobian recorded row by row gives."""
    arrays = spec.inputs(rng)
    out_shape = np.shape(spec.ref(*arrays))
    weights = rng.standard_normal(out_shape + arrays[0].shape)

    xs = leaves(arrays)
    jac = cr.jacobian(lambda x0: spec.fn(x0, *xs[1:]))(xs[0])  # nested: recorded
    if not jac.requires_grad:
        pytest.skip("the Jacobian is a constant (the op is linear, its other inputs absent)")
    (jac * jac * weights).sum().backward()

    ys = leaves(arrays)
    out = spec.fn(*ys)
    seeds = np.eye(out.size).reshape((out.size,) + out.shape)
    rows = [
        engine.grad(out, [ys[0]], grad_outputs=cr.tensor(seed), retain_graph=True,
                    create_graph=True)[0]
        for seed in seeds
    ]  # fmt: skip
    by_rows = cr.stack(rows).reshape(out_shape + arrays[0].shape)
    (by_rows * by_rows * weights).sum().backward()
    for index, (x, y) in enumerate(zip(xs, ys)):
        got = np.zeros(x.shape) if x.grad is None else x.grad.data
        expected = np.zeros(y.shape) if y.grad is None else y.grad.data
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"input {index}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_dtype_is_kept_through_forward_and_backward(spec, dtype, rng):
    xs = leaves(spec.inputs(rng, dtype))
    out = spec.fn(*xs)
    assert out.dtype == (dtype if spec.out_dtype is None else spec.out_dtype)
    out.backward(np.ones(out.shape))
    for x in xs:
        assert x.grad.dtype == dtype
        assert x.grad.shape == x.shape


@pytest.mark.parametrize("spec", [s for s in OP_SPECS if not s.differentiable], ids=spec_id)
def test_forward_only_ops_give_integer_or_bool_tensors_off_the_graph(spec, rng):
    x = cr.tensor(spec.inputs(rng)[0], requires_grad=True)
    out = spec.fn(x)
    assert out.dtype.kind == ("b" if spec.name in ("all", "any") else "i")
    assert not out.requires_grad and out.grad_fn is None


def test_numpy_scalars_do_not_promote_float32_on_either_side():
    x = cr.tensor(np.arange(1.0, 4.0, dtype=np.float32), requires_grad=True)
    two = np.float64(2.0)
    for y in (two * x, x * two, two + x, two - x, two / x, x**two, cr.maximum(two, x)):
        assert y.dtype == np.float32


# ------------------------------------------------------------------ comparisons
COMPARISONS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("compare", COMPARISONS, ids=lambda c: c.__name__)
def test_comparisons_give_bool_tensors_off_the_graph(compare, rng):
    a = np.round(rng.standard_normal((3, 1)), 1)
    b = np.round(rng.standard_normal((1, 4)), 1)
    b[0, 0] = a[1, 0]  # one equal pair
    ta = cr.tensor(a, requires_grad=True)
    for other, expected in ((cr.tensor(b), compare(a, b)), (b, compare(a, b)),
                            (0.0, compare(a, 0.0))):  # fmt: skip
        out = compare(ta, other)
        assert isinstance(out, cr.Tensor)
        assert out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.data, expected)


# ------------------------------------------------------------------ kinks and ties
def test_relu_derivative_at_zero_is_zero():
    (g,) = backward_of(cr.relu, [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


def test_abs_derivative_at_zero_is_zero():
    (g,) = backward_of(cr.abs, [-1.5, 0.0, 2.0])
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])
    (g,) = backward_of(abs, [0.0, -0.0])
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_clip_passes_gradient_at_its_bounds():
    x = [-2.0, -1.0, 0.0, 1.0, 2.0]
    (g,) = backward_of(lambda t: cr.clip(t, -1.0, 1.0), x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])
    (g,) = backward_of(lambda t: cr.clip(t, min=-1.0), x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 1.0])
    (g,) = backward_of(lambda t: t.clip(max=1.0), x)
    np.testing.assert_array_equal(g, [1.0, 1.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("fn", [cr.maximum, cr.minimum], ids=["maximum", "minimum"])
def test_maximum_and_minimum_split_ties_in_half(fn):
    larger = fn is cr.maximum
    a, b = [1.0, 2.0, 3.0], [1.0, 0.0, 4.0]
    g_a, g_b = backward_of(fn, a, b)
    np.testing.assert_array_equal(g_a, [0.5, 1.0, 0.0] if larger else [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(g_b, [0.5, 0.0, 1.0] if larger else [0.5, 1.0, 0.0])
    (g,) = backward_of(lambda t: fn(t, 0.0), [-1.0, 0.0, 1.0])  # a Python scalar ties too
    np.testing.assert_array_equal(g, [0.0, 0.5, 1.0] if larger else [1.0, 0.5, 0.0])
    # A broadcast input collects its share from every position it was compared at.
    g_a, g_b = backward_of(fn, [[1.0], [2.0]], [1.0, 2.0, 0.0])
    np.testing.assert_array_equal(g_a, [[1.5], [2.5]] if larger else [[1.5], [0.5]])
    np.testing.assert_array_equal(g_b, [0.5, 1.5, 0.0] if larger else [1.5, 0.5, 2.0])


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_reductions_split_ties_evenly(name):
    x = [3.0, 1.0, 3.0, 2.0] if name == "max" else [1.0, 3.0, 1.0, 2.0]
    (g,) = backward_of(lambda t: getattr(cr, name)(t), x)
    np.testing.assert_array_equal(g, [0.5, 0.0, 0.5, 0.0])
    (g,) = backward_of(lambda t: getattr(t, name)(), x, seed=4.0)
    np.testing.assert_array_equal(g, [2.0, 0.0, 2.0, 0.0])

    rows = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, 4.0, 1.0]]
    if name == "min":
        rows = [[-v for v in row] for row in rows]
    third = 1.0 / 3.0
    expected = [[0.0, 0.5, 0.5], [third, third, third], [1.0, 0.0, 0.0]]
    for keepdims in (False, True):
        (g,) = backward_of(lambda t, k=keepdims: getattr(cr, name)(t, axis=1, keepdims=k), rows)
        np.testing.assert_allclose(g, expected, rtol=1e-15)
    (g,) = backward_of(lambda t: getattr(cr, name)(t), rows)  # the full reduction: 5 is alone
    np.testing.assert_array_equal(g, [[0.0] * 3, [0.0] * 3, [1.0, 0.0, 0.0]])


def test_where_sends_the_gradient_by_the_condition():
    cond = np.array([True, False, True])
    g_a, g_b = backward_of(lambda a, b: cr.where(cond, a, b), [1.0, 2.0, 3.0], [4.0, 5.0, 6.0],
                           seed=[1.0, 2.0, 3.0])  # fmt: skip
    np.testing.assert_array_equal(g_a, [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(g_b, [0.0, 2.0, 0.0])
    # A (3, 1) condition broadcast against a (1, 4) and a (4,) operand.
    cond = cr.tensor(np.array([[True], [False], [True]]))
    g_a, g_b = backward_of(lambda a, b: cr.where(cond, a, b), np.zeros((1, 4)), np.zeros(4))
    np.testing.assert_array_equal(g_a, [[2.0] * 4])
    np.testing.assert_array_equal(g_b, [1.0] * 4)
    # Where both sides are the same tensor, the gradient passes whole.
    (g,) = backward_of(lambda a: cr.where(cond, a, a * 3.0), np.ones((3, 2)))
    np.testing.assert_array_equal(g, [[1.0, 1.0], [3.0, 3.0], [1.0, 1.0]])


def test_sqrt_derivative_at_zero_is_inf():
    with np.errstate(divide="ignore"):
        (g,) = backward_of(cr.sqrt, [0.0, 4.0])
    assert g[0] == np.inf
    assert g[1] == 0.25


# ------------------------------------------------------------------ indexing accumulates
def test_repeated_integer_indices_accumulate_gradients():
    x = np.arange(12.0).reshape(3, 4)
    (g,) = backward_of(lambda t: t[np.array([0, 2, 0, 0])], x)
    np.testing.assert_array_equal(g[:, 0], [3.0, 0.0, 1.0])
    (g,) = backward_of(lambda t: t[[1, 1], [2, 2]] * 1.0, x, seed=[2.0, 5.0])
    expected = np.zeros((3, 4))
    expected[1, 2] = 7.0
    np.testing.assert_array_equal(g, expected)
    # The same rule as np.add.at, for a 2-D index array and a tensor index.
    index = np.array([[0, 1], [1, 1]])
    seed = np.arange(16.0).reshape(2, 2, 4)
    expected = np.zeros((3, 4))
    np.add.at(expected, index, seed)
    (g,) = backward_of(lambda t: t[cr.tensor(index)], x, seed=seed)
    np.testing.assert_array_equal(g, expected)


def test_masks_and_basic_indices_send_gradient_to_the_selected_elements():
    x = np.zeros((3, 4))
    mask = np.arange(12).reshape(3, 4) % 3 == 0
    (g,) = backward_of(lambda t: t[mask], x)
    np.testing.assert_array_equal(g, mask.astype(float))
    (g,) = backward_of(lambda t: t[::-1, ::-2], x)
    expected = np.zeros((3, 4))
    expected[:, 1::2] = 1.0
    np.testing.assert_array_equal(g, expected)


def test_gradgradcheck_of_repeated_indices():
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    assert cr.gradgradcheck(lambda t: (t[[0, 0, 1], [2, 2, 0]] ** 3).sum(), (x,))


# ------------------------------------------------------------------ astype
@pytest.mark.parametrize(
    "source, target", [(np.float32, np.float64), (np.float64, np.float32)],
    ids=["float32->float64", "float64->float32"],
)  # fmt: skip
def test_astype_gradient_comes_back_in_the_input_dtype(source, target):
    x = cr.tensor(np.array([1.0, 2.0, 3.0], dtype=source), requires_grad=True)
    y = x.astype(target)
    assert y.dtype == target
    (y * y).sum().backward()
    assert x.grad.dtype == source
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])


def test_astype_to_an_integer_dtype_leaves_the_graph():
    x = cr.tensor(np.array([1.5, 2.5]), requires_grad=True)
    y = cr.astype(x, np.int64)
    assert y.dtype == np.int64
    assert not y.requires_grad


# ------------------------------------------------------------------ numerical stability
EXTREMES = [-1e4, -1000.0, 0.0, 1000.0, 1e4]


def raising():
    """A context where NumPy's overflow, division by zero and invalid results raise.

    Underflow to 0 (exp(-1e4)) is the right answer here, so it does not raise.
    """
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


STABLE = [
    ("softmax", lambda t: cr.softmax(t)),
    ("log_softmax", lambda t: cr.log_softmax(t)),
    ("logsumexp", lambda t: cr.logsumexp(t)),
    ("logsumexp-axis", lambda t: cr.logsumexp(t.reshape(1, -1), axis=1)),
    ("sigmoid", lambda t: cr.sigmoid(t)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("fn", [f for _, f in STABLE], ids=[n for n, _ in STABLE])
def test_stable_ops_stay_finite_at_extreme_inputs(fn, dtype):
    for values in (EXTREMES, [1e4, 1e4 - 1.0, 1e4 - 2.0], [-1e4, -1e4, -1000.0]):
        x = cr.tensor(np.array(values, dtype=dtype), requires_grad=True)
        with warnings.catch_warnings(), raising():
            warnings.simplefilter("error")
            y = fn(x)
            y.backward(np.ones(y.shape))
        assert y.dtype == dtype
        assert np.all(np.isfinite(y.data)), y.data
        assert np.all(np.isfinite(x.grad.data)), x.grad.data


def test_stable_ops_give_the_right_values_at_extreme_inputs():
    x = np.array(EXTREMES)
    with raising():
        np.testing.assert_allclose(cr.logsumexp(x).item(), 1e4, rtol=1e-15)
        np.testing.assert_allclose(cr.softmax(x).data, [0, 0, 0, 0, 1], atol=1e-300)
        np.testing.assert_allclose(cr.log_softmax(x).data, x - 1e4, rtol=1e-15)
        np.testing.assert_allclose(cr.sigmoid(x).data, [0, 0, 0.5, 1, 1], atol=1e-300)
        near = np.array([1000.0, 1000.0 + np.log(3.0)])
        # (1000 + log 3 is itself only stored to ~1e-13 relative to log 3.)
        np.testing.assert_allclose(cr.softmax(near).data, [0.25, 0.75], rtol=1e-12)
        np.testing.assert_allclose(cr.logsumexp(near).item(), 1000.0 + np.log(4.0), rtol=1e-15)


def test_logsumexp_of_all_minus_inf_is_minus_inf():
    x = cr.tensor(np.full((2, 3), -np.inf), requires_grad=True)
    with warnings.catch_warnings(), raising():
        warnings.simplefilter("error")
        y = cr.logsumexp(x, axis=1)
        assert np.all(y.data == -np.inf)
        assert cr.logsumexp(x).item() == -np.inf
        y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros((2, 3)))


def test_logsumexp_with_a_row_of_minus_inf_next_to_a_finite_row():
    x = cr.tensor(np.array([[-np.inf, -np.inf], [0.0, 0.0]]), requires_grad=True)
    with warnings.catch_warnings(), raising():
        warnings.simplefilter("error")
        y = cr.logsumexp(x, axis=1)
        y.sum().backward()
    np.testing.assert_array_equal(y.data, [-np.inf, np.log(2.0)])
    np.testing.assert_array_equal(x.grad.data, [[0.0, 0.0], [0.5, 0.5]])


# ------------------------------------------------------------------ clear errors
def t(*shape):
    return cr.tensor(np.ones(shape))


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(4, 5\)"):
        cr.matmul(t(2, 3), t(4, 5))
    with pytest.raises(ValueError, match=r"\(2, 2, 3\) @ \(3, 3, 2\)"):
        t(2, 2, 3) @ t(3, 3, 2)  # batch dimensions that do not broadcast
    with pytest.raises(ValueError, match=r"\(3,\) @ \(4,\)"):
        t(3) @ t(4)
    with pytest.raises(ValueError, match=r"\(\) @ \(3,\)"):
        cr.matmul(t(), t(3))


def test_reshape_to_a_wrong_size_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        t(3, 4).reshape(5, 2)
    with pytest.raises(ValueError, match=r"\(12,\).*\(-1, 5\)"):
        cr.flatten(t(3, 4)).reshape(-1, 5)


def test_broadcast_failures_name_the_shapes():
    # (NumPy's own message, which writes shapes without spaces.)
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        t(3) + t(4)
    with pytest.raises(ValueError, match=r"\(3, ?2\).*\(2, ?3\)"):
        cr.maximum(t(3, 2), t(2, 3))
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(2, 4\)"):
        cr.broadcast_to(t(3, 1), (2, 4))


def test_concatenate_and_stack_shape_mismatch_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        cr.concatenate([t(2, 3), t(2, 4)], axis=0)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3, 1\)"):
        cr.concatenate([t(2, 3), t(2, 3, 1)])
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        cr.stack([t(2, 3), t(3, 2)])
    with pytest.raises(ValueError, match="at least one"):
        cr.concatenate([])
    with pytest.raises(ValueError, match="at least one"):
        cr.stack([])


BAD_AXES = [
    ("sum", lambda: cr.sum(t(3, 4), axis=2)),
    ("mean-negative", lambda: t(3, 4).mean(axis=-3)),
    ("max-tuple", lambda: cr.max(t(3, 4), axis=(0, 5))),
    ("repeated-axis", lambda: cr.sum(t(3, 4), axis=(1, -1))),
    ("var", lambda: cr.var(t(3, 4), axis=2)),
    ("argmax", lambda: cr.argmax(t(3, 4), axis=2)),
    ("logsumexp", lambda: cr.logsumexp(t(3, 4), dim=2)),
    ("softmax", lambda: cr.softmax(t(3, 4), axis=2)),
    ("log_softmax", lambda: cr.log_softmax(t(3, 4), axis=-3)),
    ("concatenate", lambda: cr.concatenate([t(3, 4), t(3, 4)], axis=2)),
    ("stack", lambda: cr.stack([t(3, 4), t(3, 4)], axis=3)),
    ("transpose", lambda: cr.transpose(t(3, 4), (0, 2))),
    ("transpose-negative", lambda: cr.transpose(t(3, 4), (0, -3))),
    ("transpose-not-a-permutation", lambda: t(3, 4).transpose(1, 1)),
    ("swapaxes", lambda: cr.swapaxes(t(3, 4), 0, 2)),
    ("squeeze", lambda: cr.squeeze(t(3, 1), 2)),
    ("squeeze-0d", lambda: cr.squeeze(t(), 0)),
    ("expand_dims", lambda: cr.expand_dims(t(3, 4), 3)),
]


@pytest.mark.parametrize("call", [c for _, c in BAD_AXES], ids=[n for n, _ in BAD_AXES])
def test_a_bad_axis_raises_a_clear_value_error(call):
    with pytest.raises(ValueError, match="axis|axes"):
        call()


def test_squeeze_of_an_axis_that_is_not_one_says_so():
    with pytest.raises(ValueError, match=r"axis 0 of shape \(3, 1\)"):
        cr.squeeze(t(3, 1), 0)


def test_both_axis_and_dim_is_an_error():
    with pytest.raises(TypeError, match="axis= or dim="):
        cr.sum(t(3, 4), axis=0, dim=0)


def test_power_zero_has_zero_gradient_at_zero_and_sqrt_at_zero_is_inf_without_warning():
    import warnings

    x = cr.tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    x.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.sqrt().sum().backward()
    assert np.isinf(x.grad.data[0]) and np.isclose(x.grad.data[1], 0.5 / np.sqrt(2.0))
