"""``cr.detect_anomaly()``: the first op whose forward or backward makes a NaN/Inf is named,
with the line of user code that created it; outside the context nothing is checked."""

import inspect

import numpy as np
import pytest

import chainrule as cr
from chainrule.mode import is_anomaly_enabled


def here(offset=1):
    """'this_file:line' of the caller's line plus ``offset``."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno + offset}"


@pytest.fixture(autouse=True)
def quiet_numpy():
    with np.errstate(all="ignore"):  # the NaN/Inf are made on purpose here
        yield


class Reciprocal(cr.Function):
    """y = 1/x; dy/dx = −y²."""

    @staticmethod
    def forward(ctx, x):
        y = 1.0 / x
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return -grad_out * y * y


def test_nan_made_in_a_forward_names_the_op_and_the_line():
    x = cr.tensor(np.array([1.0, -1.0]), requires_grad=True)
    with cr.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"\bLog\b.*forward") as info:
            location = here()
            x.log()
    assert location in str(info.value)
    assert not is_anomaly_enabled()


def test_inf_made_in_a_forward_names_the_op():
    x = cr.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with cr.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"\bLog\b"):
            x.log()
        with pytest.raises(FloatingPointError, match=r"\bExp\b"):
            (x * 1000.0).exp()


def test_forward_is_checked_without_grad_too():
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"\bSqrt\b"):
        cr.sqrt(cr.tensor(np.array([-4.0])))


def test_inf_made_in_a_backward_names_the_op_and_where_it_was_created():
    x = cr.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with cr.detect_anomaly():
        location = here()
        y = x.sqrt() * 3.0  # finite forward: sqrt(0) = 0
        with pytest.raises(FloatingPointError, match=r"\bSqrt\b.*backward") as info:
            y.sum().backward()
    assert location in str(info.value)
    assert "Mul" not in str(info.value)  # the op downstream is not blamed


def test_a_custom_function_is_named():
    x = cr.tensor(np.array([0.0, 2.0]), requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"\bReciprocal\b"):
        Reciprocal.apply(x)


def test_nan_from_the_input_is_not_blamed_on_the_op():
    x = cr.tensor(np.array([np.nan, 1.0]), requires_grad=True)
    with cr.detect_anomaly():
        y = (x.exp() * 2.0).sum()  # NaN in, NaN out: no op made it
        y.backward()
    assert np.isnan(x.grad.data[0])


def test_only_the_first_op_of_a_backward_is_blamed():
    x = cr.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with cr.detect_anomaly():
        y = (x.sqrt() * 2.0).exp().sum()
        with pytest.raises(FloatingPointError) as info:
            y.backward()
    assert str(info.value).startswith("Sqrt")


def test_backward_of_a_graph_made_outside_says_where_to_look():
    x = cr.tensor(np.array([0.0]), requires_grad=True)
    y = x.sqrt().sum()
    with cr.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"Sqrt.*detect_anomaly\(\)"):
            y.backward()


def test_nothing_raises_outside_the_context():
    x = cr.tensor(np.array([0.0, -1.0]), requires_grad=True)
    with cr.detect_anomaly():
        pass
    y = x.log()
    assert np.isnan(y.data[1]) and np.isinf(y.data[0])
    z = x.sqrt()
    z.sum().backward()
    assert np.isinf(x.grad.data[0])
    assert Reciprocal.apply(x).data[0] == np.inf


def test_the_context_restores_the_previous_state_after_an_error():
    x = cr.tensor(np.array([-1.0]))
    with pytest.raises(FloatingPointError), cr.detect_anomaly():
        x.log()
    assert not is_anomaly_enabled()
    x.log()  # no error after the context


def test_finite_graphs_pass_under_detect_anomaly(rng):
    x = cr.tensor(rng.uniform(0.5, 2.0, (3, 4)), requires_grad=True)
    with cr.detect_anomaly():
        loss = (x.log() * x.sqrt()).softmax(axis=1).max()
        loss.backward()
    assert np.all(np.isfinite(x.grad.data))
