"""No leaks, no limits.

``tests/test_memory.py`` covers a two-op graph: saved arrays released by backward, the
graph freed by reference counting alone, and a flat 1,000-step loop of raw ops;
``tests/test_engine.py`` backpropagates a 100,000-op chain of one op. Here, always with the
cycle collector off: the graph of an ``nn`` model with every kind of layer, second-order
graphs, Hessians, failed backward passes and anomaly mode; a 1,000-step training loop of an
``nn`` MLP with an optimizer and a scheduler, flat in traced memory and in live objects; and
a 100,000-op chain of mixed ops, through ``backward`` and ``engine.grad``.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine, nn, optim
from chainrule import function as function_module
from chainrule.nn import functional as F

# only reference counting may free anything in these tests (the fixture: tests/conftest.py)
pytestmark = pytest.mark.usefixtures("no_cycle_collector")


def graph_nodes(output: cr.Tensor) -> list[cr.Context]:
    """Every recorded node behind ``output``."""
    nodes, stack, seen = [], [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if isinstance(node, cr.Context) and id(node) not in seen:
            seen.add(id(node))
            nodes.append(node)
            stack.extend(node.parents)
    return nodes


def saved_intermediates(nodes, owned) -> list[weakref.ref]:
    """Weak references to the saved arrays that no live tensor owns (the graph's own)."""
    owned_ids = {id(a) for a in owned}
    refs = []
    for node in nodes:
        for value in node._saved or ():
            if isinstance(value, np.ndarray) and id(value) not in owned_ids:
                refs.append(weakref.ref(value))
    return refs


def cnn():
    cr.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
        nn.AvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 6), nn.Tanh(),
        nn.Linear(6, 3), nn.Sigmoid(),
    )  # fmt: skip


def live(refs) -> int:
    return sum(ref() is not None for ref in refs)


# ------------------------------------------------------------------ graphs are freed
def test_an_nn_graph_is_freed_by_backward_and_del():
    model = cnn()
    x = cr.randn(4, 1, 4, 4)
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 0])) + F.mse_loss(
        model(x), np.zeros((4, 3), dtype=np.float32)
    )
    nodes = graph_nodes(loss)
    owned = [x.data] + [t.data for t in model.parameters()] + [t.data for t in model.buffers()]
    saved = saved_intermediates(nodes, owned)
    node_refs = [weakref.ref(node) for node in nodes]
    assert len(node_refs) > 30 and len(saved) > 10
    del nodes
    loss.backward()
    assert live(saved) == 0, "saved arrays outlive backward"
    del loss
    assert live(node_refs) == 0, "graph nodes outlive the last reference"
    assert all(p.grad is not None and p.grad.grad_fn is None for p in model.parameters())


def test_a_second_order_graph_is_freed():
    w = cr.tensor(np.random.default_rng(0).standard_normal((3, 3)), requires_grad=True)
    y = (w.tanh() @ w).softmax(axis=1).logsumexp()
    (g,) = engine.grad(y, [w], create_graph=True)
    penalty = (g * g).sum()
    refs = [weakref.ref(node) for node in graph_nodes(penalty) + graph_nodes(y)]
    penalty.backward()
    del y, g, penalty
    assert live(refs) == 0
    assert w.grad.grad_fn is None  # a plain backward leaves a constant gradient


def test_create_graph_gradients_in_dot_grad_free_with_the_leaf():
    w = cr.tensor(np.array([0.5, -1.0]), requires_grad=True)
    (w.exp() * w).sum().backward(create_graph=True)
    refs = [weakref.ref(node) for node in graph_nodes(w.grad)]
    assert refs  # .grad holds a graph under create_graph, as in PyTorch
    w.grad = None
    assert live(refs) == 0


@pytest.mark.parametrize(
    "transform",
    [
        lambda f, x: cr.hessian(f)(x),
        lambda f, x: cr.jacobian(cr.grad(f))(x),
        lambda f, x: cr.value_and_grad(f)(x),
        lambda f, x: cr.vjp(f, x)[1](1.0),
    ],
    ids=["hessian", "jacobian-of-grad", "value_and_grad", "vjp"],
)
def test_functional_transforms_leave_no_graph_behind(transform):
    x = cr.tensor(np.array([0.3, -0.7, 1.1]), requires_grad=True)
    made = []
    original = function_module._new_context  # Function.apply makes every node with it

    def track(cls):
        node = original(cls)
        made.append(weakref.ref(node))
        return node

    function_module._new_context = track
    try:
        result = transform(lambda t: (t.tanh() ** 3).sum(), x)
    finally:
        function_module._new_context = original
    del result
    assert made and live(made) == 0


