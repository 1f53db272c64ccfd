"""Exchange with NumPy and DLPack producers/consumers: shared memory, no copies."""

import numpy as np
import pytest

import chainrule as cr


def test_numpy_views_share_memory():
    t = cr.tensor(np.arange(4.0))
    a = np.asarray(t)
    a[0] = 42.0
    assert t.numpy()[0] == 42.0 and np.shares_memory(a, t.numpy())


def test_from_numpy_shares_memory_and_tensor_copies():
    a = np.zeros(3, dtype=np.float32)
    shared, copied = cr.from_numpy(a), cr.tensor(a)
    a[1] = 5.0
    assert shared.data[1] == 5.0 and copied.data[1] == 0.0
    with pytest.raises(TypeError, match="ndarray"):
        cr.from_numpy([1.0, 2.0])


def test_ndarray_on_the_left_of_an_operator_keeps_the_graph():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    for y in (np.array([3.0, 4.0]) * x, np.array([3.0, 4.0]) + x, np.ones(2) - x):
        assert isinstance(y, cr.Tensor) and y.grad_fn is not None
    (np.array([3.0, 4.0]) * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_dlpack_round_trip_with_numpy_shares_memory():
    t = cr.tensor(np.arange(6.0).reshape(2, 3))
    a = np.from_dlpack(t)
    assert np.shares_memory(a, t.data)
    back = cr.from_dlpack(a)
    back.data[0, 0] = -1.0
    assert t.data[0, 0] == -1.0
    assert t.__dlpack_device__() == (1, 0)  # kDLCPU, device 0


def test_from_dlpack_rejects_non_producers():
    with pytest.raises(TypeError, match="__dlpack__"):
        cr.from_dlpack([1, 2, 3])


def test_dlpack_round_trip_with_torch_shares_memory_both_ways():
    torch = pytest.importorskip("torch")
    t = cr.tensor(np.arange(4, dtype=np.float32))
    tt = torch.from_dlpack(t)
    tt[0] = 7.0  # a write on the torch side ...
    assert t.data[0] == 7.0  # ... is seen by chainrule
    source = torch.arange(3, dtype=torch.float64)
    c = cr.from_dlpack(source)
    c.data[2] = -5.0  # and the other way round
    assert source[2].item() == -5.0 and c.dtype == np.float64
    x = cr.from_dlpack(torch.ones(2).detach(), requires_grad=True)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
