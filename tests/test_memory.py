"""Graph lifetime: saved arrays go after backward, the graph goes with its last reference,
all by reference counting (no cycle collector), and a training loop's memory stays flat."""

import contextlib
import tracemalloc
import weakref

import numpy as np

import chainrule as cr


def one_blas_thread():
    """Limit BLAS to one thread where threadpoolctl is available: on a small shared machine
    a multi-threaded 256×256 matmul can be ten times slower than a single-threaded one."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def make_graph(rng):
    x = cr.tensor(rng.standard_normal((8, 5)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    h = x @ w
    t = h.tanh()
    loss = (t**2).mean()
    return x, w, h, t, loss


def test_saved_arrays_are_released_by_backward(rng, no_cycle_collector):
    x, w, h, t, loss = make_graph(rng)
    saved_by_pow = weakref.ref(t.data)  # Pow saves its input: the tanh output
    saved_by_tanh = weakref.ref(t.data)  # ... which Tanh saves too, as its output
    del t, h
    assert saved_by_pow() is not None  # the graph keeps it for backward
    loss.backward()
    assert saved_by_pow() is None and saved_by_tanh() is None
    assert loss.grad_fn is not None  # the graph's structure itself lives on with loss


def test_retain_graph_keeps_saved_arrays(rng, no_cycle_collector):
    x, w, h, t, loss = make_graph(rng)
    saved = weakref.ref(t.data)
    del t, h
    loss.backward(retain_graph=True)
    assert saved() is not None
    loss.backward()
    assert saved() is None


def test_graph_is_freed_without_the_cycle_collector(rng, no_cycle_collector):
    x, w, h, t, loss = make_graph(rng)
    refs = [weakref.ref(obj) for obj in (loss, loss.grad_fn, h, h.grad_fn, t, t.data, h.data)]
    del h, t
    loss.backward()
    del loss
    assert all(ref() is None for ref in refs)
    assert x.grad is not None and w.grad is not None  # the leaves and their grads remain


def test_graph_is_freed_without_backward(rng, no_cycle_collector):
    x, w, h, t, loss = make_graph(rng)
    refs = [weakref.ref(obj) for obj in (loss, loss.grad_fn, h.grad_fn, t.data)]
    del h, t, loss
    assert all(ref() is None for ref in refs)


def test_retained_grad_does_not_keep_the_graph_alive(rng, no_cycle_collector):
    x, w, h, t, loss = make_graph(rng)
    h.retain_grad()
    loss.backward()
    node = weakref.ref(loss.grad_fn)
    h_ref = weakref.ref(h)
    del loss, t
    assert node() is None
    del h
    assert h_ref() is None


def test_engine_grad_frees_the_same_way(rng, no_cycle_collector):
    x, w, h, t, loss = make_graph(rng)
    refs = [weakref.ref(obj) for obj in (loss.grad_fn, t.data)]
    del h, t
    gx, gw = cr.engine.grad(loss, [x, w])
    del loss
    assert all(ref() is None for ref in refs)
    assert gx.shape == x.shape and gw.shape == w.shape


def test_deep_graph_is_freed_without_the_cycle_collector(no_cycle_collector):
    x = cr.tensor(np.ones(4), requires_grad=True)
    y = x
    for _ in range(5_000):
        y = (y * 1.0).tanh()
    first = weakref.ref(y.grad_fn)
    y.sum().backward()
    del y
    assert first() is None


def test_training_loop_memory_stays_flat(no_cycle_collector):
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((256, 256)).astype(np.float32), requires_grad=True)
    w = cr.tensor(rng.standard_normal((256, 256)).astype(np.float32) * 0.05, requires_grad=True)
    with one_blas_thread():
        after_100, after_1000 = traced_memory_of_training(x, w)
    growth = after_1000 - after_100
    assert growth < 1_000_000, f"traced memory grew by {growth} bytes from step 100 to 1000"
    assert x.grad.shape == (256, 256) and np.all(np.isfinite(w.grad.data))


def traced_memory_of_training(x, w):
    """Traced memory after step 100 and after step 1000 of a training-like loop."""
    tracemalloc.start()
    try:
        for step in range(1, 1001):
            loss = ((x @ w).tanh() ** 2).mean()
            loss.backward()
            if step == 100:
                after_100 = tracemalloc.get_traced_memory()[0]
        after_1000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after_100, after_1000
