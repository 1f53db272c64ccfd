"""The backward engine: graph shapes, graph lifetime, errors, grad mode, higher order."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine


def leaf(rng, *shape):
    return cr.tensor(rng.standard_normal(shape), requires_grad=True)


# ------------------------------------------------------------------ graph shapes
def test_fan_out_sums_the_gradients_of_every_consumer(rng):
    x = leaf(rng, 5)
    y = (x * 2.0 + x * x + x.exp()).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2.0 + 2 * x.data + np.exp(x.data), rtol=1e-12)


def test_diamond_graph(rng):
    x = leaf(rng, 4)
    a = x * 3.0
    b = a.tanh()
    c = a.exp()
    y = (b * c).sum()
    y.backward()
    t, e = np.tanh(3 * x.data), np.exp(3 * x.data)
    np.testing.assert_allclose(x.grad.data, 3 * ((1 - t**2) * e + t * e), rtol=1e-12)


def test_reused_leaf_as_both_inputs_of_one_op(rng):
    x = leaf(rng, 3)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data, rtol=1e-12)


def test_paths_of_different_lengths_meet(rng):
    # a short and a long path from x to the output: the walk must wait for both
    x = leaf(rng, 3)
    long = x
    for _ in range(10):
        long = (long * 0.5).tanh()
    y = (long * x).sum()
    y.backward()
    ref = x.data.copy()
    derivative = np.ones_like(ref)
    for _ in range(10):
        ref = np.tanh(ref * 0.5)
        derivative = derivative * 0.5 * (1 - ref**2)
    np.testing.assert_allclose(x.grad.data, ref + x.data * derivative, rtol=1e-10)


def test_random_dag_agrees_with_finite_differences():
    rng = np.random.default_rng(7)
    choices = rng.integers(0, 1000, size=(40, 3))

    def f(x, y):
        nodes = [x, y, x * y]
        for i, j, op in choices:
            a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
            if op % 3 == 0:
                nodes.append((a + b) * 0.5)
            elif op % 3 == 1:
                nodes.append((a * b).tanh())
            else:
                nodes.append(a - b.tanh())
        return nodes[-1] + nodes[-2] * nodes[-7]

    assert cr.gradcheck(f, (rng.standard_normal(3), rng.standard_normal(3)))


def test_diamond_agrees_with_pytorch(rng):
    torch = pytest.importorskip("torch")
    data = rng.standard_normal((3, 4))
    x = cr.tensor(data, requires_grad=True)
    a = x.tanh()
    y = ((a @ a.T).exp() * a.sum(axis=1, keepdims=True)).mean()
    y.backward()
    xt = torch.tensor(data, requires_grad=True)
    at = xt.tanh()
    yt = ((at @ at.T).exp() * at.sum(dim=1, keepdim=True)).mean()
    yt.backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-10)


# ------------------------------------------------------------------ accumulation, lifetime
def test_gradients_accumulate_across_backward_calls(rng):
    x = leaf(rng, 3)
    (x * x).sum().backward()
    (3.0 * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3.0, rtol=1e-12)


def test_retain_graph_allows_a_second_backward(rng):
    x = leaf(rng, 3)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 4 * x.data, rtol=1e-12)


@pytest.mark.parametrize("make", [lambda x: (x * x).sum(), lambda x: (x + 1.0).sum()])
def test_second_backward_without_retain_graph_raises(rng, make):
    x = leaf(rng, 3)
    y = make(x)
    y.backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        y.backward()


def test_a_freed_subgraph_cannot_be_reused(rng):
    x = leaf(rng, 3)
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        (h * 2.0).sum().backward()


def test_after_retain_graph_the_next_plain_backward_frees(rng):
    x = leaf(rng, 2)
    y = x.tanh().sum()
    y.backward(retain_graph=True)
    y.backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        y.backward()


@pytest.mark.parametrize("length", [20_000, 100_000])
def test_long_chain_backpropagates_without_recursion(length):
    x = cr.tensor(np.array(0.5), requires_grad=True)
    y = x
    for _ in range(length):
        y = y * 1.0
    y = y * 2.0
    y.backward()
    assert x.grad.item() == 2.0
    del y  # freeing a deep chain must not recurse either


def test_long_chain_with_engine_grad():
    x = cr.tensor(np.array(0.5), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    (g,) = engine.grad(y, [x])
    assert g.item() == 1.0


# ------------------------------------------------------------------ errors
def test_non_scalar_backward_without_grad_raises(rng):
    x = leaf(rng, 2, 3)
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        (x * 2.0).backward()


def test_non_scalar_backward_with_a_grad_works(rng):
    x = leaf(rng, 2, 3)
    seed = rng.standard_normal((2, 3))
    (x * 2.0).backward(seed)
    np.testing.assert_allclose(x.grad.data, 2 * seed, rtol=1e-12)


def test_backward_with_wrong_shaped_grad_raises(rng):
    x = leaf(rng, 2, 3)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        (x * 2.0).backward(np.ones((3, 2)))


def test_one_element_non_0d_output_needs_no_grad(rng):
    x = leaf(rng, 1, 1)
    (x * 3.0).backward()
    np.testing.assert_allclose(x.grad.data, [[3.0]])


def test_backward_without_any_grad_requiring_leaf_raises(rng):
    a = cr.tensor(rng.standard_normal(3))
    y = (a * a).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_tensor_that_does_not_require_grad_keeps_grad_none(rng):
    x = leaf(rng, 3)
    c = cr.tensor(rng.standard_normal(3))
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad.data, c.data)


def test_backward_on_non_tensor_raises():
    with pytest.raises(TypeError, match="Tensor"):
        engine.backward(np.ones(()))


@pytest.mark.parametrize("data", [[1, 2, 3], [True, False], np.arange(3, dtype=np.uint8)])
def test_integer_and_bool_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating-point"):
        cr.tensor(data, requires_grad=True)
    t = cr.tensor(data)
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad_()
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad = True
    assert not t.requires_grad


def test_integer_creation_functions_cannot_require_grad():
    with pytest.raises(TypeError, match="int"):
        cr.arange(3, requires_grad=True)
    with pytest.raises(TypeError, match="bool"):
        cr.zeros(2, dtype=bool, requires_grad=True)


def test_integer_tensor_mixes_in_as_a_constant(rng):
    x = leaf(rng, 3)
    i = cr.tensor([1, 2, 3])
    (x * i).sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 2.0, 3.0])
    assert i.grad is None


def test_requires_grad_of_a_non_leaf_cannot_be_changed(rng):
    y = leaf(rng, 2) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


# ------------------------------------------------------------------ grad mode
def test_no_grad_records_nothing(rng):
    x = leaf(rng, 3)
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = (x * 2.0).exp()
    assert cr.is_grad_enabled()
    assert y.grad_fn is None
    assert not y.requires_grad
    assert y.is_leaf
    np.testing.assert_allclose(y.data, np.exp(2 * x.data))


def test_no_grad_is_restored_after_an_exception():
    with pytest.raises(ValueError), cr.no_grad():
        raise ValueError("boom")
    assert cr.is_grad_enabled()


def test_nothing_is_recorded_when_no_input_requires_grad(rng):
    a = cr.tensor(rng.standard_normal(3))
    b = cr.tensor(rng.standard_normal(3))
    y = (a * b).tanh().sum()
    assert y.grad_fn is None
    assert not y.requires_grad


def test_enable_grad_inside_no_grad_records(rng):
    x = leaf(rng, 3)
    with cr.no_grad():
        with cr.enable_grad():
            y = (x * x).sum()
        z = x * 2.0
    assert y.grad_fn is not None and y.requires_grad
    assert z.grad_fn is None
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data)


def test_int_output_of_a_grad_input_is_not_recorded(rng):
    x = leaf(rng, 3, 4)
    assert x.argmax(axis=1).grad_fn is None
    assert (x > 0).grad_fn is None


# ------------------------------------------------------------------ broadcasting and mixing
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 1), (1, 4)), ((4,), (3, 4)), ((), (2, 3)), ((2, 1, 3), (4, 1)), ((1, 1), (5,))],
)
def test_broadcast_gradients_are_summed_to_the_input_shape(rng, shape_a, shape_b):
    a = leaf(rng, *shape_a)
    b = leaf(rng, *shape_b)
    w = rng.standard_normal(np.broadcast_shapes(shape_a, shape_b))
    ((a * b) * w).sum().backward()
    full_a = np.broadcast_to(b.data * w, w.shape)
    full_b = np.broadcast_to(a.data * w, w.shape)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    np.testing.assert_allclose(a.grad.data, engine.sum_to_shape(full_a, shape_a), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, engine.sum_to_shape(full_b, shape_b), rtol=1e-12)


def test_sum_to_shape_adds_up_the_broadcast_axes(rng):
    g = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(engine.sum_to_shape(g, (3, 1)), g.sum(axis=(0, 2))[:, None])
    np.testing.assert_allclose(engine.sum_to_shape(g, ()), g.sum())
    assert engine.sum_to_shape(g, (2, 3, 4)) is g


def test_python_scalars_mix_in_on_both_sides(rng):
    x = cr.tensor(rng.uniform(0.5, 2.0, 3), requires_grad=True)
    y = (2.0 * x + x * 3 - 1.0 + (4.0 - x) + x / 2.0 + 2.0 / x + x**2 + 2.0**x).sum()
    y.backward()
    v = x.data
    expected = 2 + 3 - 1 + 0.5 - 2 / v**2 + 2 * v + np.log(2.0) * 2.0**v
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)


def test_0d_arrays_and_ndarrays_mix_in_on_both_sides(rng):
    x = leaf(rng, 2, 3)
    m = rng.standard_normal((4, 3))
    c = rng.standard_normal((2, 3))
    left = np.array(2.0) * x + c * x
    right = x * np.array(3.0) + x * c
    y = m @ (left + right).T
    assert isinstance(y, cr.Tensor) and isinstance(left, cr.Tensor)
    assert y.grad_fn is not None
    y.sum().backward()
    expected = (5.0 + 2 * c) * m.sum(axis=0)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)


def test_ndarray_plus_tensor_returns_a_tensor_with_a_graph(rng):
    x = leaf(rng, 3)
    y = np.ones(3) + x
    assert isinstance(y, cr.Tensor)
    assert y.grad_fn is not None
    (np.arange(3.0) * y).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.arange(3.0))


def test_float32_gradient_stays_float32_when_float64_arrays_mix_in():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (np.array([0.5, 0.25]) * x).sum().backward()
    assert x.dtype == np.float32
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, [0.5, 0.25])


# ------------------------------------------------------------------ retain_grad, detach, aliasing
def test_retain_grad_fills_the_grad_of_a_non_leaf(rng):
    x = leaf(rng, 3)
    h = x * 2.0
    h.retain_grad()
    other = x * 3.0
    (h**2).sum().backward()
    np.testing.assert_allclose(h.grad.data, 2 * h.data, rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, 8 * x.data, rtol=1e-12)
    assert other.grad is None


def test_retain_grad_on_the_output(rng):
    x = leaf(rng, 3)
    y = (x * x).sum()
    y.retain_grad()
    y.backward()
    assert y.grad.item() == 1.0


def test_detach_cuts_the_graph(rng):
    x = leaf(rng, 3)
    h = x * 2.0
    d = h.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, h.data)
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, d.data, rtol=1e-12)


def test_grads_of_two_leaves_never_alias(rng):
    a, b = leaf(rng, 3), leaf(rng, 3)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[...] = 100.0
    np.testing.assert_allclose(b.grad.data, np.ones(3))


def test_grads_of_two_leaves_never_alias_with_an_explicit_seed(rng):
    a, b = leaf(rng, 3), leaf(rng, 3)
    seed = np.array([1.0, 2.0, 3.0])
    (a + b).backward(seed)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, seed)
    a.grad.data[...] = 0.0
    seed[...] = 0.0
    np.testing.assert_allclose(b.grad.data, [1.0, 2.0, 3.0])


def test_grads_are_writable_arrays(rng):
    x = leaf(rng, 2, 3)
    y = leaf(rng, 3)
    (x.sum() + y.reshape(3, 1).sum()).backward()
    x.grad.data[0, 0] = 5.0  # an optimiser may update gradients in place
    y.grad.data[0] = 5.0


def test_grads_under_create_graph_never_alias(rng):
    # regression: the same gradient Tensor (read-only, a broadcast view) went to both leaves
    a, b = leaf(rng, 3), leaf(rng, 3)
    (a + b).sum().backward(create_graph=True)
    assert a.grad is not b.grad
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[...] = 100.0
    np.testing.assert_allclose(b.grad.data, np.ones(3))


def test_engine_grad_results_never_alias(rng):
    # regression: Add passes one array to both inputs, and grad() returned it twice
    a, b = leaf(rng, 3), leaf(rng, 3)
    ga, gb = engine.grad(a + b, [a, b], grad_outputs=np.ones(3))
    assert not np.shares_memory(ga.data, gb.data)


# ------------------------------------------------------------------ higher order
def test_second_derivative_of_cube(rng):
    x = leaf(rng, 4)
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.data, 3 * x.data**2, rtol=1e-12)
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data, rtol=1e-12)


def test_second_and_third_derivative_of_tanh(rng):
    x = leaf(rng, 4)
    (g,) = engine.grad(x.tanh().sum(), [x], create_graph=True)
    (h,) = engine.grad(g.sum(), [x], create_graph=True)
    (k,) = engine.grad(h.sum(), [x])
    t = np.tanh(x.data)
    np.testing.assert_allclose(g.data, 1 - t**2, rtol=1e-12)
    np.testing.assert_allclose(h.data, -2 * t * (1 - t**2), rtol=1e-12)
    np.testing.assert_allclose(k.data, (1 - t**2) * (6 * t**2 - 2), rtol=1e-10)


def test_mixed_partials_of_a_product(rng):
    x, y = leaf(rng, 3), leaf(rng, 3)
    f = (x**2 * y**3).sum()
    gx, gy = engine.grad(f, [x, y], create_graph=True)
    np.testing.assert_allclose(gx.data, 2 * x.data * y.data**3, rtol=1e-12)
    (gxy,) = engine.grad(gx.sum(), [y])
    (gyx,) = engine.grad(gy.sum(), [x])
    np.testing.assert_allclose(gxy.data, 6 * x.data * y.data**2, rtol=1e-12)
    np.testing.assert_allclose(gyx.data, gxy.data, rtol=1e-12)


def test_grad_requires_grad_under_create_graph_and_broadcasting(rng):
    x = leaf(rng, 3)
    w = cr.tensor(rng.standard_normal((2, 3)))
    ((x * w) ** 2).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, 2 * x.data * (w.data**2).sum(axis=0), rtol=1e-12)


def test_create_graph_inside_no_grad_still_records(rng):
    # regression: the engine's own sum-to-shape ran untracked under no_grad()
    x = leaf(rng, 3)
    w = cr.tensor(rng.standard_normal((2, 3)))
    y = ((x * w) ** 2).sum()
    with cr.no_grad():
        (g,) = engine.grad(y, [x], create_graph=True)
    assert g.requires_grad
    (h,) = engine.grad(g.sum(), [x])
    np.testing.assert_allclose(h.data, 2 * (w.data**2).sum(axis=0), rtol=1e-12)


def test_first_order_grad_is_a_constant(rng):
    x = leaf(rng, 3)
    (x**3).sum().backward()
    assert not x.grad.requires_grad
    assert x.grad.grad_fn is None


def test_hessian_vector_product_agrees_with_pytorch(rng):
    torch = pytest.importorskip("torch")
    data, v = rng.standard_normal(4), rng.standard_normal(4)
    x = cr.tensor(data, requires_grad=True)
    (g,) = engine.grad((x.tanh() * x.exp()).sum(), [x], create_graph=True)
    (hv,) = engine.grad((g * v).sum(), [x])
    xt = torch.tensor(data, requires_grad=True)
    (gt,) = torch.autograd.grad((xt.tanh() * xt.exp()).sum(), [xt], create_graph=True)
    (hvt,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), [xt])
    np.testing.assert_allclose(hv.data, hvt.numpy(), rtol=1e-10)


# ------------------------------------------------------------------ engine.grad
def test_engine_grad_does_not_touch_dot_grad(rng):
    x, w = leaf(rng, 3), leaf(rng, 3)
    gx, gw = engine.grad((x * w).sum(), [x, w])
    assert x.grad is None and w.grad is None
    np.testing.assert_allclose(gx.data, w.data)
    np.testing.assert_allclose(gw.data, x.data)


def test_engine_grad_for_an_intermediate(rng):
    x = leaf(rng, 3)
    h = x.exp()
    y = (h * h).sum()
    gh, gx = engine.grad(y, [h, x])
    np.testing.assert_allclose(gh.data, 2 * h.data, rtol=1e-12)
    np.testing.assert_allclose(gx.data, 2 * h.data**2, rtol=1e-12)
    assert h.grad is None and x.grad is None


def test_engine_grad_accepts_a_single_tensor(rng):
    # regression: a bare Tensor was iterated row by row
    x = leaf(rng, 2, 3)
    (g,) = engine.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.data, 2 * x.data)


def test_engine_grad_unused_input(rng):
    x, z = leaf(rng, 3), leaf(rng, 2)
    gx, gz = engine.grad((x * x).sum(), [x, z], retain_graph=True)
    np.testing.assert_array_equal(gz.data, np.zeros(2))
    with pytest.raises(RuntimeError, match="not used"):
        engine.grad((x * x).sum(), [x, z], allow_unused=False)


def test_engine_grad_needs_inputs_that_require_grad(rng):
    x = leaf(rng, 3)
    c = cr.tensor(rng.standard_normal(3))
    with pytest.raises(ValueError, match="requires grad"):
        engine.grad((x * c).sum(), [c])


def test_engine_grad_frees_the_graph_unless_retained(rng):
    x = leaf(rng, 3)
    y = (x * x).sum()
    engine.grad(y, [x], retain_graph=True)
    engine.grad(y, [x])
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        engine.grad(y, [x])


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv"])
@pytest.mark.parametrize("shapes", [((3, 1), (4,)), ((), ()), ((2,), ())])
@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
def test_operator_fast_path_records_what_apply_records(op, shapes, needs):
    """Tensor ⊕ Tensor takes function.apply_pair, an unrolled Function.apply: same node."""
    from chainrule.ops import elementwise

    rng = np.random.default_rng(0)
    a, b = (
        cr.tensor(rng.uniform(1, 2, shape).astype(np.float32), requires_grad=need)
        for shape, need in zip(shapes, needs)
    )
    function = {"add": elementwise.Add, "sub": elementwise.Sub, "mul": elementwise.Mul,
                "truediv": elementwise.Div}[op]  # fmt: skip
    fast = getattr(a, f"__{op}__")(b)
    general = function.apply(a, b)
    np.testing.assert_array_equal(fast.data, general.data)
    assert type(fast.data) is np.ndarray and fast.dtype == np.float32
    for name in ("function", "needs_input_grad", "parents", "input_meta"):
        assert getattr(fast.grad_fn, name) == getattr(general.grad_fn, name), name
    (fast.sum() + general.sum()).backward()
    for leaf in (a, b):
        if leaf.requires_grad:
            assert leaf.grad.shape == leaf.shape and leaf.grad.dtype == np.float32


@pytest.mark.parametrize("name", ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs"])
@pytest.mark.parametrize("shape", [(3, 2), ()])
def test_unary_fast_path_records_what_apply_records(name, shape):
    """The unary ops take function.apply_one, an unrolled Function.apply: same node."""
    from chainrule.ops import elementwise, piecewise

    x = cr.tensor(np.random.default_rng(1).uniform(0.5, 2, shape), requires_grad=True)
    function = getattr(elementwise, name.capitalize(), None) or getattr(
        piecewise, name.capitalize()
    )
    fast = getattr(cr, name)(x)
    general = function.apply(x)
    np.testing.assert_array_equal(fast.data, general.data)
    assert type(fast.data) is np.ndarray
    for attribute in ("function", "needs_input_grad", "parents", "input_meta"):
        assert getattr(fast.grad_fn, attribute) == getattr(general.grad_fn, attribute)
    assert cr.gradcheck(getattr(cr, name), (x,))
