"""Custom differentiable functions: the ``cr.Function`` / ``Context`` API users extend."""

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine
from toys import (
    Affine,
    Cube,
    ExpSavingOutput,
    Hadamard,
    NoBackward,
    OuterRawNumpy,
    ScaledPower,
    SinRawNumpy,
    Swish,
)


def leaf(rng, *shape):
    return cr.tensor(rng.standard_normal(shape), requires_grad=True)


# ------------------------------------------------------------------ the README's example
def test_cube_forward_and_backward(rng):
    x = leaf(rng, 3, 2)
    y = Cube.apply(x)
    np.testing.assert_allclose(y.data, x.data**3)
    assert y.grad_fn is not None and y.grad_fn.name == "Cube"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2, rtol=1e-12)


def test_cube_gradcheck_and_gradgradcheck(rng):
    x = rng.standard_normal((2, 3))
    assert cr.gradcheck(Cube.apply, x)
    assert cr.gradgradcheck(Cube.apply, x)


def test_cube_twice_with_create_graph(rng):
    x = leaf(rng, 4)
    (g,) = engine.grad(Cube.apply(x).sum(), [x], create_graph=True)
    (h,) = engine.grad(g.sum(), [x])
    np.testing.assert_allclose(h.data, 6 * x.data, rtol=1e-12)


def test_cube_float32_stays_float32():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = Cube.apply(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, [3.0, 12.0])


def test_cube_agrees_with_pytorch(rng):
    torch = pytest.importorskip("torch")
    data = rng.standard_normal(5)
    x = cr.tensor(data, requires_grad=True)
    Cube.apply(x).tanh().sum().backward()
    xt = torch.tensor(data, requires_grad=True)
    (xt**3).tanh().sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-12)


# ------------------------------------------------------------------ ctx and arguments
def test_non_tensor_arguments_pass_through(rng):
    x = leaf(rng, 4)
    y = ScaledPower.apply(x, 3, k=2.0, negate=True)
    np.testing.assert_allclose(y.data, -2.0 * x.data**3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, -6.0 * x.data**2, rtol=1e-12)
    assert cr.gradcheck(lambda t: ScaledPower.apply(t, 2, k=0.5), rng.standard_normal(3))


def test_needs_input_grad_and_none_gradients(rng):
    a = cr.tensor(rng.standard_normal(3))  # a constant
    x = leaf(rng, 3)
    b = rng.standard_normal(3)  # a plain ndarray
    Affine.seen.clear()
    y = Affine.apply(a, x, b)
    y.sum().backward()
    assert Affine.seen == [("forward", (False, True, False)), ("backward", (False, True, False))]
    np.testing.assert_allclose(x.grad.data, a.data)
    assert a.grad is None


def test_a_backward_may_return_none_for_an_input_that_needs_grad(rng):
    class HalfStopped(cr.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * 2.0 + y

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out * 2.0, None  # y is treated as a stopped gradient

    x, y = leaf(rng, 3), leaf(rng, 3)
    (HalfStopped.apply(x, y) + y).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * np.ones(3))
    np.testing.assert_allclose(y.grad.data, np.ones(3))  # only the direct path
    z = leaf(rng, 3)
    HalfStopped.apply(x, z).sum().backward()
    assert z.grad is None


def test_nothing_is_recorded_without_grad(rng):
    x = leaf(rng, 3)
    Affine.seen.clear()
    with cr.no_grad():
        y = Affine.apply(x, x, 1.0)
    assert y.grad_fn is None and not y.requires_grad
    assert Affine.seen == [("forward", (False, False, False))]
    y = Affine.apply(cr.tensor(np.ones(3)), cr.tensor(np.ones(3)), 0.0)
    assert y.grad_fn is None


