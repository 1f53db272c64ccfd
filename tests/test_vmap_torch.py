"""``cr.vmap`` against ``torch.func.vmap`` in float64, alone and nested with grad,
jacrev, hessian and itself, over pytrees of parameters."""

from __future__ import annotations

import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
tfunc = pytest.importorskip("torch.func")

from torch_trees import same, to_torch  # noqa: E402


def _mlp(lib, params, x):
    """A two-layer tanh network on one example (x of shape (3,)): scores of shape (2,)."""
    hidden = lib.tanh(x @ params["w1"] + params["b1"])
    return hidden @ params["w2"] + params["b2"]


def _params(rng):
    return {"w1": rng.standard_normal((3, 5)), "b1": rng.standard_normal(5),
            "w2": rng.standard_normal((5, 2)), "b2": rng.standard_normal(2)}  # fmt: skip


def _loss(lib, params, x, y):
    scores = _mlp(lib, params, x)
    return ((scores - y) ** 2).sum() + (params["w1"] ** 2).sum() * 0.01


def test_vmap_of_a_network(rng):
    params, xs = _params(rng), rng.standard_normal((7, 3))
    ours = cr.vmap(lambda x: _mlp(cr, params, x))(xs)
    theirs = tfunc.vmap(lambda x: _mlp(torch, to_torch(params), x))(to_torch(xs))
    same(ours, theirs)


def test_per_example_gradients(rng):
    params, xs, ys = _params(rng), rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    ours = cr.vmap(cr.grad(lambda p, x, y: _loss(cr, p, x, y)), in_axes=(None, 0, 0))(
        params, xs, ys
    )
    theirs = tfunc.vmap(tfunc.grad(lambda p, x, y: _loss(torch, p, x, y)), (None, 0, 0))(
        to_torch(params), to_torch(xs), to_torch(ys)
    )
    same(ours, theirs)


def test_grad_of_vmap(rng):
    params, xs, ys = _params(rng), rng.standard_normal((7, 3)), rng.standard_normal((7, 2))

    def total(lib, vmap, grad_params):
        return vmap(lambda x, y: _loss(lib, grad_params, x, y))(xs_of(lib), ys_of(lib)).sum()

    def xs_of(lib):
        return xs if lib is cr else to_torch(xs)

    def ys_of(lib):
        return ys if lib is cr else to_torch(ys)

    ours = cr.grad(lambda p: total(cr, cr.vmap, p))(params)
    theirs = tfunc.grad(lambda p: total(torch, tfunc.vmap, p))(to_torch(params))
    same(ours, theirs)


def test_nested_vmap_with_in_axes_and_out_axes(rng):
    a, b = rng.standard_normal((4, 3, 5)), rng.standard_normal((3, 4))

    def f(lib, vmap):  # torch.func.vmap names in_axes positionally
        inner = vmap(lambda row, col: (lib.sin(row) * col).sum(), (0, 1))
        return vmap(inner, (2, None), 1)

    same(f(cr, cr.vmap)(a, b), f(torch, tfunc.vmap)(to_torch(a), to_torch(b)))


def test_per_example_hessians_and_jacobians(rng):
    params, xs = _params(rng), rng.standard_normal((4, 3))

    def energy(lib, x):
        return (_mlp(lib, params if lib is cr else to_torch(params), x) ** 2).sum()

    ours = cr.vmap(cr.hessian(lambda x: energy(cr, x)))(xs)
    theirs = tfunc.vmap(tfunc.hessian(lambda x: energy(torch, x)))(to_torch(xs))
    same(ours, theirs)
    ours = cr.vmap(cr.jacrev(lambda x: _mlp(cr, params, x)))(xs)
    theirs = tfunc.vmap(tfunc.jacrev(lambda x: _mlp(torch, to_torch(params), x)))(to_torch(xs))
    same(ours, theirs)


def test_vmap_of_grad_of_grad(rng):
    xs = rng.standard_normal((5, 3))

    def curvature(lib, grad):
        return grad(lambda x: (grad(lambda u: (lib.tanh(u) ** 3).sum())(x) ** 2).sum())

    same(
        cr.vmap(curvature(cr, cr.grad))(xs), tfunc.vmap(curvature(torch, tfunc.grad))(to_torch(xs))
    )


def test_per_example_vjp_with_batched_cotangents(rng):
    params, xs, us = _params(rng), rng.standard_normal((6, 3)), rng.standard_normal((6, 2))

    def pulled(lib, vjp):
        def f(p, x, u):
            _, vjp_fn = vjp(lambda q: _mlp(lib, q, x), p)
            return vjp_fn(u)[0]

        return f

    ours = cr.vmap(pulled(cr, cr.vjp), in_axes=(None, 0, 0))(params, xs, us)
    theirs = tfunc.vmap(pulled(torch, tfunc.vjp), (None, 0, 0))(
        to_torch(params), to_torch(xs), to_torch(us)
    )
    same(ours, theirs)


def test_per_example_jvp_with_shared_and_batched_tangents(rng):
    params, xs, vs = _params(rng), rng.standard_normal((6, 3)), rng.standard_normal((6, 3))

    def pushed(lib, jvp):
        def f(x, v):
            return jvp(
                lambda u: _mlp(lib, params if lib is cr else to_torch(params), u), (x,), (v,)
            )

        return f

    for axes in ((0, 0), (0, None)):
        tangents = vs if axes[1] == 0 else vs[0]
        ours = cr.vmap(pushed(cr, cr.jvp), in_axes=axes)(xs, tangents)
        theirs = tfunc.vmap(pushed(torch, tfunc.jvp), axes)(to_torch(xs), to_torch(tangents))
        same(ours, theirs)
