"""``cr.gradcheck`` and ``cr.gradgradcheck``: they must catch wrong custom functions, say
where, and pass correct ones."""

import re

import numpy as np
import pytest

import chainrule as cr
from toys import (
    Cube,
    CubeConstantAttribute,
    CubeForgetsGrad,
    CubeSavedIntermediate,
    CubeThroughData,
    CubeWrongConstant,
    Hadamard,
    HadamardAveragesBroadcast,
    HadamardExtraAxis,
    HadamardReducesWrongAxis,
    Round,
    Step,
    Swish,
)


def index_tuple(text):
    return tuple(int(e) for e in text.replace(" ", "").split(",") if e)


def parse(message):
    """(input index, element, analytic, numeric) from a GradcheckError message."""
    found = re.search(
        r"input (\d+) \(shape .*?\), element \(([\d, ]*)\).*analytic (\S+) vs numeric (\S+)",
        message,
    )
    assert found, message
    element = index_tuple(found.group(2))
    return int(found.group(1)), element, float(found.group(3)), float(found.group(4))


def output_element(message):
    return index_tuple(re.search(r"output element \(([\d, ]*)\)", message).group(1))


# ------------------------------------------------------------------ passing
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
def test_passes_on_cube_and_swish(rng, shape):
    x = rng.standard_normal(shape)
    assert cr.gradcheck(Cube.apply, x) is True
    assert cr.gradcheck(Swish.apply, x) is True


@pytest.mark.parametrize(
    "shape_a, shape_b", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((4,), (3, 4)), ((), (2, 3))]
)
def test_passes_on_hadamard_with_broadcasting(rng, shape_a, shape_b):
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    assert cr.gradcheck(Hadamard.apply, (a, b))
    assert cr.gradcheck(lambda x, y: (Hadamard.apply(x, y) ** 2).sum(), (a, b))


def test_passes_on_a_composition_with_non_float_arguments(rng):
    def f(x, k, w):
        return (Swish.apply(x) * float(k)) @ w

    assert cr.gradcheck(f, (rng.standard_normal((2, 3)), 3, rng.standard_normal((3, 2))))


def test_float32_inputs_are_checked_in_float64(rng):
    x = rng.standard_normal(3).astype(np.float32)
    assert cr.gradcheck(Cube.apply, cr.tensor(x))
    assert cr.gradcheck(Cube.apply, np.float32(0.75))


def test_steep_but_continuous_functions_and_poles_nearby_pass(rng):
    assert cr.gradcheck(lambda x: (x * 20.0).tanh(), rng.uniform(-0.3, 0.3, 3))
    assert cr.gradcheck(lambda x: 1.0 / x, np.array([0.3, -0.4]))  # 1/x's pole is not a jump
    assert cr.gradcheck(cr.relu, np.array([0.3, -0.2]))  # a kink nearby is not a jump


# ------------------------------------------------------------------ failing, first order
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_catches_a_wrong_constant(rng, shape):
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    with pytest.raises(cr.GradcheckError, match="CubeWrongConstant") as info:
        cr.gradcheck(CubeWrongConstant.apply, x)
    index, element, analytic, numeric = parse(str(info.value))
    assert index == 0
    assert len(element) == len(shape)
    np.testing.assert_allclose(analytic, 2 * x[element], rtol=1e-6)
    np.testing.assert_allclose(numeric, 3 * x[element] ** 2, rtol=1e-6)


@pytest.mark.parametrize("shape", [(), (1,), (5,)])
def test_catches_a_forgotten_incoming_gradient(rng, shape):
    x = rng.standard_normal(shape) + 1.0
    with pytest.raises(cr.GradcheckError, match=r"CubeForgetsGrad: input 0") as info:
        cr.gradcheck(CubeForgetsGrad.apply, x)
    index, element, analytic, numeric = parse(str(info.value))
    # with the seed ignored, the off-diagonal entries of the Jacobian are wrong too
    expected = 3 * x[element] ** 2 if output_element(str(info.value)) == element else 0.0
    np.testing.assert_allclose(numeric, expected, rtol=1e-6, atol=1e-8)
    assert not np.isclose(analytic, numeric, rtol=1e-3)


def test_catches_a_forgotten_incoming_gradient_behind_a_scalar_output(rng):
    # the seed of a scalar output is scaled randomly, so "forgot the 1.0" still shows
    x = rng.standard_normal(4)
    with pytest.raises(cr.GradcheckError, match=r"<lambda>: input 0 .*output element \(\)"):
        cr.gradcheck(lambda t: CubeForgetsGrad.apply(t).sum(), x)
    with pytest.raises(cr.GradcheckError, match=r"input 0"):
        cr.gradcheck(lambda t: CubeForgetsGrad.apply(t).mean(), x)


@pytest.mark.parametrize("x", [np.array([0.2, 1.3, -2.6]), np.array(0.7), np.array([[3.1]])])
def test_catches_rounding(x):
    with pytest.raises(cr.GradcheckError, match=r"Round: input 0 .*jumps by 1\b") as info:
        cr.gradcheck(Round.apply, x)
    assert "not differentiable" in str(info.value)


@pytest.mark.parametrize("x", [np.array([0.3, -0.2, 0.15]), np.array(-0.25), np.array([2.0, 0.1])])
def test_catches_a_step_function(x):
    with pytest.raises(cr.GradcheckError, match=r"Step: input 0 .*jumps by 1\b") as info:
        cr.gradcheck(Step.apply, x)
    # the element named is one whose move crosses the step within the scanned radius
    element = index_tuple(re.search(r"element \(([\d, ]*)\)", str(info.value)).group(1))
    assert abs(x[element]) < 0.5


