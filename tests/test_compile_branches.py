"""Ops whose eager form takes a shortcut that depends on values: a compiled program must
hold for every input of the signature, so under ``cr.compile``'s trace they take the form
that is right for all of them."""

from __future__ import annotations

import numpy as np

import chainrule as cr

F = cr.nn.functional


def _eager_grad(fn, x: np.ndarray) -> np.ndarray:
    t = cr.tensor(x, requires_grad=True)
    fn(t).backward()
    return t.grad.data


def test_softplus_above_the_threshold_after_a_trace_without_any():
    # traced on values below softplus's threshold, then called with one above it: the
    # program must still give y = x and dy/dx = 1 there, as eager does
    def loss(x):
        return F.softplus(x).sum()

    value = cr.compile(loss)
    grad = cr.compile(cr.grad(loss))
    below, above = np.array([0.5, 1.0]), np.array([0.5, 30.0])
    value(below), grad(below)
    np.testing.assert_array_equal(value(above).data, loss(cr.tensor(above)).data)
    np.testing.assert_array_equal(grad(above).data, _eager_grad(loss, above))
    assert grad(above).data[1] == 1.0  # σ(30) would be 1 − 9.4e-14


def test_softplus_with_beta_keeps_pytorch_semantics_when_compiled():
    def loss(x):
        return F.softplus(x, beta=2.0, threshold=5.0).sum()

    grad = cr.compile(cr.grad(loss))
    grad(np.array([0.1, 0.2]))
    x = np.array([0.1, 4.0])  # βx = 8 > 5: the identity
    np.testing.assert_array_equal(grad(x).data, _eager_grad(loss, x))


def _hvp(loss):
    """(x, v) -> ∇(∇L(x) · v): a second derivative through every backward of L."""

    def hvp(x, v):
        return cr.grad(lambda y: (cr.grad(loss)(y) * v).sum())(x)

    return hvp


def test_where_second_derivative_uses_each_calls_condition():
    # where's backward sends grad ∘ ¬cond to b; under create_graph that mask must be
    # recomputed from each call's cond, not replayed from the trace
    def loss(x):
        d = x - 0.5
        return cr.where(d.abs() < 1.0, d * d * 0.5, d.abs() - 0.5).sum() ** 2

    hvp = _hvp(loss)
    compiled = cr.compile(hvp)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(6)
    compiled(np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7]), v)  # every element inside
    x = np.array([3.0, -2.0, 0.3, 2.5, 0.6, -4.0])  # most outside
    np.testing.assert_array_equal(compiled(x, v).data, hvp(cr.tensor(x), cr.tensor(v)).data)


def test_where_with_a_float_condition_converts_it_per_call():
    def loss(x, mask):
        return cr.where(mask, x * x, x * 3.0).sum()

    grad = cr.compile(cr.grad(loss))
    x = np.arange(4.0)
    grad(x, np.array([1.0, 0.0, 1.0, 0.0]))
    mask = np.array([0.0, 2.0, 0.0, -1.0])
    np.testing.assert_array_equal(grad(x, mask).data, cr.grad(loss)(cr.tensor(x), mask).data)


def test_a_mean_spreads_a_contiguous_gradient_as_the_compiled_program_does():
    # a 0-d gradient divided by n is a NumPy scalar; spread by broadcasting, it made the
    # next matrix product round differently from the compiled program's (1 ulp, refused
    # by compile's own check on the first call)
    rng = np.random.default_rng(2)
    W = cr.tensor(rng.standard_normal((4, 2)))
    rng.standard_normal(2)
    x, v = rng.standard_normal(4), rng.standard_normal(4)  # values where the two differ
    hvp = _hvp(lambda x: ((x @ W).mean() * x).sum())
    np.testing.assert_array_equal(cr.compile(hvp)(x, v).data, hvp(cr.tensor(x), cr.tensor(v)).data)
    t = cr.tensor(np.ones(3), requires_grad=True)
    t.mean().backward()
    assert t.grad.data.flags.c_contiguous and t.grad.data.strides == (8,)


class _SignScale(cr.Function):
    """y = x·Σx·sign(Σx), the sign kept on ctx as a NumPy scalar (np.sign of a 0-d sum)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.sign = np.sign(x.sum())
        return x * x.sum() * ctx.sign

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return (grad_out * x.sum() + (grad_out * x).sum()) * ctx.sign


def test_a_numpy_scalar_a_function_keeps_on_ctx_is_each_calls_in_a_second_derivative():
    hvp = _hvp(lambda x: (_SignScale.apply(x) ** 2).sum())
    compiled = cr.compile(hvp)
    v = np.array([1.0, 2.0])
    compiled(np.array([1.0, 2.0]), v)  # traced with sign +1
    x = np.array([-1.0, -3.0])
    np.testing.assert_array_equal(compiled(x, v).data, hvp(cr.tensor(x), cr.tensor(v)).data)
