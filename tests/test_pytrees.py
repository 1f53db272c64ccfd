"""Pytrees (chainrule.tree) and the transforms over them, with JAX's semantics: tuples,
lists, dicts (sorted keys) and None are containers, anything else a leaf; gradients come
back in their arguments' structures. torch.func, which takes pytrees too, is the oracle
(in test_pytrees_torch.py)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import chainrule as cr

Pair = namedtuple("Pair", ["w", "b"])


def _np(tree):
    return cr.tree_map(lambda t: np.asarray(t.data if isinstance(t, cr.Tensor) else t), tree)


def _close(a, b, tol=1e-10):
    leaves_a, def_a = cr.tree_flatten(_np(a))
    leaves_b, def_b = cr.tree_flatten(_np(b))
    assert def_a == def_b, (def_a, def_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


# ------------------------------------------------------------------ the tree functions
def test_flatten_round_trip_of_a_nested_tree():
    tree = {"b": [1.0, (2.0, None)], "a": np.ones(2), "c": {"z": 3, "y": Pair(4.0, 5.0)}}
    leaves, treedef = cr.tree_flatten(tree)
    # dict entries in sorted key order (as JAX), None has no leaves
    assert [np.asarray(x).tolist() for x in leaves] == [[1.0, 1.0], 1.0, 2.0, 4.0, 5.0, 3]
    rebuilt = cr.tree_unflatten(treedef, leaves)
    assert list(rebuilt) == ["a", "b", "c"] and rebuilt["b"][1][1] is None
    assert isinstance(rebuilt["c"]["y"], Pair) and rebuilt["c"]["y"].b == 5.0
    assert isinstance(rebuilt["b"], list) and isinstance(rebuilt["b"][1], tuple)
    assert cr.tree_flatten(rebuilt)[1] == treedef


def test_leaves_structures_and_printing():
    assert cr.tree_leaves(None) == [] and cr.tree_leaves(()) == []
    assert cr.tree_leaves(7.0) == [7.0]
    t = cr.tensor([1.0])
    assert cr.tree_leaves([t, (t,)])[1] is t
    _, a = cr.tree_flatten([(1.0, 2.0), {"x": 3.0}])
    _, b = cr.tree_flatten([(0.0, 0.0), {"x": 9.0}])
    _, c = cr.tree_flatten([[0.0, 0.0], {"x": 9.0}])
    assert a == b and a != c and hash(a) == hash(b)
    assert repr(a) == "PyTreeDef([(*, *), {'x': *}])"
    assert repr(cr.tree_flatten((1.0,))[1]) == "PyTreeDef((*,))"
    assert "Pair(w=*, b=*)" in repr(cr.tree_flatten(Pair(1, 2))[1])
    assert a.num_leaves == 3


def test_tree_map_over_several_trees():
    got = cr.tree_map(lambda x, y: x + 10 * y, {"a": 1, "b": (2, 3)}, {"b": (4, 5), "a": 6})
    assert got == {"a": 61, "b": (42, 53)}
    message = r"tree 1 of rest has .*\[\*, \*\].*first tree has .*\(\*, \*\)"
    with pytest.raises(ValueError, match=message):
        cr.tree_map(lambda x, y: x, (1, 2), [1, 2])


def test_unflatten_checks_the_number_of_leaves():
    _, treedef = cr.tree_flatten({"a": 1.0, "b": (2.0, 3.0)})
    with pytest.raises(ValueError, match=r"has 3 leaves, got 2"):
        cr.tree_unflatten(treedef, [1.0, 2.0])


def test_unsortable_dict_keys_are_named():
    with pytest.raises(TypeError, match="sortable"):
        cr.tree_flatten({1: 1.0, "a": 2.0})


# ------------------------------------------------------------------ transforms over pytrees
def _loss(params, x):
    out = x
    for w, b in params:
        out = cr.tanh(out @ w + b)
    return (out**2).sum()


def _params(rng, sizes=(3, 4, 2)):
    shapes = zip(sizes, sizes[1:])
    return [(rng.standard_normal((m, n)), rng.standard_normal(n)) for m, n in shapes]


def test_grad_of_a_list_of_weight_pairs_matches_each_leaf(rng):
    params = _params(rng)
    x = rng.standard_normal((5, 3))
    g = cr.grad(_loss)(params, x)
    assert isinstance(g, list) and all(isinstance(pair, tuple) for pair in g)
    for i in range(len(params)):
        for j in range(2):

            def one(leaf, i=i, j=j):
                p = [list(pair) for pair in params]
                p[i][j] = leaf
                return _loss(p, x)

            _close(g[i][j], cr.grad(one)(params[i][j]))


def test_a_list_of_numbers_is_a_pytree_of_numbers():
    g = cr.grad(lambda p: p[0] * p[1] ** 2)([3.0, 2.0])
    assert isinstance(g, list) and [float(v.item()) for v in g] == [4.0, 12.0]
    with pytest.raises(TypeError, match="floating"):
        cr.grad(lambda p: p[0] * 1.0)([np.array([1, 2])])


def test_value_and_grad_with_a_dict_and_tuple_argnums(rng):
    params = {"w": rng.standard_normal(3), "b": np.float64(0.5)}
    x = rng.standard_normal(3)

    def f(p, x):
        return (p["w"] * x).sum() + p["b"] * (x**2).sum()

    value, (gp, gx) = cr.value_and_grad(f, argnums=(0, 1))(params, x)
    np.testing.assert_allclose(value.item(), f(params, x))
    assert set(gp) == {"b", "w"}
    _close(gp, {"w": x, "b": (x**2).sum()})
    _close(gx, params["w"] + 2 * params["b"] * x)


def test_none_and_empty_subtrees_have_no_inputs():
    g = cr.grad(lambda p: p["x"] ** 2)({"x": 3.0, "skip": None})
    assert g["skip"] is None and g["x"].item() == 6.0


def test_vjp_with_pytree_primals_and_outputs(rng):
    a, b = rng.standard_normal(3), rng.standard_normal((2, 3))

    def f(p):
        return {"s": (p[0] * p[0]).sum(), "v": p[1] @ p[0]}

    out, vjp_fn = cr.vjp(f, (a, b))
    assert set(out) == {"s", "v"}
    u = {"s": 2.0, "v": np.array([1.0, -1.0])}
    (g,) = vjp_fn(u)
    _close(g, (2.0 * 2 * a + b.T @ u["v"], np.outer(u["v"], a)))
    with pytest.raises(ValueError, match=r"cotangent has structure .*\[\*, \*\].*expected .*'s'"):
        vjp_fn([2.0, np.ones(2)])
    with pytest.raises(ValueError, match=r"cotangent of shape \(3,\), expected \(2,\)"):
        vjp_fn({"s": 1.0, "v": np.ones(3)})


def test_jvp_with_pytree_primals_and_tangents(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)

    def f(p):
        return (p["a"] * p["b"], (p["a"] ** 2).sum())

    va, vb = rng.standard_normal(3), rng.standard_normal(3)
    out, tangent = cr.jvp(f, ({"a": a, "b": b},), ({"a": va, "b": vb},))
    assert isinstance(out, tuple) and isinstance(tangent, tuple)
    _close(out, (a * b, (a**2).sum()))
    _close(tangent, (va * b + a * vb, 2 * (a * va).sum()))
    with pytest.raises(ValueError, match=r"tangent 0 has structure .*\(\*, \*\).*expected .*\{"):
        cr.jvp(f, ({"a": a, "b": b},), ((va, vb),))
    with pytest.raises(ValueError, match=r"tangent 0 of shape \(2,\), expected \(3,\)"):
        cr.jvp(f, ({"a": a, "b": b},), ({"a": va[:2], "b": vb},))


def test_jacobian_nests_output_structure_outside_input_structure_inside(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(2)

    def f(p):
        return {"u": p[0] * 2.0, "v": cr.outer(p[1], p[0])}

    jac = cr.jacrev(f)([x, y])
    assert set(jac) == {"u", "v"} and isinstance(jac["u"], list)
    _close(jac["u"], [2.0 * np.eye(3), np.zeros((3, 2))])
    assert jac["v"][0].shape == (2, 3, 3) and jac["v"][1].shape == (2, 3, 2)
    _close(jac["v"][0], np.einsum("i,jk->ijk", y, np.eye(3)))
    # tuple argnums: a tuple over the arguments between the two structures
    j2 = cr.jacobian(lambda p, q: {"o": p["a"] * q}, argnums=(0, 1))({"a": x}, np.float64(2.0))
    assert isinstance(j2["o"], tuple) and set(j2["o"][0]) == {"a"}
    _close(j2["o"][1], x)


def test_hessian_of_a_pytree_nests_its_structure_twice(rng):
    a, b = rng.standard_normal(2), rng.standard_normal(3)

    def f(p):
        return (p[0] ** 2).sum() * (p[1] ** 3).sum()

    h = cr.hessian(f)((a, b))
    assert isinstance(h, tuple) and isinstance(h[0], tuple)
    assert h[0][1].shape == (2, 3) and h[1][0].shape == (3, 2)
    s2, s3 = (a**2).sum(), (b**3).sum()
    _close(h[0][0], 2 * s3 * np.eye(2))
    _close(h[0][1], np.outer(2 * a, 3 * b**2))
    _close(h[1][0], np.outer(3 * b**2, 2 * a))
    _close(h[1][1], np.diag(6 * b) * s2)


def test_grad_of_grad_with_a_dict_of_params():
    def f(p, x):
        return p["w"] ** 2 * x**3 + p["c"] * x

    def dfdx(p):
        return cr.grad(f, argnums=1)(p, 2.0)  # 2 w x^3... = 3 w^2 x^2 + c

    g = cr.grad(dfdx)({"w": 1.5, "c": 0.5})
    _close(g, {"c": 1.0, "w": 2 * 1.5 * 3 * 4.0})


# ------------------------------------------------------------------ has_aux
def test_has_aux_orders_results_as_jax(rng):
    x = rng.standard_normal(3)
    marker = object()

    def f(x):
        return (x**2).sum(), {"tag": marker, "n": 3}

    g, aux = cr.grad(f, has_aux=True)(x)
    assert aux["tag"] is marker
    _close(g, 2 * x)
    (value, aux), g = cr.value_and_grad(f, has_aux=True)(x)
    assert aux["n"] == 3 and np.isclose(value.item(), (x**2).sum())
    jac, aux = cr.jacobian(lambda x: (x * 3.0, "side"), has_aux=True)(x)
    assert aux == "side"
    _close(jac, 3.0 * np.eye(3))


def test_has_aux_needs_a_pair():
    with pytest.raises(TypeError, match=r"grad\(has_aux=True\).*pair.*got a Tensor"):
        cr.grad(lambda x: x * x, has_aux=True)(1.0)
    with pytest.raises(TypeError, match=r"jacobian\(has_aux=True\).*got a tuple of length 3"):
        cr.jacobian(lambda x: (x, 1, 2), has_aux=True)(1.0)
    with pytest.raises(TypeError, match="use has_aux=True"):
        cr.grad(lambda x: (x * x, 1.0))(1.0)


def test_jacrev_is_jacobian():
    assert cr.jacrev is cr.jacobian
    assert "jacrev" in cr.functional.__all__ and "jacrev" in cr.__all__


# ------------------------------------------------------------------ optimizers take grads
def test_a_functional_training_loop_needs_no_glue(rng):
    sizes = (2, 8, 1)
    params = [
        (cr.tensor(rng.standard_normal((m, n)) * 0.5, requires_grad=True), cr.zeros(n))
        for m, n in zip(sizes, sizes[1:])
    ]
    for _, b in params:
        b.requires_grad_()
    x = rng.standard_normal((32, 2))
    y = np.sin(x[:, :1] + x[:, 1:])

    def loss(params):
        out = x
        for i, (w, b) in enumerate(params):
            out = out @ w + b
            if i < len(params) - 1:
                out = cr.tanh(out)
        return ((out - y) ** 2).mean()

    optimizer = cr.optim.SGD(cr.tree_leaves(params), lr=0.2)
    first = loss(params).item()
    for _ in range(200):
        grads = cr.grad(loss)(params)
        optimizer.step(grads=grads)
    assert loss(params).item() < 0.2 * first
    # the parameters are updated in place and keep their structure
    assert isinstance(params[0], tuple) and params[0][0].requires_grad
    _close(params[1][1].grad, grads[1][1])


def test_optimizer_grads_are_checked_before_anything_is_assigned():
    w, b = cr.zeros(2, 3).requires_grad_(), cr.zeros(3).requires_grad_()
    optimizer = cr.optim.SGD([(w, b)], lr=1.0)  # built from a nested pytree
    message = r"structure PyTreeDef\(\[\*\]\) \(1 leaves\).*\[\(\*, \*\)\]"
    with pytest.raises(ValueError, match=message):
        optimizer.step(grads=[np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"leaf 1 of grads has shape \(2,\).*shape \(3,\)"):
        optimizer.step(grads=[(np.ones((2, 3)), np.ones(2))])
    with pytest.raises(ValueError, match=r"structure PyTreeDef\(\(\[\*, \*\],\)\)"):
        optimizer.step(grads=([np.ones((2, 3)), np.ones(3)],))
    assert w.grad is None and b.grad is None
    optimizer.step(grads=[np.ones((2, 3)), np.ones(3)])  # a flat list in parameter order
    np.testing.assert_array_equal(b.data, -np.ones(3))
