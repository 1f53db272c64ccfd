"""PyTorch's spellings (SPEC "v0.2 additions"): Tensor aliases, ``keepdim=``, ``device=``,
the grad-mode functions, dtype names; NumPy's meaning where the two conflict."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

REDUCTIONS = ["sum", "mean", "var", "max", "min", "argmax", "argmin", "logsumexp"]


def _x() -> cr.Tensor:
    return cr.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)


# ----------------------------------------------------------------------------- keepdim
@pytest.mark.parametrize("name", REDUCTIONS)
def test_keepdim_is_keepdims_for_the_function_and_the_method(name):
    x = _x()
    expected = getattr(cr, name)(x, axis=1, keepdims=True)
    assert expected.shape == (3, 1)
    for got in (
        getattr(cr, name)(x, axis=1, keepdim=True),
        getattr(cr, name)(x, dim=1, keepdim=True),
        getattr(x, name)(1, keepdim=True),
        getattr(x, name)(dim=1, keepdim=True),
    ):
        assert got.shape == (3, 1)
        np.testing.assert_array_equal(got.data, expected.data)
    assert getattr(x, name)(dim=1, keepdim=False).shape == (3,)


@pytest.mark.parametrize("name", [n for n in REDUCTIONS if not n.startswith("arg")])
def test_keepdim_over_every_axis_and_its_gradient(name):
    x = _x()
    out = getattr(x, name)(keepdim=True)
    assert out.shape == (1, 1)
    out.sum().backward()
    kept = x.grad.data.copy()
    x.grad = None
    getattr(x, name)(keepdims=True).sum().backward()
    np.testing.assert_array_equal(x.grad.data, kept)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_keepdim_and_keepdims_together_are_refused(name):
    x = _x()
    with pytest.raises(TypeError, match="keepdims= or keepdim="):
        getattr(cr, name)(x, axis=0, keepdims=True, keepdim=True)
    with pytest.raises(TypeError, match="keepdims= or keepdim="):
        getattr(x, name)(keepdims=True, keepdim=False)


def test_keepdim_shapes_match_torch():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(1).standard_normal((2, 3, 4))
    x, t = cr.tensor(data), torch.tensor(data)
    for dim in (0, 1, 2, (0, 2)):
        for keep in (False, True):
            assert x.sum(dim=dim, keepdim=keep).shape == tuple(t.sum(dim=dim, keepdim=keep).shape)
            np.testing.assert_allclose(
                x.logsumexp(dim=dim, keepdim=keep).data,
                t.logsumexp(dim=dim, keepdim=keep).numpy(),
            )


# ----------------------------------------------------------------------------- methods
def test_tensor_aliases_equal_their_numpy_names():
    x = _x()
    np.testing.assert_array_equal(x.pow(3).data, (x**3).data)
    np.testing.assert_array_equal(x.unsqueeze(1).data, x.expand_dims(1).data)
    assert x.unsqueeze(dim=0).shape == (1, 3, 4)
    assert x.view(4, 3).shape == (4, 3) and x.view((2, -1)).shape == (2, 6)
    np.testing.assert_array_equal(x.view(-1).data, x.data.reshape(-1))
    assert x.permute(1, 0).shape == (4, 3) and x.permute((1, 0)).shape == (4, 3)
    np.testing.assert_array_equal(x.permute(1, 0).data, x.data.T)
    assert x.dim() == 2 and x.numel() == 12
    assert x.size == 12  # NumPy's meaning: the element count, not PyTorch's size()
    np.testing.assert_array_equal(x.clamp(-0.5, 0.5).data, np.clip(x.data, -0.5, 0.5))
    np.testing.assert_array_equal(x.clamp(min=0).data, np.maximum(x.data, 0))
    np.testing.assert_array_equal(x.mm(x.T).data, x.data @ x.data.T)
    assert x.cpu() is x


def test_max_with_an_axis_returns_values_not_a_pair():
    x = _x()
    out = x.max(dim=1)
    assert isinstance(out, cr.Tensor)  # NumPy wins: PyTorch would give (values, indices)
    np.testing.assert_array_equal(out.data, x.data.max(axis=1))


def test_aliases_are_differentiable():
    x = _x()
    y = (x.pow(2).unsqueeze(0).view(4, 3).permute(1, 0).clamp(-10, 10).float().double()).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data)
    w = cr.tensor(np.ones((4, 2)), requires_grad=True)
    x.mm(w).sum().backward()
    np.testing.assert_allclose(w.grad.data, np.repeat(x.data.sum(0)[:, None], 2, axis=1))


def test_dtype_conversions():
    x = cr.tensor([1.0, 2.0])
    assert x.dtype == np.float32
    assert x.float() is x and x.double().dtype == np.float64
    assert x.type(cr.float64).dtype == np.float64 and x.type("int64").dtype == np.int64
    assert x.to(cr.float64).dtype == np.float64
    assert x.to("cpu") is x and x.to(device="cpu") is x
    assert x.to("cpu", cr.float64).dtype == np.float64
    assert x.to(cr.zeros(1, dtype=cr.int32)).dtype == np.int32
    copied = x.to(copy=True)
    assert copied is not x and not np.shares_memory(copied.data, x.data)
    with pytest.raises(TypeError, match="two dtypes"):
        x.to(cr.float64, cr.int32)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_another_device_is_refused_clearly(device):
    x = cr.tensor([1.0])
    for call in (lambda: x.to(device), lambda: x.to(device=device)):
        with pytest.raises(ValueError, match="CPU only"):
            call()
    with pytest.raises(ValueError, match=f"'{device}'.*CPU only"):
        cr.nn.Linear(2, 2).to(device)


def test_mm_and_permute_and_unsqueeze_refuse_what_torch_refuses():
    x = _x()
    with pytest.raises(ValueError, match="2-D"):
        x.mm(cr.ones(4))
    with pytest.raises(ValueError, match="one axis per dimension"):
        x.permute(0)
    with pytest.raises(TypeError, match="exactly one"):
        x.unsqueeze()
    with pytest.raises(TypeError, match="exactly one"):
        x.unsqueeze(0, dim=0)


def test_aliases_match_torch():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(2).standard_normal((2, 3, 4))
    x, t = cr.tensor(data), torch.tensor(data)
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, t.permute(2, 0, 1).numpy())
    np.testing.assert_array_equal(x.unsqueeze(-1).data, t.unsqueeze(-1).numpy())
    np.testing.assert_array_equal(x.view(6, 4).data, t.view(6, 4).numpy())
    np.testing.assert_array_equal(x.clamp(-0.1, 0.2).data, t.clamp(-0.1, 0.2).numpy())
    np.testing.assert_array_equal(x.pow(2).data, t.pow(2).numpy())
    assert x.dim() == t.dim() and x.numel() == t.numel()


# ----------------------------------------------------------------------------- creation
CREATORS = {
    "tensor": lambda **kw: cr.tensor([1.0, 2.0], **kw),
    "as_tensor": lambda **kw: cr.as_tensor([1.0, 2.0], **kw),
    "zeros": lambda **kw: cr.zeros(2, 3, **kw),
    "ones": lambda **kw: cr.ones(2, **kw),
    "full": lambda **kw: cr.full((2,), 7.0, **kw),
    "arange": lambda **kw: cr.arange(5, **kw),
    "eye": lambda **kw: cr.eye(3, **kw),
    "zeros_like": lambda **kw: cr.zeros_like(np.ones(2), **kw),
    "ones_like": lambda **kw: cr.ones_like(np.ones(2), **kw),
    "randn": lambda **kw: cr.randn(2, **kw),
    "rand": lambda **kw: cr.rand(2, **kw),
    "linspace": lambda **kw: cr.linspace(0.0, 1.0, 5, **kw),
}


@pytest.mark.parametrize("name", sorted(CREATORS))
def test_creation_accepts_cpu_and_refuses_other_devices(name):
    make = CREATORS[name]
    assert make(device="cpu").shape == make().shape
    with pytest.raises(ValueError, match="'cuda'.*CPU only"):
        make(device="cuda")


def test_as_tensor_shares_memory_where_it_can():
    array = np.arange(3.0)
    shared = cr.as_tensor(array)
    assert shared.data is array and shared.dtype == np.float64
    converted = cr.as_tensor(array, dtype=cr.float32)
    assert converted.dtype == np.float32 and not np.shares_memory(converted.data, array)
    t = cr.tensor([1.0], requires_grad=True)
    assert cr.as_tensor(t) is t
    assert cr.as_tensor(t, dtype=cr.float32) is t
    assert cr.as_tensor([1, 2]).dtype == np.int64
    assert cr.as_tensor([1.5]).dtype == np.float32


def test_dtype_names_are_numpy_dtypes():
    assert cr.float32 is np.float32 and cr.float64 is np.float64
    assert cr.int64 is np.int64 and cr.int32 is np.int32 and cr.bool_ is np.bool_
    assert cr.zeros(2, dtype=cr.bool_).dtype == np.bool_
    assert cr.arange(3, dtype=cr.int32).dtype == np.int32


# ----------------------------------------------------------------------------- grad modes
def _records() -> bool:
    return (cr.tensor([1.0], requires_grad=True) * 2).requires_grad


def test_set_grad_enabled_as_a_call_and_as_a_context_manager():
    assert _records()
    with cr.set_grad_enabled(False):
        assert not _records() and not cr.is_grad_enabled()
        with cr.set_grad_enabled(True):
            assert _records()
        assert not _records()
    assert _records()
    try:
        cr.set_grad_enabled(False)
        assert not _records()
    finally:
        cr.set_grad_enabled(True)
    assert _records()


def test_set_grad_enabled_restores_after_an_exception():
    with pytest.raises(KeyError):
        with cr.set_grad_enabled(False):
            raise KeyError
    assert cr.is_grad_enabled()


def test_inference_mode_is_no_grad():
    with cr.inference_mode():
        assert not _records()
    assert _records()
    with cr.inference_mode(False):
        assert _records()

    @cr.inference_mode()
    def predict():
        return _records()

    assert predict() is False and _records()


# ----------------------------------------------------------------------------- modules
def test_module_to_and_cpu():
    layer = cr.nn.Linear(3, 2)
    assert layer.cpu() is layer and layer.to("cpu") is layer
    assert layer.to(cr.float64) is layer
    assert all(p.dtype == np.float64 for p in layer.parameters())
    layer.to("cpu", dtype=cr.float32)
    assert all(p.dtype == np.float32 for p in layer.parameters())


@pytest.mark.parametrize("owner", ["module", "optimizer"])
def test_zero_grad_set_to_none_false_zeroes_in_place(owner):
    layer = cr.nn.Linear(3, 2)
    optimizer = cr.optim.SGD(layer.parameters(), lr=0.1)
    layer(cr.ones(1, 3)).sum().backward()
    target = layer if owner == "module" else optimizer
    memory = layer.weight.grad.data
    target.zero_grad(set_to_none=False)
    assert layer.weight.grad is not None and not layer.weight.grad.data.any()
    assert np.shares_memory(layer.weight.grad.data, memory)
    target.zero_grad(set_to_none=True)
    assert layer.weight.grad is None
