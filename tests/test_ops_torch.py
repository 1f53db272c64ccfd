"""PyTorch as an optional oracle: every op spec's forward and gradients agree with torch's.

Skipped where torch is not installed; chainrule itself never imports it. Inputs are random
float64 arrays from the spec's domain (away from kinks, so subgradient conventions do not
matter here); the gradients are propagated from the same random cotangent in both.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine
from op_specs import OP_SPECS, spec_id

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-6, 1e-9


def test_every_public_op_has_a_torch_reference():
    assert {s.name for s in OP_SPECS if s.torch is not None} == set(cr.ops.__all__)


@pytest.mark.parametrize("spec", [s for s in OP_SPECS if s.torch is not None], ids=spec_id)
def test_forward_and_gradients_match_torch(spec, rng):
    arrays = spec.inputs(rng)
    ours = [cr.tensor(a, requires_grad=spec.differentiable) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=spec.differentiable) for a in arrays]
    out = spec.fn(*ours)
    expected = spec.torch(torch, *theirs)
    assert out.shape == tuple(expected.shape)
    if not spec.differentiable:
        np.testing.assert_array_equal(out.data, expected.numpy())
        return
    assert out.dtype == np.float64 and expected.dtype == torch.float64
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=RTOL, atol=ATOL)

    cotangent = rng.standard_normal(out.shape)
    out.backward(cotangent)
    expected.backward(torch.tensor(cotangent))
    for index, (x, t) in enumerate(zip(ours, theirs)):
        assert t.grad is not None, f"torch gives no gradient for input {index}"
        np.testing.assert_allclose(
            x.grad.data, t.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=f"input {index}"
        )


@pytest.mark.parametrize(
    "spec", [s for s in OP_SPECS if s.torch is not None and s.differentiable], ids=spec_id
)
def test_second_derivatives_match_torch(spec, rng):
    """d/dx <u, grad(<v, f(x)>)> for random u, v: the create_graph path against torch's."""
    arrays = spec.inputs(rng)
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = spec.fn(*ours)
    expected = spec.torch(torch, *theirs)
    v = rng.standard_normal(out.shape)
    us = [rng.standard_normal(a.shape) for a in arrays]

    grads = engine.grad(out, ours, grad_outputs=cr.tensor(v), create_graph=True)
    total = sum((g * u).sum() for g, u in zip(grads, us))
    t_grads = torch.autograd.grad(expected, theirs, torch.tensor(v), create_graph=True)
    t_total = sum((g * torch.tensor(u)).sum() for g, u in zip(t_grads, us))
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=RTOL, atol=ATOL)
    # A side whose first derivative does not depend on x (a linear op) has no graph left:
    # its second derivatives are zero.
    ours_2 = engine.grad(total, ours) if total.requires_grad else [None] * len(ours)
    theirs_2 = (
        torch.autograd.grad(t_total, theirs, allow_unused=True)
        if t_total.requires_grad
        else [None] * len(theirs)
    )
    for index, (g, t) in enumerate(zip(ours_2, theirs_2)):
        g = np.zeros(arrays[index].shape) if g is None else g.data
        t = np.zeros(arrays[index].shape) if t is None else t.numpy(force=True)
        np.testing.assert_allclose(g, t, rtol=RTOL, atol=ATOL, err_msg=f"input {index}")
