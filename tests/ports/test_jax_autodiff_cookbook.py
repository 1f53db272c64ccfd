"""Ports of the snippets of JAX's "The Autodiff Cookbook".

Source: Alex Wiltschko, Matthew Johnson et al., "The Autodiff Cookbook", JAX documentation,
https://docs.jax.dev/en/latest/notebooks/autodiff_cookbook.html: the logistic-regression
``loss(W, b)`` with ``grad(loss, argnums)``, ``value_and_grad``, the finite-difference check,
Hessian-vector products (reverse-over-reverse ``grad(lambda x: vdot(grad(f)(x), v))``,
forward-over-reverse ``jvp(grad(f), ...)``, reverse-over-forward), ``jacfwd``/``jacrev``
Jacobians, ``hessian = jacfwd(jacrev(f))``, ``vjp``/``jvp``, and per-example gradients
(``vmap(grad(loss), in_axes=(None, 0, 0))``).

Edits, and why:

- ``jnp.`` becomes ``cr.`` (``jnp.dot`` → ``cr.dot``, ``jnp.vdot`` → ``cr.dot`` of vectors);
  ``random.normal(key, ...)`` becomes a seeded NumPy draw in float64.
- ``jacfwd`` (planned) becomes ``cr.jacobian``, which is reverse mode: same values.
- The cookbook's ``hessian(f) = jacfwd(jacrev(f))`` of the vector-valued ``predict`` is
  ``cr.jacobian(cr.jacobian(f))``; ``cr.hessian`` takes scalar functions only (a clear
  ``ValueError`` otherwise).
- ``vmap`` (planned) becomes a Python loop over the examples, stacked.

References: the same snippets on ``torch.func`` (``grad``, ``grad_and_value``, ``jacrev``,
``jacfwd``, ``jvp``, ``vjp``, ``vmap``), in float64, at rtol 1e-12 (only elementwise
``tanh``/``log`` and three-term dot products differ, in the last bits).
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
tf = torch.func

RTOL = 1e-12

INPUTS = np.array(
    [[0.52, 1.12, 0.77], [0.88, -1.08, 0.15], [0.52, 0.06, -1.30], [0.74, -2.49, 1.39]]
)
TARGETS = np.array([True, True, False, True])


# ------------------------------------------------------------ the cookbook, on chainrule
def sigmoid(x):
    return 0.5 * (cr.tanh(x / 2) + 1)


def predict(W, b, inputs):
    return sigmoid(cr.dot(inputs, W) + b)


def loss(W, b):
    preds = predict(W, b, INPUTS)
    label_probs = preds * TARGETS + (1 - preds) * (1 - TARGETS)
    return -cr.sum(cr.log(label_probs))


# ------------------------------------------------------------- the same, on torch.func
T_INPUTS, T_TARGETS = torch.from_numpy(INPUTS), torch.from_numpy(TARGETS).double()


def t_predict(W, b, inputs):
    return 0.5 * (torch.tanh((inputs @ W + b) / 2) + 1)


def t_loss(W, b):
    preds = t_predict(W, b, T_INPUTS)
    label_probs = preds * T_TARGETS + (1 - preds) * (1 - T_TARGETS)
    return -torch.sum(torch.log(label_probs))


@pytest.fixture
def Wb():
    rng = np.random.default_rng(0)
    return rng.standard_normal(3), np.array(rng.standard_normal())


def _close(ours, theirs, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=rtol, atol=1e-14)


def test_grad_with_argnums_and_value_and_grad(Wb):
    W, b = Wb
    tW, tb = torch.from_numpy(W), torch.from_numpy(b)
    t_W_grad, t_b_grad = tf.grad(t_loss, argnums=(0, 1))(tW, tb)

    W_grad = cr.grad(loss, argnums=0)(W, b)
    _close(W_grad, t_W_grad)
    W_grad = cr.grad(loss, 0)(W, b)
    _close(W_grad, t_W_grad)
    W_grad = cr.grad(loss)(W, b)
    _close(W_grad, t_W_grad)
    b_grad = cr.grad(loss, 1)(W, b)
    _close(b_grad, t_b_grad)
    W_grad, b_grad = cr.grad(loss, (0, 1))(W, b)
    _close(W_grad, t_W_grad)
    _close(b_grad, t_b_grad)

    loss_value, Wb_grad = cr.value_and_grad(loss, (0, 1))(W, b)
    (t_W_grad2, t_b_grad2), t_value = tf.grad_and_value(t_loss, argnums=(0, 1))(tW, tb)
    _close(loss_value, t_value)
    _close(Wb_grad[0], t_W_grad2)
    _close(Wb_grad[1], t_b_grad2)

    # the cookbook's check of b_grad against a central difference
    eps = 1e-4
    b_grad_numerical = (loss(W, b + eps / 2.0) - loss(W, b - eps / 2.0)) / eps
    np.testing.assert_allclose(b_grad_numerical.item(), b_grad.item(), rtol=1e-7)


def test_grad_of_a_dict_of_parameters(Wb):
    """``grad(loss2)({'W': W, 'b': b})``: a dict of parameters is a pytree."""
    W, b = Wb

    def loss2(params_dict):
        preds = predict(params_dict["W"], params_dict["b"], INPUTS)
        label_probs = preds * TARGETS + (1 - preds) * (1 - TARGETS)
        return -cr.sum(cr.log(label_probs))

    params = {"W": W, "b": b}
    grads = cr.grad(loss2)(params)
    t_grads = tf.grad(lambda p: t_loss(p["W"], p["b"]))(
        {"W": torch.from_numpy(W), "b": torch.from_numpy(b)}
    )
    assert grads.keys() == t_grads.keys()
    for key in grads:
        _close(grads[key], t_grads[key])


def test_hessian_vector_products_three_ways(Wb):
    W, b = Wb
    v = np.random.default_rng(1).standard_normal(3)

    def f(W):
        return loss(W, b)

    def hvp_revrev(f, x, v):
        return cr.grad(lambda x: cr.dot(cr.grad(f)(x), v))(x)

    def hvp_fwdrev(f, primals, tangents):
        return cr.jvp(cr.grad(f), primals, tangents)[1]

    def hvp_revfwd(f, primals, tangents):
        g = lambda primals: cr.jvp(f, primals, tangents)[1]  # noqa: E731
        return cr.grad(g)(primals)

    tb = torch.from_numpy(b)
    tW, tv = torch.from_numpy(W), torch.from_numpy(v)
    t_hvp = tf.jvp(tf.grad(lambda W: t_loss(W, tb)), (tW,), (tv,))[1]
    _close(hvp_revrev(f, W, v), t_hvp)
    _close(hvp_fwdrev(f, (W,), (v,)), t_hvp)
    _close(hvp_revfwd(f, (W,), (v,))[0], t_hvp)
    _close(np.asarray(cr.hessian(f)(W)) @ v, t_hvp)


def test_grad_with_respect_to_a_tuple_is_a_pytree_not_misread():
    """The cookbook's ``grad(g)(primals)`` with ``primals = (x,)``, reduced to one line.

    It once read the tuple as ONE float32 array (np.asarray of the tuple at the default
    dtype) and returned a (1, n) float32 gradient; a tuple is a pytree: a tuple of float64
    gradients comes back (SPEC v0.2, "Transforms over structures").
    """
    W = np.array([0.1, 0.2, 0.3])
    (g,) = cr.grad(lambda p: (p[0] ** 2).sum())((W,))
    assert g.dtype == np.float64 and g.shape == (3,)
    np.testing.assert_array_equal(g.data, 2 * W)


def test_jacobians_and_the_hessian_of_a_vector_function(Wb):
    W, b = Wb
    tW, tb = torch.from_numpy(W), torch.from_numpy(b)

    def f(W):
        return predict(W, b, INPUTS)

    def t_f(W):
        return t_predict(W, tb, T_INPUTS)

    J = cr.jacobian(f)(W)  # jacfwd(f)(W) in the cookbook
    assert J.shape == (4, 3)
    _close(J, tf.jacfwd(t_f)(tW))
    J = cr.jacobian(f)(W)  # jacrev(f)(W)
    _close(J, tf.jacrev(t_f)(tW))

    def hessian(f):
        return cr.jacobian(cr.jacobian(f))  # jacfwd(jacrev(f))

    H = hessian(f)(W)
    assert H.shape == (4, 3, 3)
    _close(H, tf.jacfwd(tf.jacrev(t_f))(tW))


def test_vjp_and_jvp(Wb):
    W, b = Wb
    rng = np.random.default_rng(2)
    u, v = rng.standard_normal(4), rng.standard_normal(3)
    tW, tb = torch.from_numpy(W), torch.from_numpy(b)

    def f(W):
        return predict(W, b, INPUTS)

    def t_f(W):
        return t_predict(W, tb, T_INPUTS)

    y, vjp_fun = cr.vjp(f, W)
    (x_cotangent,) = vjp_fun(u)
    t_y, t_vjp_fun = tf.vjp(t_f, tW)
    _close(y, t_y)
    _close(x_cotangent, t_vjp_fun(torch.from_numpy(u))[0])

    y, y_tangent = cr.jvp(f, (W,), (v,))
    t_y, t_y_tangent = tf.jvp(t_f, (tW,), (torch.from_numpy(v),))
    _close(y, t_y)
    _close(y_tangent, t_y_tangent)


def test_per_example_gradients_by_a_loop(Wb):
    """``vmap(grad(loss), in_axes=(None, None, 0, 0))``, with a Python loop for the vmap."""
    W, b = Wb

    def example_loss(W, b, x, t):
        pred = predict(W, b, x)
        return -cr.log(pred * t + (1 - pred) * (1 - t))

    per_example = [cr.grad(example_loss, (0, 1))(W, b, x, t) for x, t in zip(INPUTS, TARGETS)]
    W_grads = np.stack([np.asarray(g[0]) for g in per_example])
    b_grads = np.stack([np.asarray(g[1]) for g in per_example])

    def t_example_loss(W, b, x, t):
        pred = t_predict(W, b, x)
        return -torch.log(pred * t + (1 - pred) * (1 - t))

    t_W_grads, t_b_grads = tf.vmap(tf.grad(t_example_loss, (0, 1)), in_dims=(None, None, 0, 0))(
        torch.from_numpy(W), torch.from_numpy(b), T_INPUTS, T_TARGETS
    )
    _close(W_grads, t_W_grads)
    _close(b_grads, t_b_grads)
    # and they add up to the batch gradient
    np.testing.assert_allclose(W_grads.sum(0), np.asarray(cr.grad(loss)(W, b)), rtol=RTOL)


def test_mixed_partials_through_closures(Wb):
    """∂²loss/∂b∂W by a transform of a closure over b, and the perturbation-confusion check.

    The second is Siskind and Pearlmutter's example (d/dx [x · d/dy (x + y)] = 1), which
    JAX's nesting by levels answers correctly; a tagless implementation answers 2.
    """
    W, b = Wb
    mixed = cr.jacobian(lambda b: cr.grad(lambda W: loss(W, b))(W))(b)
    t_mixed = tf.jacrev(lambda b: tf.grad(lambda W: t_loss(W, b))(torch.from_numpy(W)))(
        torch.from_numpy(b)
    )
    _close(mixed, t_mixed)
    # and the other order: ∂/∂W of ∂loss/∂b
    other = cr.grad(lambda W: cr.grad(lambda b: loss(W, b))(b))(W)
    np.testing.assert_allclose(np.asarray(other), np.asarray(mixed), rtol=1e-12)

    one = np.float64(1.0)
    assert cr.grad(lambda x: x * cr.grad(lambda y: x + y)(one))(one).item() == 1.0
