"""How a compiled function is called: arguments given by name go to their parameters'
places, the same call by position or by name runs one program, and what cannot be placed
is a clear TypeError."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def loss(W, x, y=None, scale=2.0):
    return ((x @ W - y) ** 2).mean() * scale


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 2)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))


def test_arguments_by_name_give_the_positional_result_from_one_trace(data):
    W, x, y = data
    grad = cr.compile(cr.grad(loss))
    by_position = grad(W, x, y)
    np.testing.assert_array_equal(grad(W, x, y=y).data, by_position.data)
    np.testing.assert_array_equal(grad(W, x=x, y=y).data, by_position.data)
    np.testing.assert_array_equal(grad(y=y, x=x, W=W).data, by_position.data)
    assert grad.traces == 1


def test_a_named_argument_after_a_skipped_default(data):
    W, x, _ = data

    def shifted(W, x, shift=0.5, scale=2.0):
        return ((x @ W + shift) ** 2).sum() * scale

    f = cr.compile(shifted)
    eager = shifted(cr.tensor(W), cr.tensor(x), 0.5, 3.0)
    # shift is left out before scale, which is named: its default fills its place
    np.testing.assert_array_equal(f(W, x, scale=3.0).data, eager.data)
    np.testing.assert_array_equal(f(W, x, 0.5, 3.0).data, eager.data)
    assert f.traces == 1
    assert "3.0" in f.explain(W, x, scale=3.0)


def test_unknown_and_keyword_only_arguments_are_clear_errors(data):
    W, x, y = data
    with pytest.raises(TypeError, match=r"grad\(loss\)\(\): got an unexpected keyword"):
        cr.compile(cr.grad(loss))(W, x, z=y)

    def keyword_only(W, *, x):
        return (x @ W).sum()

    with pytest.raises(TypeError, match=r"keyword-only arguments \(x\).*close over them"):
        cr.compile(keyword_only)(W, x=x)
