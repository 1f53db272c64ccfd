"""``cr.vmap``: in_axes and out_axes, pytrees, nesting, composition with the other
transforms, the clear errors, and what a batched value refuses to do inside vmap."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import toys
from chainrule.batched import Batched


def test_maps_over_the_leading_axis_by_default(rng):
    x = rng.standard_normal((5, 3))
    w = rng.standard_normal((3, 2))
    out = cr.vmap(lambda v: cr.tanh(v @ w).sum())(x)
    assert out.shape == (5,)
    np.testing.assert_allclose(out.data, np.tanh(x @ w).sum(axis=1), rtol=1e-12)


def test_inside_f_a_value_has_one_example_shape(rng):
    seen = []

    def f(v):
        seen.append((v.shape, v.ndim, len(v), type(v)))
        return v.reshape(v.shape[0] * v.shape[1])

    out = cr.vmap(f)(rng.standard_normal((4, 2, 3)))
    assert seen == [((2, 3), 2, 2, Batched)]
    assert out.shape == (4, 6) and type(out) is cr.Tensor


def test_in_axes_none_shares_an_argument_and_axis_one_maps_columns(rng):
    x = rng.standard_normal((3, 4))
    b = rng.standard_normal(3)
    out = cr.vmap(lambda column, shift: column + shift, in_axes=(1, None))(x, b)
    np.testing.assert_allclose(out.data, (x + b[:, None]).T)
    out = cr.vmap(lambda column: column * 2, in_axes=1, out_axes=1)(x)
    np.testing.assert_allclose(out.data, 2 * x)
    out = cr.vmap(lambda column: column * 2, in_axes=-1, out_axes=-1)(x)
    np.testing.assert_allclose(out.data, 2 * x)


def test_pytrees_in_and_out(rng):
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    xs = [rng.standard_normal((6, 3)), rng.standard_normal((6, 2))]

    def f(p, pair):
        x, shift = pair
        y = x @ p["w"] + p["b"] + shift
        return {"y": y, "norm": (y * y).sum()}

    out = cr.vmap(f, in_axes=({"w": None, "b": None}, [0, 0]))(params, xs)
    expected = xs[0] @ params["w"] + params["b"] + xs[1]
    np.testing.assert_allclose(out["y"].data, expected, rtol=1e-12)
    np.testing.assert_allclose(out["norm"].data, (expected**2).sum(axis=1), rtol=1e-12)
    out = cr.vmap(f, in_axes=(None, 0), out_axes={"y": 1, "norm": 0})(params, xs)
    np.testing.assert_allclose(out["y"].data, expected.T, rtol=1e-12)


def test_an_output_that_does_not_vary_is_broadcast_or_kept_with_out_axes_none(rng):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal(3)
    out = cr.vmap(lambda v: cr.tensor(w) * 2)(x)
    np.testing.assert_allclose(out.data, np.broadcast_to(2 * w, (4, 3)))
    out = cr.vmap(lambda v: (v.sum(), cr.tensor(w)), out_axes=(0, None))(x)
    assert out[0].shape == (4,) and out[1].shape == (3,)


def test_nested_vmap_is_an_outer_product_and_a_batch_of_batches(rng):
    u, v = rng.standard_normal(3), rng.standard_normal(4)
    outer = cr.vmap(lambda a: cr.vmap(lambda b: a * b)(v))(u)
    np.testing.assert_allclose(outer.data, np.outer(u, v))
    a = rng.standard_normal((2, 5, 3))
    w = rng.standard_normal((3, 4))
    out = cr.vmap(cr.vmap(lambda row: row @ w))(a)
    np.testing.assert_allclose(out.data, a @ w, rtol=1e-12)
    # the inner vmap maps axis 1 of each outer example; the outer then puts its axis last
    out = cr.vmap(cr.vmap(lambda row: row.sum(), in_axes=1), in_axes=0, out_axes=1)(a)
    np.testing.assert_allclose(out.data, a.sum(axis=1).T, rtol=1e-12)


def test_grad_through_vmap(rng):
    x = rng.standard_normal((5, 3))
    w = rng.standard_normal((3, 2))

    def total(w):
        return cr.vmap(lambda row: cr.tanh(row @ w).sum())(x).sum()

    np.testing.assert_allclose(
        cr.grad(total)(w).data,
        cr.grad(lambda w: cr.tanh(cr.tensor(x) @ w).sum())(w).data,
        rtol=1e-12,
    )


def test_per_example_gradients_of_a_loss_over_pytree_parameters(rng):
    params = [(rng.standard_normal((3, 4)), rng.standard_normal(4)),
              (rng.standard_normal((4, 2)), rng.standard_normal(2))]  # fmt: skip
    xs, ys = rng.standard_normal((6, 3)), rng.integers(0, 2, 6)

    def loss(p, x, y):
        (w1, b1), (w2, b2) = p
        scores = cr.tanh(x @ w1 + b1) @ w2 + b2
        return cr.nn.functional.cross_entropy(scores, y)

    grads = cr.vmap(cr.grad(loss), in_axes=(None, 0, 0))(params, xs, cr.tensor(ys))
    assert [(w.shape, b.shape) for w, b in grads] == [((6, 3, 4), (6, 4)), ((6, 4, 2), (6, 2))]
    for i in range(6):
        one = cr.grad(loss)(params, xs[i], ys[i])
        for (w, b), (w1, b1) in zip(grads, one):
            np.testing.assert_allclose(w.data[i], w1.data, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(b.data[i], b1.data, rtol=1e-10, atol=1e-12)


def test_value_and_grad_and_has_aux_inside_vmap(rng):
    x = rng.standard_normal((4, 3))

    def f(v):
        return (v**3).sum(), v.mean()

    (values, aux), grads = cr.vmap(cr.value_and_grad(f, has_aux=True))(x)
    np.testing.assert_allclose(values.data, (x**3).sum(axis=1))
    np.testing.assert_allclose(aux.data, x.mean(axis=1))
    np.testing.assert_allclose(grads.data, 3 * x**2)


def test_second_order_per_example(rng):
    x = rng.standard_normal((4, 3))
    f = cr.grad(lambda v: cr.grad(lambda u: (u**4).sum())(v).sum())
    np.testing.assert_allclose(cr.vmap(f)(x).data, 12 * x**2)


def test_per_example_jacobians_and_hessians_run_f_once(rng):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((3, 2))
    calls = []

    def f(v):
        calls.append(v.shape)
        return cr.tanh(v @ w)

    for layout, move in (("numerator", lambda j: j), ("denominator", lambda j: j.T)):
        jacobians = cr.vmap(cr.jacobian(f, layout=layout))(x)
        assert calls == [(3,)]  # one call: the batch, not four examples
        calls.clear()
        for i in range(4):
            expected = move(cr.jacobian(f)(x[i]).data)
            np.testing.assert_allclose(jacobians.data[i], expected, rtol=1e-12)
        calls.clear()
    hessians = cr.vmap(cr.hessian(lambda v: (f(v) ** 2).sum()))(x)
    assert calls == [(3,)]
    for i in range(4):
        expected = cr.hessian(lambda v: (f(v) ** 2).sum())(x[i]).data
        np.testing.assert_allclose(hessians.data[i], expected, rtol=1e-10)
    # and through an enclosing grad: the per-example Jacobians stay differentiable
    total = cr.grad(lambda w: (cr.vmap(cr.jacobian(lambda v: cr.tanh(v @ w)))(x) ** 2).sum())
    looped = cr.grad(
        lambda w: sum((cr.jacobian(lambda v: cr.tanh(v @ w))(row) ** 2).sum() for row in x)
    )
    np.testing.assert_allclose(total(w).data, looped(w).data, rtol=1e-10)


def test_transforms_without_a_batched_form_run_once_per_example(rng):
    x = rng.standard_normal((4, 3))
    jacobians = cr.vmap(cr.jacfwd(cr.sin))(x)
    np.testing.assert_allclose(jacobians.data[1], np.diag(np.cos(x[1])), atol=1e-15)
    tangents = cr.vmap(lambda v: cr.jvp(cr.sin, (v,), (np.ones(3),))[1])(x)
    np.testing.assert_allclose(tangents.data, np.cos(x))


def test_layers_map_over_a_batch_of_batches(rng):
    linear = cr.nn.Linear(3, 2)
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(
        cr.vmap(linear)(x).data,
        linear(cr.tensor(x.reshape(35, 3))).data.reshape(5, 7, 2),
        rtol=1e-6,
    )
    conv = cr.nn.Conv2d(2, 3, 3, padding=1)
    images = rng.standard_normal((4, 2, 2, 6, 6)).astype(np.float32)
    expected = np.stack([conv(cr.tensor(batch)).data for batch in images])
    np.testing.assert_allclose(cr.vmap(conv)(images).data, expected, rtol=1e-5, atol=1e-6)


def test_checkpoint_inside_vmap_gives_the_same_gradients(rng):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((3, 3))
    block = cr.checkpoint(lambda v: cr.tanh(v @ w))
    grads = cr.vmap(cr.grad(lambda v: block(v).sum()))(x)
    np.testing.assert_allclose(grads.data, (1 - np.tanh(x @ w) ** 2) @ w.T, rtol=1e-12)


def _cube(rule):
    """toys.Cube declaring ``rule``, and the shapes its forward is called with."""
    calls = []

    class CountedCube(toys.Cube):
        vmap_rule = rule

        @staticmethod
        def forward(ctx, x):
            calls.append(x.shape)
            return toys.Cube.forward(ctx, x)

    return CountedCube, calls


def test_a_users_function_without_a_rule_runs_once_per_example(rng):
    cube, calls = _cube(None)
    x = rng.standard_normal((3, 2))
    grads = cr.vmap(cr.grad(lambda v: cube.apply(v).sum()))(x)
    np.testing.assert_allclose(grads.data, 3 * x**2)
    assert calls == [(2,)] * 3


def test_comparisons_and_where_keep_the_batch(rng):
    x = rng.standard_normal((5, 4))
    out = cr.vmap(lambda v: cr.where(v > 0, v, -2 * v))(x)
    np.testing.assert_allclose(out.data, np.where(x > 0, x, -2 * x))
    out = cr.vmap(lambda v: cr.nn.functional.leaky_relu(v, 0.1).sum())(x)
    np.testing.assert_allclose(out.data, np.where(x > 0, x, 0.1 * x).sum(axis=1))


@pytest.mark.parametrize(
    "read",
    [bool, float, lambda v: v.item(), lambda v: v.numpy(), lambda v: v.data, np.asarray],
    ids=["bool", "float", "item", "numpy", "data", "asarray"],
)
def test_reading_a_batched_value_is_refused_with_the_reason(read, rng):
    with pytest.raises(TypeError, match="inside cr.vmap.*whole batch"):
        cr.vmap(lambda v: read(v.sum()))(rng.standard_normal((3, 2)))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: cr.vmap(lambda a, b: a + b)(np.ones((4, 3)), np.ones((5, 3))),
         r"different sizes \(size 4: argument 0 \(4, 3\) along axis 0; size 5: argument 1"),
        (lambda: cr.vmap(lambda a, b: a, in_axes=(0,))(np.ones(3), np.ones(3)),
         "in_axes has 1 entry for 2 positional"),
        (lambda: cr.vmap(lambda a: a, in_axes=2)(np.ones((4, 3))),
         r"in_axes 2 is out of range for argument 0, of shape \(4, 3\)"),
        (lambda: cr.vmap(lambda p: p["a"], in_axes=({"b": 0},))({"a": np.ones(3)}),
         r"argument 0 has the structure \{'b': 0\}.*\{'a': array\(3,\)\}"),
        (lambda: cr.vmap(lambda a: a, out_axes=None)(np.ones(3)), "out_axes is None"),
        (lambda: cr.vmap(lambda a: {"x": a}, out_axes={"y": 0})(np.ones((2, 3))),
         r"out_axes for the output has the structure \{'y': 0\}.*"
         r"the output's \{'x': array\(3,\)\}"),
        (lambda: cr.vmap(lambda a: a, in_axes=None)(np.ones(3)), "maps no argument"),
        (lambda: cr.vmap(lambda a: "text")(np.ones(3)), "must return arrays"),
    ],
    ids=["sizes", "in_axes-length", "axis-range", "structure", "out_axes-none",
         "out_axes-structure", "no-axis", "non-array"],
)  # fmt: skip
def test_errors_name_the_argument_and_both_sides(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_no_state_leaks_after_an_error(rng):
    with pytest.raises(TypeError):
        cr.vmap(lambda v: float(v.sum()))(rng.standard_normal((3, 2)))
    from chainrule.batched import LEVELS
    from chainrule.mode import STATE

    assert STATE.vmap is None and STATE.vmap_depth == 0 and not LEVELS and STATE.fast
    x = cr.tensor(rng.standard_normal(3), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data)


@pytest.mark.parametrize(
    "index",
    [(np.array([1, 0, 1]), slice(None, 4), 0, Ellipsis, None),  # found by the program hunt
     (0, np.array([2, 0])), (np.array([1, 1]), np.array([0, 2])), (slice(None), [0, 0]),
     (np.array([[1], [0]]), slice(None), np.array([2, 1])), (Ellipsis, None, 1)],
    ids=["array-slice-int", "int-array", "two-arrays", "list", "separated-arrays", "ellipsis"],
)  # fmt: skip
def test_indexing_under_vmap_puts_numpy_axes_where_numpy_does(index, rng):
    x = rng.standard_normal((4, 2, 5, 3))
    out = cr.vmap(lambda v: v[index])(x)
    expected = np.stack([example[index] for example in x])
    np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("rule", ["elementwise", "stacks"])
def test_a_function_that_declares_a_rule_runs_once_on_the_batch(rule, rng):
    cube, calls = _cube(rule)
    x = rng.standard_normal((3, 2))
    grads = cr.vmap(cr.grad(lambda v: cube.apply(v).sum()))(x)
    np.testing.assert_allclose(grads.data, 3 * x**2)
    assert calls == [(3, 2)]  # one call, on the whole batch


def test_an_unknown_declared_rule_is_refused(rng):
    cube, _ = _cube("elementwize")
    with pytest.raises(ValueError, match="vmap_rule is 'elementwize'; it must be"):
        cr.vmap(cube.apply)(rng.standard_normal((3, 2)))


def test_dropout_inside_vmap_draws_a_mask_per_example():
    x = np.ones((64, 50))
    out = cr.vmap(lambda v: cr.nn.functional.dropout(v, 0.5))(x).data
    assert set(np.unique(out)) <= {0.0, 2.0}
    assert len({row.tobytes() for row in out}) == 64  # not one mask for the whole batch


def test_vmap_inside_compile_and_compile_inside_vmap(rng):
    w = rng.standard_normal((3, 2))

    def loss(w, x):
        return cr.tanh(x @ w).sum()

    per_example = cr.vmap(cr.grad(loss), in_axes=(None, 0))
    compiled = cr.compile(per_example)
    for scale in (1.0, 2.0):  # the second call replays the program
        xs = scale * rng.standard_normal((5, 3))
        np.testing.assert_array_equal(compiled(w, xs).data, per_example(w, xs).data)
    inner = cr.compile(lambda x: loss(w, x))
    xs = rng.standard_normal((4, 3))
    np.testing.assert_allclose(cr.vmap(inner)(xs).data, np.tanh(xs @ w).sum(axis=1))


def test_vjp_inside_vmap_runs_batched_with_batched_or_shared_cotangents(rng):
    w = rng.standard_normal((3, 4))
    xs, us, u = rng.standard_normal((5, 3)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    calls = []

    def f(x):
        calls.append(1)
        return cr.tanh(x @ w)

    def pulled_back(x, cotangent):
        value, vjp_fn = cr.vjp(f, x)
        return value, vjp_fn(cotangent)[0]

    for in_axes, cotangents in (((0, 0), us), ((0, None), u)):
        calls.clear()
        values, grads = cr.vmap(pulled_back, in_axes=in_axes)(xs, cotangents)
        assert len(calls) == 1
        for i in range(5):
            value, vjp_fn = cr.vjp(f, xs[i])
            cotangent = us[i] if in_axes[1] == 0 else u
            np.testing.assert_allclose(values.data[i], value.data, rtol=1e-12)
            np.testing.assert_allclose(grads.data[i], vjp_fn(cotangent)[0].data, rtol=1e-12)


def test_jvp_inside_vmap_runs_batched_and_gives_per_example_hvps(rng):
    w = rng.standard_normal((3, 4))
    xs, vs = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    calls = []

    def energy(x):
        calls.append(1)
        return (cr.tanh(x @ w) ** 2).sum()

    # Hessian-vector products, one per example: the tangent of the gradient
    hvps = cr.vmap(lambda x, v: cr.jvp(cr.grad(energy), (x,), (v,))[1])(xs, vs)
    assert len(calls) == 1
    for i in range(5):
        expected = cr.hessian(energy)(xs[i]).data @ vs[i]
        np.testing.assert_allclose(hvps.data[i], expected, rtol=1e-10)


def test_full_reductions_inside_vmap_leave_the_shared_options_alone():
    # x.sum() hands apply_one one options dict made once; vmap's reduction rule rewrites
    # the axes it is given, so it must be given a copy
    import sys

    shared = sys.modules["chainrule.tensor"]._OVER_ALL_AXES
    batch = cr.tensor(np.arange(12.0).reshape(3, 4))
    out = cr.vmap(lambda x: x.sum() + x.mean(keepdims=True).sum())(batch)
    np.testing.assert_allclose(out.data, batch.data.sum(1) + batch.data.mean(1))
    assert shared == ({"axes": None, "keepdims": False}, {"axes": None, "keepdims": True})
    x = cr.tensor(np.arange(4.0), requires_grad=True)
    x.sum().backward()  # outside vmap again: all axes
    np.testing.assert_array_equal(x.grad.data, np.ones(4))