def test_context_stores_plain_values(rng):
    class Shift(cr.Function):
        @staticmethod
        def forward(ctx, x, *, shift, axis):
            ctx.shift, ctx.axis = shift, axis
            return np.roll(x, shift, axis=axis)

        @staticmethod
        def backward(ctx, grad_out):
            n = grad_out.shape[ctx.axis]
            order = [(i + ctx.shift) % n for i in range(n)]
            return grad_out[:, order] if ctx.axis == 1 else grad_out[order]

    x = leaf(rng, 2, 5)
    w = rng.standard_normal((2, 5))
    (Shift.apply(x, shift=2, axis=1) * w).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.roll(w, -2, axis=1))
    assert cr.gradgradcheck(lambda t: Shift.apply(t, shift=1, axis=0) ** 2, x.data)


def test_saved_output_is_differentiable_twice(rng):
    x = rng.standard_normal(4)
    assert cr.gradcheck(ExpSavingOutput.apply, x)
    assert cr.gradgradcheck(ExpSavingOutput.apply, x)


def test_saved_output_of_a_0d_forward_is_differentiable_twice():
    # regression: np.exp of a 0-d array returns a NumPy scalar, which was then saved as a
    # constant instead of the output, so the second derivative came out 0
    x = cr.tensor(np.array(0.3), requires_grad=True)
    (g,) = engine.grad(ExpSavingOutput.apply(x), [x], create_graph=True)
    assert g.requires_grad
    (h,) = engine.grad(g, [x])
    np.testing.assert_allclose(h.data, np.exp(0.3), rtol=1e-12)
    assert cr.gradgradcheck(ExpSavingOutput.apply, np.array(-0.7))
    assert cr.gradgradcheck(cr.exp, np.array(0.3))


def test_same_tensor_passed_twice(rng):
    x = leaf(rng, 3)
    Hadamard.apply(x, x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data, rtol=1e-12)
    assert cr.gradgradcheck(lambda t: Hadamard.apply(t, t), x.data)


def test_a_backward_need_not_undo_broadcasting(rng):
    # the engine sums every gradient back to its input's shape, so rules ignore broadcasting
    # (Hadamard's backward does not undo it)
    a, b = leaf(rng, 3, 1), leaf(rng, 4)
    Hadamard.apply(a, b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad.data, np.full((3, 1), b.data.sum()), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, np.full(4, a.data.sum()), rtol=1e-12)


def test_saved_tensors_after_the_graph_was_freed(rng):
    x = leaf(rng, 3)
    y = Cube.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match=r"Cube.*retain_graph=True"):
        _ = y.grad_fn.saved_tensors


