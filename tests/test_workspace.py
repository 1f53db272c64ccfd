"""chainrule.workspace: memory is reused only when nothing can read it any more.

The pool's rule is checked directly (views, Tensors, saved arrays keep a buffer out of
reuse), and then where it matters: results and gradients of one CNN step held across the
next, two graphs alive at once, second derivatives through conv and pooling, and a
hypothesis test that interleaves shapes and checks that no held result ever changes.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule import workspace
from chainrule.nn.functional import cross_entropy
from chainrule.ops.conv import conv2d
from chainrule.ops.pool import avg_pool2d, max_pool2d

BIG = (256, 256)  # 256 KiB of float32: above MIN_BYTES


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.fixture
def pooled(monkeypatch):
    """Every array through the pool, however small (gradchecks run on small inputs)."""
    monkeypatch.setattr(workspace, "MIN_BYTES", 0)


@pytest.fixture
def limit():
    """Restore the pool's limit after a test that changes it."""
    before = workspace.limit()
    yield
    workspace.set_limit(before)


def test_memory_is_reused_once_nothing_refers_to_it():
    a = workspace.empty(BIG)
    where = address(a)
    del a
    b = workspace.empty(BIG)
    assert address(b) == where


@pytest.mark.parametrize(
    "holder, read",
    [
        (lambda a: a[::2], np.asarray),  # a view
        (lambda a: a.T[1:], np.asarray),  # a view of a view
        (cr.from_numpy, lambda t: t.data),  # a Tensor that shares its memory
        (memoryview, np.asarray),  # the buffer protocol
        (lambda a: [a], lambda held: held[0]),  # a container
    ],
    ids=["view", "view-of-view", "tensor", "memoryview", "list"],
)
def test_memory_anything_refers_to_is_never_handed_out(holder, read):
    a = workspace.empty(BIG)
    a.fill(7)
    kept = holder(a)
    where = address(a)
    del a
    others = [workspace.empty(BIG) for _ in range(3)]
    for other in others:
        other.fill(-1)
        assert address(other) != where
    assert np.all(read(kept) == 7)


def test_reused_memory_starts_again_at_version_0(pooled):
    x = cr.tensor(np.ones((4, 4), np.float32))
    y = cr.relu(x)
    y.add_(1)
    y.add_(1)
    assert y._version == 2
    where = address(y.data)
    del y
    z = cr.relu(x)
    assert address(z.data) == where and z._version == 0
    assert z.add_(1)._version == 1


def test_small_arrays_come_straight_from_numpy():
    held = workspace.held_bytes()
    a = workspace.empty(16)
    assert a.shape == (16,) and a.dtype == np.float32
    assert workspace.held_bytes() == held


def test_object_arrays_come_straight_from_numpy(pooled):
    a = workspace.empty((3, 2), object)
    assert a.dtype == object and a.shape == (3, 2)


def test_dtype_shape_and_layout():
    a = workspace.empty((64, 32, 32), np.float64)
    assert a.shape == (64, 32, 32) and a.dtype == np.float64 and a.flags.c_contiguous
    nchw_of_chwn = np.empty((6, 28, 28, 64), np.float32).transpose(3, 0, 1, 2)
    b = workspace.empty_like(nchw_of_chwn)
    assert b.shape == nchw_of_chwn.shape and b.strides == nchw_of_chwn.strides
    assert workspace.empty_like(nchw_of_chwn, bool).dtype == np.bool_


def test_limit_zero_keeps_nothing_and_clear_drops_unused(limit):
    workspace.set_limit(0)
    assert workspace.held_bytes() == 0
    a, b = workspace.empty(BIG), workspace.empty(BIG)
    assert address(a) != address(b) and workspace.held_bytes() == 0
    workspace.set_limit(1 << 30)
    c = workspace.empty(BIG)
    del c
    assert workspace.held_bytes() >= BIG[0] * BIG[1] * 4
    workspace.clear()
    held = workspace.held_bytes()
    d = workspace.empty(BIG)  # in use: clear() keeps it
    workspace.clear()
    assert workspace.held_bytes() == held + BIG[0] * BIG[1] * 4
    del d
    with pytest.raises(ValueError, match="at least 0"):
        workspace.set_limit(-1)


