"""Property-based tests of the engine (hypothesis).

For random shapes that broadcast together, random float32/float64 leaves and random
expressions over them: every leaf's gradient has the leaf's shape and dtype (through
``backward``, ``engine.grad`` and ``create_graph``); gradients are linear (the gradient of
a sum is the sum of the gradients, and ``.grad`` accumulation agrees); and accumulating
the gradients of 4 micro-batches of any sizes, each loss scaled by its share of the
batch, equals one backward pass over the full batch, before and after an optimizer step.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import chainrule as cr
from chainrule import engine, nn, optim
from chainrule.nn import functional as F

SETTINGS = settings(max_examples=30, deadline=None)
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # no NaN/Inf made anywhere

# Binary ops that broadcast. Leaves are in [0.5, 1.5] and the right operand is always a leaf,
# so no division by 0; logarithms, roots and powers get positive arguments.
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: (a * a + 0.5) ** b,  # the left side may be negative after "sub"
    "maximum": cr.maximum,
    "minimum": cr.minimum,
    "where": lambda a, b: cr.where(a.data > 1.0, a, b),
}
UNARY = {
    "identity": lambda x: x,
    "tanh": cr.tanh,
    "sigmoid": cr.sigmoid,
    "exp": lambda x: (-x).exp(),
    "log": lambda x: (x * x + 1.0).log(),
    "softmax": lambda x: cr.softmax(x, axis=-1) if x.ndim else x,
    "sqrt": lambda x: (x * x + 0.5).sqrt(),
}
REDUCE = {
    "sum": lambda y: y.sum(),
    "mean": lambda y: y.mean(),
    "max": lambda y: y.max(),
    "logsumexp": cr.logsumexp,
    "var-keepdims": lambda y: y.var(axis=-1, keepdims=True).sum() if y.ndim else y * 1.0,
}


@st.composite
def leaves_and_expression(draw, dtypes=(np.float32, np.float64)):
    """2–3 leaves of mutually broadcastable shapes and dtypes, and an expression over them."""
    count = draw(st.integers(2, 3))
    shapes = draw(
        mutually_broadcastable_shapes(num_shapes=count, min_dims=0, max_dims=3, max_side=3)
    ).input_shapes
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    leaf_dtypes = [draw(st.sampled_from(dtypes)) for _ in shapes]
    arrays = [rng.uniform(0.5, 1.5, s).astype(d) for s, d in zip(shapes, leaf_dtypes)]
    binaries = [draw(st.sampled_from(sorted(BINARY))) for _ in range(count - 1)]
    unary = draw(st.sampled_from(sorted(UNARY)))
    return arrays, binaries, unary


def build(leaves, binaries, unary):
    out = leaves[0]
    for name, leaf in zip(binaries, leaves[1:]):
        out = BINARY[name](out, leaf)
    return UNARY[unary](out)


def fresh(arrays):
    return [cr.tensor(a, requires_grad=True) for a in arrays]


# ------------------------------------------------------------------ shapes and dtypes
@SETTINGS
@given(
    case=leaves_and_expression(),
    reduce=st.sampled_from(sorted(REDUCE)),
    how=st.sampled_from(["backward", "seeded-backward", "engine.grad", "create_graph"]),
)
def test_every_leaf_gets_a_gradient_of_its_shape_and_dtype(case, reduce, how):
    arrays, binaries, unary = case
    xs = fresh(arrays)
    out = build(xs, binaries, unary)
    if how == "seeded-backward":
        out.backward(np.full(out.shape, 0.5))
        grads = [x.grad for x in xs]
    else:
        loss = REDUCE[reduce](out)
        if how == "backward":
            loss.backward()
            grads = [x.grad for x in xs]
        else:
            grads = engine.grad(loss, xs, create_graph=how == "create_graph")
    for x, g in zip(xs, grads):
        assert g is not None
        assert g.shape == x.shape, (g.shape, x.shape)
        assert g.dtype == x.dtype, (g.dtype, x.dtype)
        assert np.all(np.isfinite(g.data))


@SETTINGS
@given(
    shapes=mutually_broadcastable_shapes(signature="(m,k),(k,n)->(m,n)", max_dims=2, max_side=3),
    dtype_a=st.sampled_from([np.float32, np.float64]),
    dtype_b=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_batched_matmul_gradients_have_the_leaf_shapes(shapes, dtype_a, dtype_b, seed):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes.input_shapes
    a = cr.tensor(rng.standard_normal(a_shape).astype(dtype_a), requires_grad=True)
    b = cr.tensor(rng.standard_normal(b_shape).astype(dtype_b), requires_grad=True)
    out = a @ b
    assert out.shape == shapes.result_shape
    (out * out).sum().backward()
    assert a.grad.shape == a.shape and a.grad.dtype == a.dtype
    assert b.grad.shape == b.shape and b.grad.dtype == b.dtype
    # ∂/∂A Σ(AB)² = 2 (AB) Bᵀ, summed over A's broadcast batch axes: check the values too.
    a64, b64 = a.data.astype(np.float64), b.data.astype(np.float64)
    expected = 2 * (a64 @ b64) @ np.swapaxes(b64, -1, -2)
    expected = cr.engine.sum_to_shape(expected, a.shape)
    rtol = 1e-4 if np.float32 in (dtype_a, dtype_b) else 1e-10
    np.testing.assert_allclose(a.grad.data, expected, rtol=rtol, atol=rtol)


# ------------------------------------------------------------------ linearity
@SETTINGS
@given(
    f=leaves_and_expression(dtypes=(np.float64,)),
    g_ops=st.tuples(st.sampled_from(sorted(BINARY)), st.sampled_from(sorted(UNARY))),
    scale=st.floats(-3.0, 3.0, allow_nan=False),
)
def test_the_gradient_of_a_sum_is_the_sum_of_the_gradients(f, g_ops, scale):
    arrays, binaries, unary = f
    g_binaries = [g_ops[0]] * len(binaries)

    def f_of(xs):
        return build(xs, binaries, unary).sum()

    def g_of(xs):
        return build(xs, g_binaries, g_ops[1]).mean()

    xs = fresh(arrays)
    grad_f = engine.grad(f_of(xs), xs)
    grad_g = engine.grad(g_of(xs), xs)
    grad_sum = engine.grad(f_of(xs) + scale * g_of(xs), xs)
    for gf, gg, gs in zip(grad_f, grad_g, grad_sum):
        np.testing.assert_allclose(gs.data, gf.data + scale * gg.data, rtol=1e-12, atol=1e-12)
    # .grad accumulation over two backward passes is the same sum
    f_of(xs).backward()
    (scale * g_of(xs)).backward()
    for x, gs in zip(xs, grad_sum):
        np.testing.assert_allclose(x.grad.data, gs.data, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ micro-batches
@st.composite
def four_micro_batches(draw):
    """A batch of 4–20 rows cut into 4 non-empty micro-batches of random sizes."""
    size = draw(st.integers(4, 20))
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), min_size=3, max_size=3)))
    return size, [0, *cuts, size]


def _mlp(seed, in_features, out_features):
    cr.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(in_features, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(),
        nn.Linear(4, out_features),
    ).astype(np.float64)  # fmt: skip


@SETTINGS
@given(
    batch=four_micro_batches(),
    task=st.sampled_from(["regression", "classification"]),
    seed=st.integers(0, 2**16),
    make_optimizer=st.sampled_from(
        [
            lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
            lambda ps: optim.Adam(ps, lr=0.01),
            lambda ps: optim.AdamW(ps, lr=0.01),
        ]
    ),
)
def test_accumulating_four_micro_batches_equals_one_full_batch(batch, task, seed, make_optimizer):
    size, bounds = batch
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, 3))
    if task == "regression":
        y = rng.standard_normal((size, 2))
        loss_fn, outputs = F.mse_loss, 2
    else:
        y = rng.integers(0, 3, size)
        loss_fn, outputs = F.cross_entropy, 3

    full = _mlp(seed, 3, outputs)
    loss_fn(full(cr.tensor(x)), y).backward()

    micro = _mlp(seed, 3, outputs)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        share = (stop - start) / size  # a mean over the micro-batch, weighted by its size
        (loss_fn(micro(cr.tensor(x[start:stop])), y[start:stop]) * share).backward()

    for (name, p), q in zip(full.named_parameters(), micro.parameters()):
        np.testing.assert_allclose(q.grad.data, p.grad.data, rtol=1e-10, atol=1e-12,
                                   err_msg=name)  # fmt: skip
    opt_full = make_optimizer(full.parameters())
    opt_micro = make_optimizer(micro.parameters())
    opt_full.step()
    opt_micro.step()
    for (name, p), q in zip(full.named_parameters(), micro.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-10, atol=1e-12, err_msg=name)


@st.composite
def random_dags(draw):
    """A program of 3-25 steps over leaves x, y, z: each step combines two earlier values
    (often the same one twice, so nodes have several consumers and x*x-style edges)."""
    steps = draw(st.integers(3, 25))
    program = []
    for k in range(steps):
        available = 3 + k
        i = draw(st.integers(0, available - 1))
        j = draw(st.one_of(st.just(i), st.integers(0, available - 1)))
        program.append((draw(st.sampled_from(["add", "mul", "sub", "tanh_mul", "mean"])), i, j))
    outputs = draw(st.lists(st.integers(0, 3 + steps - 1), min_size=1, max_size=3))
    return program, outputs


def _run_dag(program, outputs, x, y, z):
    values = [x, y, z]
    for op, i, j in program:
        a, b = values[i], values[j]
        if op == "add":
            values.append(a + b)
        elif op == "mul":
            values.append((a * b).tanh())  # tanh keeps long products bounded
        elif op == "sub":
            values.append(a - b * 0.5)
        elif op == "tanh_mul":
            values.append(a.tanh() * b)
        else:
            values.append(a * b.mean())
    total = values[outputs[0]].sum()
    for k in outputs[1:]:
        total = total + (values[k] * values[k]).sum()
    return total


@SETTINGS
@given(dag=random_dags(), seed=st.integers(0, 2**16))
def test_random_dags_agree_with_finite_differences_and_across_entry_points(dag, seed):
    """The walk on random graphs with shared nodes: gradcheck holds, and backward,
    engine.grad and a retained second backward give the same gradients."""
    program, outputs = dag
    rng = np.random.default_rng(seed)
    leaves = [cr.tensor(rng.uniform(-1, 1, shape), requires_grad=True) for shape in
              [(3,), (2, 3), (1,)]]  # fmt: skip

    def f(x, y, z):
        return _run_dag(program, outputs, x, y, z)

    assert cr.gradcheck(f, tuple(leaves))
    loss = f(*leaves)
    returned = engine.grad(loss, leaves, retain_graph=True)
    loss.backward(retain_graph=True)
    once = [leaf.grad.data.copy() if leaf.grad is not None else None for leaf in leaves]
    loss.backward()
    for leaf, g, first in zip(leaves, returned, once):
        if first is None:  # the program never used this leaf
            assert leaf.grad is None and not np.any(g.data)
            continue
        np.testing.assert_array_equal(g.data, first)
        np.testing.assert_array_equal(leaf.grad.data, first + first)