# ------------------------------------------------------------------ errors
def test_wrong_number_of_gradients_names_the_function(rng):
    class TwoInOneOut(cr.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out

    x = leaf(rng, 3)
    with pytest.raises(RuntimeError, match=r"TwoInOneOut\.backward returned 1 .* 2 input"):
        TwoInOneOut.apply(x, x).sum().backward()


def test_too_many_gradients_names_the_function(rng):
    class OneInTwoOut(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out * 2.0, grad_out

    with pytest.raises(RuntimeError, match=r"OneInTwoOut\.backward returned 2 .* 1 input"):
        OneInTwoOut.apply(leaf(rng, 3)).sum().backward()


@pytest.mark.parametrize("bad", [np.ones(5), np.ones((2, 1)), np.ones((4, 3, 2))])
def test_wrong_gradient_shape_names_the_function_and_the_input(rng, bad):
    class BadShape(cr.Function):
        @staticmethod
        def forward(ctx, x, w):
            return x * w

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out, bad

    x, w = leaf(rng, 3, 2), leaf(rng, 3, 2)
    pattern = rf"BadShape\.backward .*shape {re.escape(str(bad.shape))} for input 1.*\(3, 2\)"
    with pytest.raises(RuntimeError, match=pattern):
        BadShape.apply(x, w).sum().backward()


def test_function_without_backward_names_itself_and_says_not_differentiable(rng):
    x = leaf(rng, 3)
    y = NoBackward.apply(x)  # the forward runs fine
    np.testing.assert_array_equal(y.data, np.floor(x.data))
    with pytest.raises(RuntimeError, match=r"NoBackward is not differentiable"):
        y.sum().backward()


def test_function_without_backward_is_fine_when_detached(rng):
    x = leaf(rng, 3)
    y = NoBackward.apply(x.detach()) + x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones(3))


def test_forward_with_several_outputs_is_rejected(rng):
    # regression: np.asarray stacked the outputs into one array without a word
    class TwoOutputs(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return x, x * 2

    with pytest.raises(TypeError, match=r"TwoOutputs\.forward returned a tuple"):
        TwoOutputs.apply(leaf(rng, 3))


def test_forward_returning_a_python_number(rng):
    class Total(cr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.shape = x.shape
            return float(x.sum())

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out * np.ones(ctx.shape)

    x = leaf(rng, 3)
    y = Total.apply(x)
    assert y.shape == ()
    y.backward()
    np.testing.assert_allclose(x.grad.data, np.ones(3))


# ------------------------------------------------------------------ raw NumPy backward
def test_raw_numpy_backward_works_first_order(rng):
    x = leaf(rng, 4)
    SinRawNumpy.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.cos(x.data), rtol=1e-12)
    assert cr.gradcheck(SinRawNumpy.apply, x.data)
    assert cr.gradcheck(OuterRawNumpy.apply, rng.standard_normal(3))


@pytest.mark.parametrize("function", [SinRawNumpy, OuterRawNumpy])
def test_raw_numpy_backward_under_create_graph_names_the_function(rng, function):
    # create_graph still gives the right first-order gradient (as PyTorch's
    # once_differentiable does); differentiating that gradient again raises, naming it
    x = leaf(rng, 3)
    function.apply(x).sum().backward(create_graph=True)
    expected = leaf(rng, 3)
    expected.data[...] = x.data
    function.apply(expected).sum().backward()
    np.testing.assert_allclose(x.grad.data, expected.grad.data, rtol=1e-12)
    assert x.grad.requires_grad
    with pytest.raises(RuntimeError, match=rf"{function.__name__}\.backward .*raw NumPy"):
        x.grad.sum().backward()
    x2 = leaf(rng, 3)
    (g,) = engine.grad(function.apply(x2).sum(), [x2], create_graph=True)
    with pytest.raises(RuntimeError, match=rf"{function.__name__}\.backward .*raw NumPy"):
        engine.grad((g * g).sum(), [x2])
    with pytest.raises(RuntimeError, match=rf"{function.__name__}\.backward .*raw NumPy"):
        cr.gradgradcheck(function.apply, x.data)
    with pytest.raises(RuntimeError, match=rf"{function.__name__}\.backward .*raw NumPy"):
        cr.hessian(lambda t: function.apply(t).sum())(x.data)


def test_operator_backward_works_twice(rng):
    # Swish's backward is written with chainrule's ops, so it is recorded under create_graph
    x = rng.standard_normal((2, 3))
    assert cr.gradcheck(Swish.apply, x)
    assert cr.gradgradcheck(Swish.apply, x)


def test_a_gradient_broadcast_against_a_constant_input_is_summed(rng):
    # y = Σ_rows x ∘ w: grad_x = g ∘ w has w's (4, 3) shape, summed by the engine to x's (3,)
    class WeightedColumnSum(cr.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return (x * w).sum(axis=0)

        @staticmethod
        def backward(ctx, grad_out):
            x, w = ctx.saved_tensors
            return grad_out * w, None

    x = leaf(rng, 3)
    w = rng.standard_normal((4, 3))
    (WeightedColumnSum.apply(x, w) * np.arange(3.0)).sum().backward()
    np.testing.assert_allclose(x.grad.data, w.sum(axis=0) * np.arange(3.0), rtol=1e-12)


def test_a_node_shows_its_function_and_the_layer_is_not_mistaken_for_its_op():
    """``nn.Linear`` records the fused op ``Affine``: ``grad_fn=<Linear>`` would name the
    layer, not what the graph holds."""
    y = cr.nn.Linear(4, 3)(cr.randn(2, 4))
    assert y.grad_fn.name == "Affine"
    assert repr(y.grad_fn) == "<Affine node>"
    assert "grad_fn=<Affine>" in repr(y)