def lenet_step(model, optimizer, x, y):
    loss = cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_a_cnn_step_leaves_the_previous_steps_results_alone():
    cr.manual_seed(0)
    model = cr.models.lenet5()
    optimizer = cr.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    x1, x2 = (rng.random((32, 1, 28, 28), dtype=np.float32) for _ in range(2))
    y1, y2 = (cr.tensor(rng.integers(0, 10, 32)) for _ in range(2))
    conv = model[0]

    lenet_step(model, optimizer, cr.tensor(x1), y1)
    activation = model[1](conv(cr.tensor(x1)))  # a result the user keeps
    grads = [p.grad for p in model.parameters()]  # the gradients of step 1
    frozen = [activation.data.copy()] + [g.data.copy() for g in grads]
    for _ in range(3):
        lenet_step(model, optimizer, cr.tensor(x2), y2)
    for before, after in zip(frozen, [activation] + grads):
        np.testing.assert_array_equal(after.data, before)


def test_two_graphs_alive_at_once_keep_their_saved_arrays(pooled):
    rng = np.random.default_rng(1)
    w = cr.tensor(rng.standard_normal((6, 3, 5, 5)).astype(np.float32), requires_grad=True)
    xs = [rng.standard_normal((16, 3, 28, 28)).astype(np.float32) for _ in range(2)]

    def loss(x):
        return max_pool2d(conv2d(cr.tensor(x), w, padding=2).relu(), 2).sum()

    expected = []
    for x in xs:  # one graph at a time
        w.grad = None
        loss(x).backward()
        expected.append(w.grad.data.copy())
    first, second = loss(xs[0]), loss(xs[1])  # two graphs, both alive
    for graph, want in zip((second, first), expected[::-1]):
        w.grad = None
        graph.backward()
        np.testing.assert_allclose(w.grad.data, want, rtol=1e-5, atol=1e-5)


def test_first_and_second_derivatives_through_conv_and_pooling(pooled):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 8, 8))
    w = rng.standard_normal((3, 2, 3, 3))

    def f(x, w):
        return avg_pool2d(max_pool2d(conv2d(x, w, padding=1).relu(), 2), 2) ** 2

    assert cr.gradcheck(f, (x, w))
    assert cr.gradgradcheck(f, (x, w))


def test_conv_outputs_at_interleaved_shapes_never_change():
    """Results held while the same shapes are computed again are never overwritten."""
    rng = np.random.default_rng(3)
    held = []
    for size in (28, 14, 28, 14, 28):
        x = rng.standard_normal((64, 4, size, size)).astype(np.float32)
        w = rng.standard_normal((8, 4, 5, 5)).astype(np.float32)
        y = max_pool2d(conv2d(x, w, padding=2).relu(), 2)
        held.append((x, w, y, y.data.copy()))
    gc.collect()
    for x, w, y, values in held:
        np.testing.assert_array_equal(y.data, values)
        again = max_pool2d(conv2d(x, w, padding=2).relu(), 2)
        np.testing.assert_array_equal(again.data, values)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([8, 16, 32]), st.sampled_from([12, 16]), st.booleans()),
        min_size=2,
        max_size=6,
    )
)
def test_held_results_and_gradients_are_never_aliased(calls):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workspace, "MIN_BYTES", 0)
        run_and_check(calls)


def run_and_check(calls):
    rng = np.random.default_rng(len(calls))
    held = []
    for batch, size, keep_graph in calls:
        x = cr.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
        x.requires_grad = True
        w = cr.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
        y = max_pool2d(conv2d(x, w, padding=1).relu(), 2)
        (y * y).sum().backward(retain_graph=keep_graph)
        held.append((y, x.grad, w.grad, y.data.copy(), x.grad.data.copy(), w.grad.data.copy()))
    for y, gx, gw, y0, gx0, gw0 in held:
        np.testing.assert_array_equal(y.data, y0)
        np.testing.assert_array_equal(gx.data, gx0)
        np.testing.assert_array_equal(gw.data, gw0)