def test_a_step_through_builtin_ops_is_caught_too():
    def smooth_times_step(x):
        return (x.tanh() + 1.0) * (x > 0).astype(np.float64)

    with pytest.raises(cr.GradcheckError, match="jumps"):
        cr.gradcheck(smooth_times_step, np.array([0.4, 0.2]))


def test_continuity_scan_can_be_switched_off():
    assert cr.gradcheck(Round.apply, np.array([0.2, 1.3]), check_continuity=False)


def test_broadcast_shape_dependent_error_wrong_axis(rng):
    a = rng.standard_normal((4, 4))
    assert cr.gradcheck(HadamardReducesWrongAxis.apply, (a, rng.standard_normal((4, 4))))
    with pytest.raises(cr.GradcheckError, match="HadamardReducesWrongAxis") as info:
        cr.gradcheck(HadamardReducesWrongAxis.apply, (a, rng.standard_normal(4)))
    index, element, analytic, numeric = parse(str(info.value))
    assert index == 1 and len(element) == 1


@pytest.mark.parametrize("shape_b", [(1, 4), (3, 1), (4,), ()])
def test_broadcast_shape_dependent_error_averaging(rng, shape_b):
    a = rng.standard_normal((3, 4))
    assert cr.gradcheck(HadamardAveragesBroadcast.apply, (a, rng.standard_normal((3, 4))))
    with pytest.raises(cr.GradcheckError, match=r"HadamardAveragesBroadcast: input 1") as info:
        cr.gradcheck(HadamardAveragesBroadcast.apply, (a, rng.standard_normal(shape_b)))
    _, element, analytic, numeric = parse(str(info.value))
    assert len(element) == len(shape_b)
    assert abs(numeric) > abs(analytic)  # a mean is the sum divided by the count


def test_a_gradient_with_an_extra_axis_is_refused_naming_the_function(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    with pytest.raises(RuntimeError, match=r"HadamardExtraAxis\.backward .*input 1"):
        cr.gradcheck(HadamardExtraAxis.apply, (a, b))


def test_catches_a_detached_forward(rng):
    def leaks(x):
        return cr.tensor(np.sin(x.data)) * 1.0  # leaves the graph

    with pytest.raises(cr.GradcheckError, match=r"leaks: input 0 .*analytic 0 vs"):
        cr.gradcheck(leaks, rng.standard_normal(3))


def test_reports_the_right_input_among_several(rng):
    def f(x, w):
        return Hadamard.apply(x, 1.0) * CubeWrongConstant.apply(w)

    with pytest.raises(cr.GradcheckError, match=r"input 1 \(shape \(2, 2\)\)"):
        cr.gradcheck(f, (rng.standard_normal((2, 2)), rng.standard_normal((2, 2)) + 2.0))


def test_nan_finite_differences_fail_instead_of_passing():
    # regression: NaN numeric values compared False and the check passed unchecked
    with pytest.raises(cr.GradcheckError, match=r"numeric nan.*not finite"):
        with np.errstate(invalid="ignore"):
            cr.gradcheck(cr.sqrt, np.array([1e-7, 1.0]), check_continuity=False)


def test_non_tensor_and_wrong_dtype_outputs_are_rejected(rng):
    with pytest.raises(cr.GradcheckError, match="must return a Tensor"):
        cr.gradcheck(lambda x: x.data * 2, rng.standard_normal(3))
    with pytest.raises(cr.GradcheckError, match="float32"):
        cr.gradcheck(lambda x: x.astype(np.float32), rng.standard_normal(3))


# ------------------------------------------------------------------ second order
@pytest.mark.parametrize("function", [Cube, Swish])
def test_gradgradcheck_passes_on_correct_functions(rng, function):
    assert cr.gradgradcheck(function.apply, rng.standard_normal((2, 3))) is True


def test_gradgradcheck_passes_on_hadamard_with_broadcasting(rng):
    a, b = rng.standard_normal((3, 1)), rng.standard_normal(4)
    assert cr.gradgradcheck(lambda x, y: Hadamard.apply(x, y).tanh(), (a, b))


@pytest.mark.parametrize(
    "function", [CubeConstantAttribute, CubeSavedIntermediate, CubeThroughData]
)
def test_gradgradcheck_catches_a_backward_that_is_first_order_only(rng, function):
    x = rng.uniform(0.5, 1.5, 3)
    assert cr.gradcheck(function.apply, x)  # the first derivative is right
    with pytest.raises(cr.GradcheckError, match=rf"the gradient of {function.__name__}") as info:
        cr.gradgradcheck(function.apply, x)
    index, element, analytic, numeric = parse(str(info.value))
    assert index == 0
    assert analytic == 0.0  # the x-dependence of 3x² went missing
    assert numeric != 0.0


def test_gradgradcheck_catches_a_backward_whose_recorded_path_differs():
    """First derivatives under create_graph must equal the plain ones."""

    class TwoFaced(cr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            if isinstance(x, cr.Tensor):  # the recorded path: wrong factor
                return 3 * x * grad_out
            return 2 * x * grad_out

    x = np.random.default_rng(0).standard_normal(3)
    assert cr.gradcheck(TwoFaced.apply, x)
    with pytest.raises(cr.GradcheckError, match="under create_graph=True differs"):
        cr.gradgradcheck(TwoFaced.apply, x)
