"""Conv and pooling kernels: any memory layout gives the same values and gradients, the
disjoint-window max-pool path keeps the tie and NaN rules, and the fused conv bias is
differentiable (once and twice)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F


def batch_innermost(x):
    """The same NCHW values, stored with the batch innermost (C, H, W, N memory)."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def values_and_grads(f, *arrays):
    """f's output and the gradients of Σ f·u (u fixed) with respect to every input."""
    inputs = [cr.tensor(a, requires_grad=True) for a in arrays]
    y = f(*inputs)
    u = np.random.default_rng(7).standard_normal(y.shape).astype(y.dtype)
    (y * u).sum().backward()
    return [y.data] + [t.grad.data for t in inputs]


def assert_same(first, second, **tolerance):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **tolerance)


# ----------------------------------------------------------------------- max pooling
POOLS = [(2, None), (3, None), (2, 3), (3, 1), ((2, 3), (2, 3))]


@pytest.mark.parametrize("k, s", POOLS)
@pytest.mark.parametrize("shape", [(3, 2, 8, 9), (2, 3, 7, 7)])  # cropped and not
def test_max_pool_layout_does_not_change_values_or_gradients(rng, k, s, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    expected = values_and_grads(lambda t: F.max_pool2d(t, k, s), x)
    got = values_and_grads(lambda t: F.max_pool2d(t, k, s), batch_innermost(x))
    assert_same(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("k, s", POOLS)
def test_avg_pool_layout_does_not_change_values_or_gradients(rng, k, s):
    x = rng.standard_normal((3, 2, 8, 9)).astype(np.float32)
    expected = values_and_grads(lambda t: F.avg_pool2d(t, k, s), x)
    got = values_and_grads(lambda t: F.avg_pool2d(t, k, s), batch_innermost(x))
    assert_same(got, expected, rtol=1e-6)


@pytest.mark.parametrize("layout", [np.ascontiguousarray, batch_innermost])
def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order(layout):
    # every 2x2 and 3x3 window is constant or has its maximum several times
    x = np.array([[1, 1, 0, 2, 2, 2], [1, 1, 2, 0, 2, 2]] * 3, dtype=np.float64)
    x = layout(np.stack([x, x[::-1]])[:, None])  # (2, 1, 6, 6)
    for k in (2, 3):
        t = cr.tensor(x, requires_grad=True)
        F.max_pool2d(t, k).sum().backward()
        grad = t.grad.data
        for n in range(2):
            for oy in range(6 // k):
                for ox in range(6 // k):
                    window = x[n, 0, oy * k : oy * k + k, ox * k : ox * k + k]
                    first = np.zeros(k * k)
                    first[np.argmax(window.ravel())] = 1  # argmax: the first maximum
                    g = grad[n, 0, oy * k : oy * k + k, ox * k : ox * k + k]
                    np.testing.assert_array_equal(g.ravel(), first)


@pytest.mark.parametrize("layout", [np.ascontiguousarray, batch_innermost])
def test_max_pool_propagates_nan_and_crops_the_remainder(layout):
    x = np.arange(2 * 2 * 5 * 5, dtype=np.float32).reshape(2, 2, 5, 5)
    x[1, 0, 2, 3] = np.nan
    t = cr.tensor(layout(x), requires_grad=True)
    y = F.max_pool2d(t, 2)
    assert y.shape == (2, 2, 2, 2)
    assert np.isnan(y.data[1, 0, 1, 1]) and np.isnan(y.data).sum() == 1
    y.sum().backward()
    grad = t.grad.data
    assert np.all(grad[:, :, 4, :] == 0) and np.all(grad[:, :, :, 4] == 0)  # cropped
    assert grad.sum() == 2 * 2 * 2 * 2  # one winner per window, NaN window included
    assert np.all(grad[0, 0, 1::2, 1:4:2] == 1)  # the bottom-right of each window


def test_max_pool_twice_differentiable_on_the_disjoint_path(rng):
    x = rng.standard_normal((2, 2, 4, 6))
    assert cr.gradgradcheck(lambda x: F.max_pool2d(x, 2) ** 2, x)
    assert cr.gradgradcheck(lambda x: F.max_pool2d(x, (2, 3), (3, 3)) ** 2, x)


# ----------------------------------------------------------------------- fused conv bias
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((2, 1), (0, 2))])
def test_conv2d_with_bias_is_differentiable_once_and_twice(rng, stride, padding):
    x = rng.standard_normal((2, 2, 5, 4))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)

    def f(x, w, b):
        return F.conv2d(x, w, b, stride, padding)

    assert cr.gradcheck(f, (x, w, b))
    assert cr.gradgradcheck(lambda x, w, b: f(x, w, b) ** 2, (x, w, b))


def test_conv2d_bias_gradient_alone_and_in_float32(rng):
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    u = rng.standard_normal((4, 3, 4, 4)).astype(np.float32)
    bias = cr.tensor(b, requires_grad=True)  # only the bias needs a gradient
    y = F.conv2d(x, w, bias)
    (y * u).sum().backward()
    assert bias.grad.dtype == np.float32 and bias.grad.shape == (3,)
    np.testing.assert_allclose(bias.grad.data, u.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5)
    without = F.conv2d(x, w).data
    np.testing.assert_allclose(y.data, without + b.reshape(1, -1, 1, 1), rtol=1e-6, atol=1e-6)


def test_conv2d_float64_bias_on_float32_input_promotes_as_an_add_would(rng):
    x = rng.standard_normal((1, 1, 4, 4)).astype(np.float32)
    w = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    b = rng.standard_normal(2)
    assert F.conv2d(x, w, b).dtype == (F.conv2d(x, w) + b.reshape(1, -1, 1, 1)).dtype


# ----------------------------------------------------------------------- conv layouts
@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 2), (2, 1), ((2, 1), (0, 2))])
def test_conv2d_layout_does_not_change_values_or_gradients(rng, stride, padding):
    x = rng.standard_normal((3, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)

    def f(x, w, b):
        return F.conv2d(x, w, b, stride, padding)

    expected = values_and_grads(f, x, w, b)
    assert_same(values_and_grads(f, batch_innermost(x), w, b), expected, rtol=0, atol=0)


def test_a_cnn_on_batch_innermost_activations_matches_one_on_contiguous_copies(rng):
    """conv -> relu -> max pool -> conv -> relu -> max pool -> flatten -> linear, once as
    the layers hand their outputs on and once with every activation copied to C order."""
    x = rng.standard_normal((5, 2, 12, 12)).astype(np.float32)
    w1 = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b1 = rng.standard_normal(3).astype(np.float32)
    w2 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b2 = rng.standard_normal(4).astype(np.float32)
    w3 = rng.standard_normal((36, 2)).astype(np.float32)

    def net(contiguous):
        def f(x, w1, b1, w2, b2, w3):
            h = x
            for w, b in ((w1, b1), (w2, b2)):
                h = F.conv2d(h, w, b, padding=1)
                h = h.relu()
                if contiguous:
                    h = h.reshape(-1).reshape(h.shape)  # a C-order copy
                    assert h.data.flags.c_contiguous
                h = F.max_pool2d(h, 2)
            return F.linear(h.reshape(h.shape[0], -1), w3)

        return f

    expected = values_and_grads(net(True), x, w1, b1, w2, b2, w3)
    got = values_and_grads(net(False), x, w1, b1, w2, b2, w3)
    for a, b in zip(got, expected):  # float32 rounding (BLAS may sum in another order)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


def test_conv_outputs_stay_batch_innermost_through_relu_and_max_pool(rng):
    """The speed contract: no transposing copies between the layers of a CNN."""
    x = cr.tensor(rng.standard_normal((4, 2, 8, 8)).astype(np.float32))
    y = F.max_pool2d(F.conv2d(x, rng.standard_normal((3, 2, 3, 3)), padding=1).relu(), 2)
    assert y.shape == (4, 3, 4, 4)
    assert np.argmin(y.data.strides) == 0  # the batch axis varies fastest in memory


# ----------------------------------------------------------------------- edge cases
def test_conv2d_empty_batch_and_mixed_dtypes(rng):
    x = np.zeros((0, 2, 5, 5), dtype=np.float32)
    w = rng.standard_normal((3, 2, 3, 3))
    assert F.conv2d(x, w).shape == (0, 3, 3, 3)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = F.conv2d(x, w)  # float32 input, float64 filters: computed in float64
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, F.conv2d(x.astype(np.float64), w).data, rtol=1e-12)
