"""The transforms over pytrees against torch.func (which takes pytrees too), in float64:
grad, vjp, jvp, jacrev, hessian, has_aux, and a port of HIPS autograd's neural_net.py."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
tfunc = pytest.importorskip("torch.func")

from torch_trees import same, to_torch  # noqa: E402


def _params(rng):
    return {
        "layers": [(rng.standard_normal((3, 4)), rng.standard_normal(4))],
        "scale": rng.standard_normal(2),
    }


def _f(p, x, tanh, exp):
    (w, b) = p["layers"][0]
    h = tanh(x @ w + b)
    return (h * h).sum() * exp(p["scale"]).sum()


def test_grad_and_value_and_grad_over_a_dict_match_torch_func(rng):
    p, x = _params(rng), rng.standard_normal((5, 3))
    ours = cr.grad(lambda p: _f(p, x, cr.tanh, cr.exp))(p)
    tx = torch.tensor(x)
    theirs = tfunc.grad(lambda p: _f(p, tx, torch.tanh, torch.exp))(to_torch(p))
    same(ours, theirs)
    (g_ours, value) = cr.grad(lambda p: (_f(p, x, cr.tanh, cr.exp), 1), has_aux=True)(p)
    assert value == 1
    same(g_ours, theirs)


def test_has_aux_matches_torch_func(rng):
    x = rng.standard_normal(4)

    def ours(x):
        y = cr.tanh(x)
        return (y**3).sum(), {"y": y.detach()}

    def theirs(x):
        y = torch.tanh(x)
        return (y**3).sum(), {"y": y.detach()}

    (value, aux), g = cr.value_and_grad(ours, has_aux=True)(x)
    t_g, (t_value, t_aux) = tfunc.grad_and_value(theirs, has_aux=True)(torch.tensor(x))
    same((value, aux, g), (t_value, t_aux, t_g))
    jac, aux = cr.jacobian(lambda x: (cr.exp(x) * x[0], x.sum()), has_aux=True)(x)
    t_jac, t_aux = tfunc.jacrev(lambda x: (torch.exp(x) * x[0], x.sum()), has_aux=True)(
        torch.tensor(x)
    )
    same((jac, aux), (t_jac, t_aux))


def test_vjp_and_jvp_over_pytrees_match_torch_func(rng):
    a, b = rng.standard_normal(3), rng.standard_normal((2, 3))

    def f(p, sin, exp):
        return {"s": (sin(p[0]) * p[0]).sum(), "v": (p[1] @ exp(p[0]),)}

    u = {"s": rng.standard_normal(()), "v": (rng.standard_normal(2),)}
    out, vjp_fn = cr.vjp(lambda p: f(p, cr.sin, cr.exp), (a, b))
    t_out, t_vjp = tfunc.vjp(lambda p: f(p, torch.sin, torch.exp), to_torch((a, b)))
    same(out, t_out)
    same(vjp_fn(u), t_vjp(to_torch(u)))
    v = (rng.standard_normal(3), rng.standard_normal((2, 3)))
    out, tangent = cr.jvp(lambda p: f(p, cr.sin, cr.exp), ((a, b),), (v,))
    t_out, t_tangent = tfunc.jvp(
        lambda p: f(p, torch.sin, torch.exp), (to_torch((a, b)),), (to_torch(v),)
    )
    same((out, tangent), (t_out, t_tangent))


def test_jacrev_and_hessian_over_pytrees_match_torch_func(rng):
    p = {"a": rng.standard_normal(3), "b": [rng.standard_normal((2, 3))]}

    def f(p, tanh):
        return {"y": tanh(p["b"][0] @ p["a"]), "z": (p["a"] * p["a"]).sum()}

    same(
        cr.jacrev(lambda p: f(p, cr.tanh))(p),
        tfunc.jacrev(lambda p: f(p, torch.tanh))(to_torch(p)),
    )

    def g(p, tanh):
        return tanh(p["b"][0] @ p["a"]).sum() * (p["a"] ** 2).sum()

    ours = cr.hessian(lambda p: g(p, cr.tanh))(p)
    theirs = tfunc.hessian(lambda p: g(p, torch.tanh))(to_torch(p))
    same(ours, theirs)


# ------------------------------------------------------------------ HIPS autograd's neural_net.py
def init_random_params(scale, layer_sizes, rs):
    """A list of (weights, biases) tuples, one per layer (autograd's neural_net.py)."""
    return [
        (scale * rs.randn(m, n), scale * rs.randn(n))
        for m, n in zip(layer_sizes[:-1], layer_sizes[1:])
    ]


def neural_net_predict(params, inputs, tanh, logsumexp):
    """Log class probabilities: tanh hidden layers, normalised with logsumexp."""
    outputs = inputs
    for w, b in params:
        outputs = inputs @ w + b
        inputs = tanh(outputs)
    return outputs - logsumexp(outputs)


def log_posterior(params, inputs, targets, l2_reg, tanh, logsumexp):
    log_prior = -l2_reg * sum((p**2).sum() for p in cr.tree_leaves(params))
    log_lik = (neural_net_predict(params, inputs, tanh, logsumexp) * targets).sum()
    return log_prior + log_lik


def test_hips_neural_net_gradient_matches_torch_func():
    rs = np.random.RandomState(0)
    params = init_random_params(0.1, [6, 5, 4, 3], rs)
    inputs = rs.randn(8, 6)
    targets = np.eye(3)[rs.randint(0, 3, size=8)]

    def objective(params):
        return -log_posterior(
            params,
            inputs,
            targets,
            1.0,
            cr.tanh,
            lambda x: cr.logsumexp(x, axis=1, keepdims=True),
        )

    t_inputs, t_targets = torch.tensor(inputs), torch.tensor(targets)

    def t_objective(params):
        return -log_posterior(
            params,
            t_inputs,
            t_targets,
            1.0,
            torch.tanh,
            lambda x: torch.logsumexp(x, dim=1, keepdim=True),
        )

    grads = cr.grad(objective)(params)
    assert isinstance(grads, list) and all(isinstance(pair, tuple) for pair in grads)
    assert [tuple(g.shape for g in pair) for pair in grads] == [
        ((6, 5), (5,)),
        ((5, 4), (4,)),
        ((4, 3), (3,)),
    ]
    same(grads, tfunc.grad(t_objective)(to_torch(params)))


def test_jacfwd_over_pytrees_matches_torch_func_jacfwd():
    """Forward mode over a dict argument and a tuple output: JAX's (and torch.func's)
    nesting, output structure outside, and the same values."""
    rng = np.random.default_rng(3)
    p = {"w": rng.standard_normal(3), "b": rng.standard_normal(())}

    def f(p, tanh):
        y = tanh(p["w"] * p["b"])
        return (y, (y * y).sum())

    ours = cr.jacfwd(lambda p: f(p, cr.tanh))(p)
    theirs = tfunc.jacfwd(lambda p: f(p, torch.tanh))(to_torch(p))
    same(ours, theirs)