def test_retain_graph_frees_with_the_last_reference():
    x = cr.tensor(np.ones(3), requires_grad=True)
    y = (x.exp() * x).sum()
    refs = [weakref.ref(node) for node in graph_nodes(y)]
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    del y
    assert live(refs) == 0


def test_a_failed_backward_frees_the_graph():
    class Boom(cr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2.0

        @staticmethod
        def backward(ctx, grad_out):
            raise ValueError("boom")

    x = cr.tensor(np.ones(3), requires_grad=True)
    y = Boom.apply(x.exp()).sum()
    refs = [weakref.ref(node) for node in graph_nodes(y)]
    with pytest.raises(ValueError, match="boom"):
        y.backward()
    del y
    assert live(refs) == 0  # the traceback does not pin the graph once handled


def test_anomaly_mode_keeps_no_extra_references():
    x = cr.tensor(np.ones(3), requires_grad=True)
    with cr.detect_anomaly():
        y = (x.exp() * x).tanh().sum()
        refs = [weakref.ref(node) for node in graph_nodes(y)]
        y.backward()
    del y
    assert live(refs) == 0


def test_an_optimizer_step_keeps_no_graph_alive():
    model = cnn()
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(cr.randn(4, 1, 4, 4)), np.array([0, 1, 2, 0]))
    refs = [weakref.ref(node) for node in graph_nodes(loss)]
    loss.backward()
    opt.step()
    del loss
    assert live(refs) == 0


# ------------------------------------------------------------------ a training loop stays flat
def count_live(kind: type | None = None) -> int:
    """Objects the collector tracks (of ``kind``); freed ones and free lists do not count."""
    objects = gc.get_objects()
    if kind is None:
        return len(objects)
    # type(), not isinstance(): some objects' __class__ properties warn when touched
    return sum(issubclass(type(o), kind) for o in objects)


def test_a_1000_step_training_loop_keeps_memory_flat():
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 4)
    )
    opt = optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16)).astype(np.float32)
    y = rng.integers(0, 4, 64)
    traced, objects, nodes, tensors = {}, {}, {}, {}
    tracemalloc.start()
    try:
        for step in range(1, 1001):
            opt.zero_grad()
            loss = F.cross_entropy(model(cr.tensor(x)), y)
            loss.backward()
            opt.step()
            if step % 100 == 0:
                scheduler.step()
            if step in (500, 1000):
                traced[step] = tracemalloc.get_traced_memory()[0]
                objects[step] = count_live()
                nodes[step] = count_live(cr.Context)
                tensors[step] = count_live(cr.Tensor)
    finally:
        tracemalloc.stop()
    # Exact: nothing survives its step (the live nodes and tensors are this step's graph).
    assert nodes[1000] == nodes[500] and tensors[1000] == tensors[500]
    assert objects[1000] == objects[500]
    # Traced memory also counts NumPy's cache of small freed buffers and CPython's free
    # lists, which fill up (boundedly, by ~50 kB here) over the first ~1,000 steps; one
    # leaked (64, 32) activation per step would add 4 MB over these 500 steps.
    growth = traced[1000] - traced[500]
    assert growth < 200_000, f"traced memory grew by {growth} bytes over the last 500 steps"
    assert loss.item() < 1.0  # it did train


# ------------------------------------------------------------------ no depth limit
def mixed_chain(x: cr.Tensor, length: int) -> cr.Tensor:
    """``length`` ops cycling through four kinds: elementwise, shape and indexing."""
    y = x
    for _ in range(length // 4):
        y = (y * 1.0 + 0.0).reshape(2, 1)[:, 0]
    return y


def test_a_chain_of_100000_mixed_ops_backpropagates_and_frees():
    x = cr.tensor(np.array([0.5, -0.25]), requires_grad=True)
    y = mixed_chain(x, 100_000)
    node = weakref.ref(y.grad_fn)
    (y * np.array([2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 3.0])
    del y
    assert node() is None


def test_engine_grad_through_100000_ops():
    x = cr.tensor(np.array([0.5, -0.25]), requires_grad=True)
    y = mixed_chain(x, 100_000).tanh().sum()
    (g,) = engine.grad(y, [x])
    np.testing.assert_allclose(g.data, 1 - np.tanh(x.data) ** 2, rtol=1e-12)


def test_a_sum_of_100000_terms_backpropagates():
    """A wide graph: one leaf used 100,000 times (fan-out), accumulated in one walk."""
    x = cr.tensor(np.array(1.5), requires_grad=True)
    total = x * 0.0
    for _ in range(100_000):
        total = total + x
    total.backward()
    assert x.grad.item() == 100_000.0
