"""The 0-d invariant: every ``Tensor.data`` and every ``.grad`` is an ``np.ndarray``.

NumPy returns scalars (``numpy.float64``), not 0-d arrays, from full reductions and from
arithmetic on 0-d arrays. A scalar in ``.data`` is immutable and has no ``__array__`` that
returns an array, which once broke momentum on 0-d parameters (the buffer never updated),
``np.asarray(t.grad)`` and ``cr.tensor([g1, g2])``. The meta-test runs every row of
``tests/op_specs.py`` with its own shapes, with every input shrunk to one element, and
with every input 0-d, and checks the type of the output and of every gradient, first and
second order.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine
from op_specs import OP_SPECS, spec_id

DIFFERENTIABLE = [s for s in OP_SPECS if s.differentiable]
VARIANTS = ["own-shapes", "one-element", "0d"]


def _shapes(spec, variant):
    if variant == "own-shapes":
        return spec.shapes
    if variant == "one-element":
        return tuple((1,) * len(s) for s in spec.shapes)
    return tuple(() for _ in spec.shapes)


def _is_array(value) -> bool:
    return type(value) is np.ndarray


def _assert_tensor_of_arrays(t, what):
    assert isinstance(t, cr.Tensor), f"{what} is a {type(t).__name__}"
    assert _is_array(t.data), f"{what}.data is a {type(t.data).__name__}, not an ndarray"
    np.asarray(t)  # works only when __array__ gives an array


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # var with ddof >= n is NaN, as NumPy
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_outputs_and_gradients_are_arrays_first_and_second_order(spec, variant, rng):
    shaped = dataclasses.replace(spec, shapes=_shapes(spec, variant))
    arrays = shaped.inputs(rng)
    try:
        expected = np.asarray(spec.ref(*arrays))
    except (ValueError, IndexError, TypeError, np.exceptions.AxisError):
        pytest.skip(f"NumPy itself does not apply this call to shapes {shaped.shapes}")
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    try:
        out = spec.fn(*xs)
    except ValueError as error:
        # NumPy's ufunc reductions accept axis 0 or -1 of a 0-d array (np.var does not);
        # chainrule refuses that quirk with a clear error
        if variant == "0d" and "out of range for a tensor with 0 dimension" in str(error):
            pytest.skip(str(error))
        raise
    _assert_tensor_of_arrays(out, "the output")
    assert out.shape == expected.shape

    seed = rng.standard_normal(out.shape)
    out.backward(seed, retain_graph=True)
    for i, x in enumerate(xs):
        _assert_tensor_of_arrays(x.grad, f"input {i}'s grad")

    grads = engine.grad(out, xs, grad_outputs=cr.tensor(seed), create_graph=True)
    total = None
    for i, g in enumerate(grads):
        _assert_tensor_of_arrays(g, f"input {i}'s recorded gradient")
        term = (g * rng.standard_normal(g.shape)).sum()
        _assert_tensor_of_arrays(term, "a full reduction of a gradient")
        total = term if total is None else total + term
    if total.requires_grad:  # not for ops that are linear in every input
        for i, h in enumerate(engine.grad(total, xs)):
            _assert_tensor_of_arrays(h, f"input {i}'s second derivative")


# --------------------------------------------------------------- the cases the issue saw
def test_gradient_of_a_scalar_times_a_vector_is_a_0d_array():
    a = cr.tensor(2.0, requires_grad=True)
    (a * cr.tensor([1.0, 2.0])).sum().backward()
    _assert_tensor_of_arrays(a.grad, "a.grad")
    assert a.grad.shape == () and a.grad.item() == 3.0
    assert np.ravel(a.grad).tolist() == [3.0]


@pytest.mark.parametrize(
    "reduce",
    [lambda x: x.sum(), lambda x: x.mean(), lambda x: cr.dot(x, x), lambda x: x.max()],
    ids=["sum", "mean", "dot", "max"],
)
def test_full_reductions_give_0d_arrays(reduce):
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reduce(x)
    _assert_tensor_of_arrays(y, "the reduction")
    y.backward()
    _assert_tensor_of_arrays(x.grad, "x.grad")


def test_gradients_of_0d_parameters_stack_into_a_tensor():
    a = cr.tensor(1.5, requires_grad=True)
    b = cr.tensor(-0.5, requires_grad=True)
    (a * b + a).backward()
    stacked = cr.tensor([a.grad, b.grad])
    np.testing.assert_allclose(stacked.data, [b.data + 1.0, a.data])
    assert cr.stack([a.grad, b.grad]).shape == (2,)


def test_repeated_0d_input_accumulates_into_an_array():
    a = cr.tensor(3.0, requires_grad=True)
    (a * a + a).backward()  # three contributions summed in the walk
    _assert_tensor_of_arrays(a.grad, "a.grad")
    assert a.grad.item() == 7.0
    (a * a).backward()  # accumulation into an existing 0-d gradient
    _assert_tensor_of_arrays(a.grad, "a.grad")
    assert a.grad.item() == 13.0


def test_transforms_return_0d_arrays():
    for value in (1.0, np.float64(1.0), np.array(1.0)):
        g = cr.grad(lambda x: x * x)(value)
        _assert_tensor_of_arrays(g, "cr.grad(f)(1.0)")
        assert g.item() == 2.0
    v, g = cr.value_and_grad(lambda x: (x**3).sum())(2.0)
    _assert_tensor_of_arrays(v, "the value")
    _assert_tensor_of_arrays(g, "the gradient")
    _assert_tensor_of_arrays(cr.hessian(lambda x: x**3)(2.0), "the Hessian")
    _assert_tensor_of_arrays(cr.jacobian(lambda x: x**3)(2.0), "the Jacobian")
    out, tangent = cr.jvp(lambda x: x**3, (2.0,), (1.0,))
    _assert_tensor_of_arrays(out, "the jvp's value")
    _assert_tensor_of_arrays(tangent, "the jvp's tangent")
    out, vjp_fn = cr.vjp(lambda x: x**3, 2.0)
    _assert_tensor_of_arrays(vjp_fn(1.0)[0], "the vjp")


def test_retained_gradient_of_a_0d_intermediate_is_an_array():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    s = x.sum().retain_grad()
    (s * s).backward()
    _assert_tensor_of_arrays(s.grad, "s.grad")


def test_datasets_give_0d_arrays_for_scalar_fields():
    ds = cr.data.TensorDataset(np.arange(6.0).reshape(3, 2), np.array([0, 1, 2]))
    x, y = ds[1]
    _assert_tensor_of_arrays(y, "the label")
    assert y.item() == 1


# --------------------------------------------------------------- optimizers on 0-d parameters
OPTIMIZERS = {
    "sgd-momentum": lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9),
    "sgd-nesterov": lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "sgd-decay": lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.5, weight_decay=0.1),
    "adam": lambda ps: cr.optim.Adam(ps, lr=0.1),
    "adamw": lambda ps: cr.optim.AdamW(ps, lr=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_treat_a_0d_parameter_like_a_1_element_one(name):
    """The same steps on a 0-d parameter and on a (1,) parameter give the same values, and
    every state buffer is an array (an immutable scalar buffer froze momentum before)."""
    scalar = cr.tensor(np.float64(2.0), requires_grad=True)
    vector = cr.tensor(np.array([2.0]), requires_grad=True)
    opt_s, opt_v = OPTIMIZERS[name]([scalar]), OPTIMIZERS[name]([vector])
    for _ in range(5):
        for p, opt in ((scalar, opt_s), (vector, opt_v)):
            opt.zero_grad()
            (p * p * p).sum().backward()
            opt.step()
    np.testing.assert_allclose(scalar.data, vector.data[0], rtol=1e-14)
    assert _is_array(scalar.data) and scalar.shape == ()
    for state in opt_s.state:
        for key, value in state.items():
            if isinstance(value, np.ndarray) or isinstance(value, np.generic):
                assert _is_array(value), f"state {key!r} is a {type(value).__name__}"


def test_zero_grad_without_setting_to_none_on_0d_parameters():
    a = cr.tensor(2.0, requires_grad=True)
    opt = cr.optim.SGD([a], lr=0.1, momentum=0.9)
    (a * a).backward()
    opt.zero_grad(set_to_none=False)
    _assert_tensor_of_arrays(a.grad, "a.grad")
    assert a.grad.item() == 0.0
    model = cr.nn.Linear(2, 1)
    model(cr.ones((1, 2))).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(not p.grad.data.any() for p in model.parameters())
