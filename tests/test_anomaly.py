"""``cr.detect_anomaly()``: the first op whose forward or backward makes a NaN/Inf is named,
with the line of user code that created it; outside the context nothing is checked.

First the basics: NaN/Inf made in a forward (Log, Exp, Sqrt), Inf made in a backward (Sqrt),
custom Functions named, NaN passed in from the inputs not blamed, the first op of a backward
blamed. Then the harder cases: float32 overflow, NaN (not only Inf) in a backward, ops
created inside library code or a user's Module (the line named is the user's), second-order
backward passes, ``engine.grad``, no false alarm at chainrule's documented conventions, and
the origin kept only in anomaly mode.
"""

import inspect
import os
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine, nn
from chainrule.mode import is_anomaly_enabled
from chainrule.nn import functional as F
from toys import Reciprocal


def here(offset=1):
    """'this_file:line' of the caller's line plus ``offset``."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno + offset}"


@pytest.fixture(autouse=True)
def quiet_numpy():
    with np.errstate(all="ignore"):  # the NaN/Inf are made on purpose here
        yield


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


# ------------------------------------------------------------------ harder cases
def test_float32_overflow_in_a_forward_names_exp_and_the_line():
    x = cr.tensor(np.array([1.0, 100.0], dtype=np.float32), requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"^Exp .*forward") as info:
        location = here()
        x.exp()  # e^100 overflows float32 (but not float64)
    assert location in str(info.value)
    assert "x.exp()" in str(info.value)  # the source line itself is quoted


def test_an_op_made_inside_a_library_function_names_the_users_line():
    x = cr.tensor(np.array([3.0]), requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"^Div .*forward") as info:
        location = here()
        cr.var(x, ddof=1)  # 0 / 0: the division happens inside chainrule's var
    assert location in str(info.value)
    package = os.path.dirname(os.path.abspath(cr.__file__))
    assert package not in str(info.value)  # not a line inside chainrule


class LogOfLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x):
        self.location = here()
        return self.fc(x).log()


def test_an_op_made_in_a_users_module_names_the_line_in_forward():
    cr.manual_seed(0)
    model = LogOfLinear()
    x = cr.tensor(np.array([[1.0, -5.0], [-5.0, 1.0]]))
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"^Log ") as info:
        model(x)  # one of the two rows makes a negative pre-activation
    assert model.location in str(info.value)
    assert "in forward" in str(info.value)


def test_nan_made_in_a_backward_names_the_op_the_input_and_the_line():
    a = cr.tensor(np.array([-2.0, 3.0]), requires_grad=True)
    b = cr.tensor(np.array([2.0, 2.0]), requires_grad=True)
    with cr.detect_anomaly():
        location = here()
        y = (a**b).sum()  # finite: (-2)² = 4, but ∂/∂b = y·ln(−2) is NaN
        with pytest.raises(FloatingPointError, match=r"^Pow .*backward.*input 1") as info:
            y.backward()
    assert location in str(info.value)
    assert "Sum" not in str(info.value)


def test_the_norm_at_zero_names_sqrt_in_its_backward():
    x = cr.tensor(np.zeros(3), requires_grad=True)
    with cr.detect_anomaly():
        location = here()
        norm = (x * x).sum().sqrt()
        with pytest.raises(FloatingPointError, match=r"^Sqrt .*backward") as info:
            norm.backward()
    assert location in str(info.value)


def test_engine_grad_is_checked_like_backward():
    x = cr.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with cr.detect_anomaly():
        location = here()
        y = x.sqrt().sum()
        with pytest.raises(FloatingPointError, match=r"^Sqrt .*backward") as info:
            engine.grad(y, [x])
    assert location in str(info.value)


def test_a_second_order_backward_names_the_op_of_the_first_gradient():
    x = cr.tensor(np.array([1e-200, 1.0]), requires_grad=True)
    with cr.detect_anomaly():
        (g,) = engine.grad((x**3).sum(), [x], create_graph=True)  # 3x² underflows to 0
        location = here()
        penalty = g.sqrt().sum()
        with pytest.raises(FloatingPointError, match=r"^Sqrt .*backward") as info:
            penalty.backward()
    assert location in str(info.value)


def test_a_hessian_at_a_singular_point_names_the_op_and_the_call():
    def norm(t):
        return (t * t).sum().sqrt()

    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"NaN/Inf") as info:
        location = here()
        cr.hessian(norm)(cr.tensor(np.zeros(2)))
    assert location in str(info.value)


# ------------------------------------------------------------------ no false alarms
def _rmse_at_a_perfect_fit():
    p = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    F.rmse_loss(p, np.array([1.0, 2.0])).backward()
    return p.grad


def _kinks():
    x = cr.tensor(np.array([0.0, 0.0, 1.0]), requires_grad=True)
    (x.relu() + x.abs() + cr.maximum(x, 0.0) + x.clip(0.0, 1.0) + x.max()).sum().backward()
    return x.grad


def _extreme_logits():
    values = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=np.float32)
    x = cr.tensor(values, requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 0])) + F.binary_cross_entropy_with_logits(
        x, (values > 0).astype(np.float32)
    )
    (loss + x.sigmoid().sum() + F.logsigmoid(x).sum() + x.softmax(axis=1)[:, 0].sum()).backward()
    return x.grad


def _zero_probability_at_minus_inf():
    x = cr.tensor(np.array([[-np.inf, 0.0, 1.0]]), requires_grad=True)
    F.cross_entropy(x, np.array([[0.0, 0.5, 0.5]])).backward()
    return x.grad


def _logsumexp_of_minus_inf():
    x = cr.tensor(np.full((2, 2), -np.inf), requires_grad=True)
    cr.logsumexp(x, axis=1).sum().backward()
    return x.grad


NO_ALARM = [
    ("rmse at a perfect fit", _rmse_at_a_perfect_fit),
    ("kinks at 0", _kinks),
    ("logits of ±1e4", _extreme_logits),
    ("zero probability at −inf", _zero_probability_at_minus_inf),
    ("logsumexp of −inf", _logsumexp_of_minus_inf),
]


@pytest.mark.parametrize("run", [r for _, r in NO_ALARM], ids=[n for n, _ in NO_ALARM])
def test_no_false_alarm_at_documented_conventions(run):
    # NumPy's default error handling, not this module's quiet_numpy: a warning is an alarm too
    numpy_defaults = np.errstate(divide="warn", over="warn", invalid="warn", under="ignore")
    with numpy_defaults, cr.detect_anomaly(), warnings.catch_warnings():
        warnings.simplefilter("error")
        grad = run()
    assert np.all(np.isfinite(grad.data))


# ------------------------------------------------------------------ cost outside the mode
def test_the_origin_is_kept_only_in_anomaly_mode():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert x.exp().grad_fn.origin is None  # no stack walk on the ordinary path
    with cr.detect_anomaly():
        location = here()
        y = x.exp()
    assert y.grad_fn.origin.startswith(location)
    assert y.grad_fn.origin.endswith("y = x.exp()")


def test_nested_contexts_restore_the_outer_state():
    with cr.detect_anomaly():
        with cr.detect_anomaly():
            pass
        assert cr.mode.is_anomaly_enabled()
    assert not cr.mode.is_anomaly_enabled()
