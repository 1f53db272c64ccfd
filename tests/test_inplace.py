"""In-place operations with PyTorch's semantics, version counters, and the ``grad`` setter.

The promises: an in-place op writes into the same memory and returns the same object;
the lecture's update step ``W -= α ∂L/∂W`` under ``no_grad`` keeps W a trainable leaf and
trains exactly like ``cr.optim.SGD``; an in-place op that gradients depend on is recorded
(values and gradients equal the out-of-place program's); and a backward that needs a value
overwritten in place raises, naming the op, instead of using the new value.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

OPS = {
    "+=": (lambda t, o: t.__iadd__(o), np.add),
    "-=": (lambda t, o: t.__isub__(o), np.subtract),
    "*=": (lambda t, o: t.__imul__(o), np.multiply),
    "/=": (lambda t, o: t.__itruediv__(o), np.divide),
    "**=": (lambda t, o: t.__ipow__(o), np.power),
    "add_": (lambda t, o: t.add_(o), np.add),
    "sub_": (lambda t, o: t.sub_(o), np.subtract),
    "mul_": (lambda t, o: t.mul_(o), np.multiply),
    "div_": (lambda t, o: t.div_(o), np.divide),
}


# ------------------------------------------------------------------ same object, same memory
@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize(
    "other", [2.0, np.array([1.5, 2.5, 0.5]), "tensor", "0d"], ids=["float", "array", "t", "0d"]
)
def test_writes_into_the_same_memory_and_returns_self(name, other, rng):
    op, ufunc = OPS[name]
    start = rng.uniform(0.5, 2.0, (2, 3))
    if isinstance(other, str):
        other = cr.tensor(rng.uniform(0.5, 2.0, (3,)) if other == "tensor" else np.float64(1.25))
    t = cr.tensor(start.copy())
    memory, version = t.data, t._version
    assert op(t, other) is t
    assert t.data is memory
    np.testing.assert_allclose(t.data, ufunc(start, np.asarray(other)), rtol=1e-15)
    assert t._version == version + 1


def test_python_in_place_operators_keep_the_object():
    t = cr.tensor(np.ones(3))
    alias = t
    t += 1
    t -= 0.5
    t *= 4
    t /= 2
    t **= 2
    assert alias is t
    np.testing.assert_allclose(t.data, ((1 + 1 - 0.5) * 4 / 2) ** 2)


def test_fill_zero_copy_and_clamp():
    t = cr.tensor(np.array([-2.0, 0.5, 3.0]))
    memory = t.data
    assert t.clamp_(-1, 1) is t
    np.testing.assert_array_equal(t.data, [-1.0, 0.5, 1.0])
    t.clamp_(min=0.0)
    np.testing.assert_array_equal(t.data, [0.0, 0.5, 1.0])
    assert t.fill_(7) is t and t.data.tolist() == [7.0, 7.0, 7.0]
    assert t.zero_() is t and not t.data.any()
    assert t.copy_(np.array([1, 2, 3])) is t and t.data.tolist() == [1.0, 2.0, 3.0]
    assert t.add_(cr.tensor(np.ones(3)), alpha=-2) is t
    np.testing.assert_array_equal(t.data, [-1.0, 0.0, 1.0])
    t.sub_(np.ones(3), alpha=0.5)
    np.testing.assert_array_equal(t.data, [-1.5, -0.5, 0.5])
    assert t.data is memory and t._version == 7


def test_float32_stays_float32():
    t = cr.tensor(np.ones(3, dtype=np.float32))
    t += np.ones(3)  # float64 operand: cast back into float32 memory, as NumPy's +=
    t *= 2.0
    assert t.dtype == np.float32


# ------------------------------------------------------------------ leaves that require grad
def test_update_step_under_no_grad_keeps_a_trainable_leaf():
    w = cr.tensor(np.array([1.0, -2.0]), requires_grad=True)
    (w * w).sum().backward()
    with cr.no_grad():
        w -= 0.1 * w.grad
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_allclose(w.data, [0.8, -1.6])
    w.grad = None
    (w * w).sum().backward()  # still differentiable: the next step works
    np.testing.assert_allclose(w.grad.data, [1.6, -3.2])


@pytest.mark.parametrize("name", ["+=", "mul_", "zero_", "fill_", "copy_", "clamp_"])
def test_in_place_on_a_leaf_that_requires_grad_outside_no_grad_raises(name):
    w = cr.tensor(np.array([1.0, -2.0]), requires_grad=True)
    calls = {
        "+=": lambda: w.__iadd__(1.0),
        "mul_": lambda: w.mul_(2.0),
        "zero_": w.zero_,
        "fill_": lambda: w.fill_(1.0),
        "copy_": lambda: w.copy_(np.zeros(2)),
        "clamp_": lambda: w.clamp_(0, 1),
    }
    with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad .*no_grad"):
        calls[name]()
    np.testing.assert_array_equal(w.data, [1.0, -2.0])  # nothing was written
    assert w._version == 0


def test_hand_written_update_loop_trains_exactly_like_sgd(rng):
    """``with no_grad(): for p in model.parameters(): p -= lr * p.grad``, the update loop of
    four of seven official PyTorch tutorials and of every student's first backprop, gives
    the same weights, bit for bit, as ``cr.optim.SGD(lr)``."""
    x = rng.standard_normal((32, 5))
    y = rng.integers(0, 3, 32)

    def model_and_loss():
        cr.manual_seed(0)
        model = cr.nn.Sequential(cr.nn.Linear(5, 8), cr.nn.Tanh(), cr.nn.Linear(8, 3)).double()
        return model, lambda: cr.nn.functional.cross_entropy(model(cr.tensor(x)), y)

    by_hand, loss_by_hand = model_and_loss()
    by_sgd, loss_by_sgd = model_and_loss()
    sgd = cr.optim.SGD(by_sgd.parameters(), lr=0.3)
    for _ in range(20):
        by_hand.zero_grad()
        loss_by_hand().backward()
        with cr.no_grad():
            for p in by_hand.parameters():
                p -= 0.3 * p.grad
        sgd.zero_grad()
        loss_by_sgd().backward()
        sgd.step()
    for (name, a), (_, b) in zip(by_hand.named_parameters(), by_sgd.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert (
        loss_by_hand().item()
        < 0.9 * cr.nn.functional.cross_entropy(model_and_loss()[0](cr.tensor(x)), y).item()
    )


# ------------------------------------------------------------------ recorded in-place ops
def _in_place_program(x, b):
    h = x * 2.0
    h += b
    h *= x
    h -= cr.exp(b)
    h /= b * b + 1.0
    h.clamp_(-3.0, 3.0)
    h.add_(x, alpha=0.5)
    return h.sum()


def _out_of_place_program(x, b):
    h = x * 2.0
    h = h + b
    h = h * x
    h = h - cr.exp(b)
    h = h / (b * b + 1.0)
    h = cr.clip(h, -3.0, 3.0)
    h = h + 0.5 * x
    return h.sum()


def test_recorded_in_place_ops_match_the_out_of_place_program(rng):
    x0, b0 = rng.standard_normal(4), rng.standard_normal(4)
    grads = []
    for program in (_in_place_program, _out_of_place_program):
        x, b = cr.tensor(x0, requires_grad=True), cr.tensor(b0, requires_grad=True)
        out = program(x, b)
        out.backward()
        grads.append((out.data, x.grad.data, b.grad.data))
    for ours, reference in zip(*grads):
        np.testing.assert_allclose(ours, reference, rtol=1e-14)


def test_recorded_in_place_ops_pass_gradcheck_and_gradgradcheck(rng):
    x0, b0 = rng.uniform(-0.5, 0.5, 3), rng.uniform(-0.5, 0.5, 3)
    assert cr.gradcheck(_in_place_program, (x0, b0))
    assert cr.gradgradcheck(_in_place_program, (x0, b0))


def test_writing_a_tensor_that_requires_grad_into_a_plain_one_records_it():
    src = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    buffer = cr.tensor(np.zeros((3, 2)))
    buffer.copy_(src)  # broadcast into every row
    assert buffer.requires_grad and not buffer.is_leaf
    (buffer * np.arange(6.0).reshape(3, 2)).sum().backward()
    np.testing.assert_array_equal(src.grad.data, [0 + 2 + 4, 1 + 3 + 5])


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
def test_zero_and_fill_cut_the_old_value_off_even_when_it_was_inf():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = cr.tensor(np.array([3.0, 4.0]), requires_grad=True)
    h = x * np.array([np.inf, 1.0])  # inf in the first element
    h.zero_()
    h += y
    h.sum().backward()
    np.testing.assert_array_equal(h.data, [3.0, 4.0])  # not 0·inf = NaN
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0])
    # x gets the zero gradient times ∂h/∂x = [inf, 1]: NaN where the chain rule multiplies
    # 0 by inf, as in PyTorch
    np.testing.assert_array_equal(x.grad.data, [np.nan, 0.0])


def test_in_place_ops_inside_a_transform():
    def f(x):
        h = x * x
        h *= x
        return h.sum()  # Σ x³

    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(cr.grad(f)(x).data, 3 * x**2)
    np.testing.assert_allclose(cr.hessian(f)(x).data, np.diag(6 * x))


def test_retain_grad_follows_the_tensor_through_an_in_place_op():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * 3.0).retain_grad()
    h *= 2.0
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.data, 2 * h.data)


# ------------------------------------------------------------------ version counters
def test_version_counter_is_shared_by_views_and_detached_tensors():
    t = cr.tensor(np.zeros((2, 3)))
    view, detached = t[0], t.detach()
    assert (t._version, view._version, detached._version) == (0, 0, 0)
    detached += 1
    assert (t._version, view._version, detached._version) == (1, 1, 1)
    np.testing.assert_array_equal(view.data, [1.0, 1.0, 1.0])
    assert cr.tensor(np.zeros(3))._version == 0  # a new array starts at 0


@pytest.mark.parametrize(
    "build, saved_by",
    [
        (lambda x: (x.exp(), lambda y: y), "Exp"),  # saves its output
        (lambda x: (x * 1.0, lambda y: y * y), "Mul"),  # saves its inputs
        (lambda x: (x * 1.0, lambda y: cr.log(y)), "Log"),
        (lambda x: (x * 1.0, lambda y: y.reshape(2, 2) ** 2), "PowConst"),  # through a view
    ],
    ids=["output", "input", "unary", "view"],
)
def test_backward_through_a_value_modified_in_place_raises_naming_the_op(build, saved_by):
    x = cr.tensor(np.array([0.1, 0.2, 0.3, 0.4]), requires_grad=True)
    y, use = build(x)
    out = use(y).sum()
    with cr.no_grad():
        y += 1.0
    with pytest.raises(RuntimeError, match=rf"{saved_by}: a value it saved .* modified in place"):
        out.backward()


def test_an_optimizer_step_between_forward_and_backward_raises():
    model = cr.nn.Linear(3, 1)
    loss = model(cr.tensor(np.ones((2, 3)))).sum()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = np.ones(p.shape, dtype=np.float32)
    opt.step()
    with pytest.raises(RuntimeError, match=r"modified in place by SGD\.step\(\)"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_raises():
    model = cr.nn.Linear(3, 1)
    loss = model(cr.tensor(np.ones((2, 3)))).sum()
    model.load_state_dict(cr.nn.Linear(3, 1).state_dict())
    with pytest.raises(RuntimeError, match=r"load_state_dict"):
        loss.backward()


def test_writes_that_no_saved_value_depends_on_are_fine():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x + 1.0  # Add saves nothing
    out = (y * 3.0).sum()  # Mul saves y and 3.0
    unrelated = cr.tensor(np.ones(2))
    unrelated += 1.0
    out.backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_modifying_after_backward_is_fine():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 1.0
    (y * y).sum().backward()
    with cr.no_grad():
        y += 1.0
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_in_place_on_a_view_while_recording_raises():
    x = cr.tensor(np.ones((2, 2)), requires_grad=True)
    row = (x * 2.0)[0]
    with pytest.raises(RuntimeError, match="view of another tensor"):
        row += cr.tensor(np.ones(2), requires_grad=True)


def test_using_a_view_taken_before_a_recorded_in_place_op_raises():
    x = cr.tensor(np.ones((2, 2)), requires_grad=True)
    b = cr.tensor(np.ones(2), requires_grad=True)
    h = x * 2.0
    first_row = h[0]  # a view of h's memory
    h += b  # rewrites that memory; first_row's graph does not know
    with pytest.raises(RuntimeError, match="Mul: an input is a view made by GetItem"):
        first_row * 1.0


def test_a_view_used_before_the_in_place_op_is_fine():
    """cr.stack takes views (expand_dims) of its inputs and copies them at once: writing
    into an input afterwards changes nothing the graph relies on, as in PyTorch."""
    a = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = a * 2.0
    s = cr.stack([y, y])
    y -= 0.5
    s.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [4.0, 4.0])
    np.testing.assert_array_equal(s.data, [[2.0, 4.0], [2.0, 4.0]])


# ------------------------------------------------------------------ errors
def test_errors_name_shapes_and_dtypes():
    with pytest.raises(TypeError, match=r"int64.*0\.5.*cast"):
        cr.tensor(np.array([1, 2])).__iadd__(0.5)
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(2, 2\)"):
        cr.tensor(np.zeros(2)).__iadd__(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"result has shape \(2, 2\).*shape \(2,\)"):
        cr.tensor(np.zeros(2)).__iadd__(cr.tensor(np.ones((2, 2)), requires_grad=True))
    with pytest.raises(TypeError, match="alpha"):
        cr.tensor(np.zeros(2)).mul_(2.0, alpha=3)
    with pytest.raises(ValueError, match="clamp_ needs"):
        cr.tensor(np.zeros(2)).clamp_()
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        cr.from_numpy(frozen).__iadd__(1.0)


# ------------------------------------------------------------------ the grad setter
def test_grad_setter_accepts_tensors_arrays_and_none():
    t = cr.tensor(np.zeros((2, 3)), requires_grad=True)
    t.grad = np.ones((2, 3))
    assert isinstance(t.grad, cr.Tensor) and t.grad.data.tolist() == [[1.0] * 3] * 2
    g = cr.tensor(np.full((2, 3), 2.0))
    t.grad = g
    assert t.grad is g
    t.grad = None
    assert t.grad is None
    t.grad = np.float32(1.0) * np.ones((2, 3), dtype=np.float32)  # another float dtype


@pytest.mark.parametrize(
    "value, error, message",
    [
        (0.0, TypeError, r"Tensor, an ndarray or None, got float"),
        ([[0.0] * 3] * 2, TypeError, r"got list"),
        (np.float64(0.0), TypeError, r"got float64"),
        (np.ones((3, 2)), ValueError, r"shape \(2, 3\), got \(3, 2\)"),
        (np.ones((2, 3), dtype=np.int64), TypeError, r"floating-point dtype, got int64"),
    ],
    ids=["float", "list", "numpy-scalar", "shape", "int-dtype"],
)
def test_grad_setter_rejects_at_the_assignment(value, error, message):
    t = cr.tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        t.grad = value
    assert t.grad is None


def test_an_integer_tensor_cannot_have_a_gradient():
    with pytest.raises(TypeError, match="int64 cannot have a gradient"):
        cr.tensor(np.array([1, 2])).grad = np.ones(2)


def test_a_recorded_in_place_op_on_an_op_output_that_views_a_private_buffer_is_fine():
    """Conv2d returns a view of its own product buffer (no other tensor shares it), so
    ``out += skip`` (a residual connection) is recorded like on any other output."""
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 1, 5, 5)), requires_grad=True)
    conv = cr.nn.Conv2d(1, 1, 3, padding=1).double()
    out = conv(x)
    assert out.data.base is not None  # a view, of memory no input has
    out += x  # the skip connection
    out.sum().backward()
    reference = cr.tensor(x.data.copy(), requires_grad=True)
    conv.zero_grad()
    (conv(reference) + reference).sum().backward()
    np.testing.assert_allclose(x.grad.data, reference.grad.data, rtol=1e-12)


def test_overwriting_an_operand_no_gradient_needs_is_fine():
    """Mul keeps only what a gradient needs: for y * 3 that is 3, not y (as PyTorch)."""
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 1.0
    w = y.reshape(2, 1) * 3.0
    with cr.no_grad():
        y -= 0.5
    w.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


@pytest.mark.parametrize(
    "use",
    [lambda v: v * cr.tensor(np.ones(2)), lambda v: v.tanh(), lambda v: v.sum()],
    ids=["tensor-operator", "unary", "reduction"],
)
def test_stale_views_are_refused_on_every_path_an_op_takes(use):
    """The unrolled paths of the operators and unary ops (apply_pair, apply_one) defer to
    Function.apply's checks once a recorded in-place write has happened."""
    x = cr.tensor(np.ones((2, 2)), requires_grad=True)
    h = x * 2.0
    row = h[1]
    h += cr.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="an input is a view made by GetItem"):
        use(row)
    with cr.detect_anomaly():
        pass  # leaving anomaly mode must not switch the checks off again
    with pytest.raises(RuntimeError, match="an input is a view made by GetItem"):
        use(row)
