"""``cr.compile``: the compiled program equals the eager run to the last bit (every op of
the op table, first and second order, float64 and float32; custom Functions; MLP and CNN
training), with its temporaries fresh or written into its workspace through ``out=``,
never hands out an array twice nor one of its buffers, runs concurrent and re-entrant
calls on their own workspaces, retraces on new signatures, and refuses what it cannot
replay with an error that names the cause."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule import engine
from chainrule.compiled import buffers
from chainrule.tree import tree_leaves
from op_specs import OP_SPECS, spec_id
from toys import Cube, SinRawNumpy  # differentiable twice; once (a raw NumPy backward)

DIFFERENTIABLE = [s for s in OP_SPECS if s.differentiable]
FORWARD_ONLY = [s for s in OP_SPECS if not s.differentiable]


def buffer_every_temporary(monkeypatch):
    """Every temporary array of a program written into its workspace through ``out=``,
    nested ones too (by default only lines' values of 64 KiB or more are)."""
    monkeypatch.setattr(buffers, "MIN_BYTES", 1)
    monkeypatch.setattr(buffers, "NESTED", True)


@pytest.fixture(params=["large", "all"], ids=["large-buffered", "all-buffered"])
def temporaries(request, monkeypatch):
    """Run a test with the workspace as it is (none at these sizes) and with every
    temporary in it."""
    if request.param == "all":
        buffer_every_temporary(monkeypatch)
    return request.param


def workspaces(compiled):
    """The buffers of every instance of the latest program that is free now."""
    run = compiled._latest.run
    free = run.free if isinstance(run, buffers.Instances) else []
    return [b for instance in free for b in instance.__globals__["_b"]]


def assert_identical(compiled, eager, what=""):
    """Same structure, and each leaf the same dtype, shape and bits (NaN where NaN)."""
    got, expected = tree_leaves(compiled), tree_leaves(eager)
    assert len(got) == len(expected), what
    for index, (a, b) in enumerate(zip(got, expected)):
        assert type(a) is type(b), f"{what} leaf {index}: {type(a)} != {type(b)}"
        a = a.data if isinstance(a, cr.Tensor) else a
        b = b.data if isinstance(b, cr.Tensor) else b
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what} leaf {index}"
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), f"{what} leaf {index}"


def check_compiled(f, *calls):
    """Compile f, call it with each argument tuple in turn (the first traces), and compare
    each result with f's eager result on the same arguments."""
    compiled = cr.compile(f)
    for number, args in enumerate(calls):
        assert_identical(compiled(*args), f(*args), f"call {number}")
    return compiled


def _vjp_of(spec):
    def value_and_vjp(xs, u):
        out, pullback = cr.vjp(spec.fn, *xs)
        return out, pullback(u)

    return value_and_vjp


def _two_draws(spec, rng, dtype):
    first = [x.astype(dtype) for x in spec.inputs(rng)]
    second = [x.astype(dtype) for x in spec.inputs(rng)]
    return first, second


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_first_order_is_the_eager_result(spec, dtype, rng, temporaries):
    first, second = _two_draws(spec, rng, dtype)
    shape = spec.fn(*[cr.tensor(x) for x in first]).shape
    out_dtype = spec.fn(*[cr.tensor(x) for x in first]).dtype
    u1, u2 = (rng.standard_normal(shape).astype(out_dtype) for _ in range(2))
    check_compiled(_vjp_of(spec), (first, u1), (second, u2))


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_second_order_is_the_eager_result(spec, rng, temporaries):
    first, second = _two_draws(spec, rng, np.float64)
    shape = spec.fn(*[cr.tensor(x) for x in first]).shape
    u1, u2 = rng.standard_normal(shape), rng.standard_normal(shape)
    v1 = [rng.standard_normal(x.shape) for x in first]
    v2 = [rng.standard_normal(x.shape) for x in first]

    def directional(xs, u, vs):
        # <Jᵀu, v> differentiated with respect to the inputs (the second derivative) and
        # to u (J v: the backward's own backward, which reads what forward kept, such as
        # max-pooling's winners, with a cotangent that is not zero)
        def inner(*ys_and_u):
            *ys, w = ys_and_u
            _, pullback = cr.vjp(spec.fn, *ys)
            return sum((g * v).sum() for g, v in zip(pullback(w), vs))

        return cr.grad(inner, argnums=tuple(range(len(xs) + 1)))(*xs, u)

    check_compiled(directional, (first, u1, v1), (second, u2, v2))


@pytest.mark.parametrize("spec", FORWARD_ONLY, ids=spec_id)
def test_forward_only_ops(spec, rng, temporaries):
    first, second = _two_draws(spec, rng, np.float64)
    check_compiled(lambda xs: spec.fn(*map(cr.as_tensor, xs)), (first,), (second,))


# ---------------------------------------------------------------------- custom Functions
def test_custom_functions_first_and_second_order(rng, temporaries):
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))

    def loss(x):
        return (Cube.apply(x) * SinRawNumpy.apply(x)).sum()

    check_compiled(cr.value_and_grad(loss), (x1,), (x2,))
    cubic = cr.grad(lambda x: Cube.apply(x).sum())
    check_compiled(cr.grad(lambda x: (cubic(x) * x).sum()), (x1,), (x2,))


def test_the_other_transforms_compile_to_the_eager_result(rng, temporaries):
    w = cr.tensor(rng.standard_normal((3, 3)))
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    check_compiled(cr.jacobian(lambda v: cr.tanh(w @ v)), (x,), (y,))  # batched walk
    check_compiled(cr.hessian(lambda v: (cr.tanh(v) ** 3).sum()), (x,), (y,))
    check_compiled(cr.jacfwd(lambda v: cr.sin(v) * v), (x,), (y,))
    check_compiled(lambda v, t: cr.jvp(lambda u: cr.sin(u) * u, (v,), (t,)), (x, y), (y, x))

    def two_outputs(v, u):
        return cr.vjp(lambda a: (a * 2, a.sum()), v)[1]((u, np.array(1.0)))

    check_compiled(two_outputs, (x, y), (y, x))


def test_a_function_reads_cached_constants_by_reference(rng):
    w = rng.standard_normal((4, 2))
    f = cr.compile(lambda x: x @ w)
    x = rng.standard_normal((3, 4))
    f(x)
    w *= 2  # an in-place update of a closed-over array: the next call sees it
    assert_identical(f(x), cr.tensor(x) @ cr.tensor(w))


def test_a_closed_over_tensor_given_a_new_array_retraces(rng):
    w = cr.tensor(rng.standard_normal((4, 2)))
    f = cr.compile(lambda x: x @ w)
    x = rng.standard_normal((3, 4))
    f(x)
    w.data -= 1.0  # written in place: the same array, seen by the program
    assert_identical(f(x), cr.tensor(x) @ w) and f.traces == 1
    w.data = w.data * 2  # a new array: the program would read the old one, so it retraces
    assert_identical(f(x), cr.tensor(x) @ w)
    assert f.traces == 2


# ---------------------------------------------------------------------- training
def _train(model, step, xs, ys, lr=0.05):
    """20 SGD steps: (loss, gradients) from ``step``, the update done in NumPy, in place."""
    params = list(model.parameters())
    losses = []
    for x, y in zip(xs, ys):
        loss, grads = step(x, y)
        for p, g in zip(params, grads):
            p.data -= lr * g.data
        losses.append(loss.data.copy())
    return losses, [p.data.copy() for p in params]


def _training_matches(make_model, xs, ys):
    eager_model, compiled_model = make_model(), make_model()
    loss_fn = cr.nn.CrossEntropyLoss()

    def stepper(model):
        params = list(model.parameters())

        def step(x, y):
            loss = loss_fn(model(x), y)
            return loss.detach(), engine.grad(loss, params)

        return step

    compiled = cr.compile(stepper(compiled_model))
    eager = _train(eager_model, stepper(eager_model), xs, ys)
    ours = _train(compiled_model, compiled, xs, ys)
    assert compiled.traces == 1
    for a, b in zip(ours[0] + ours[1], eager[0] + eager[1]):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert ours[0][-1] < ours[0][0]  # it learned something


def test_twenty_sgd_steps_of_an_mlp_equal_eager(rng, temporaries):
    xs = [rng.standard_normal((16, 5)).astype(np.float32)] * 20  # one batch, learned
    ys = [rng.integers(0, 3, 16)] * 20

    def make():
        cr.manual_seed(0)
        return cr.models.mlp(5, (8, 6), 3, activation="tanh", flatten=False)

    _training_matches(make, xs, ys)


def test_twenty_sgd_steps_of_a_cnn_equal_eager(rng, temporaries):
    xs = [rng.standard_normal((4, 1, 8, 8)).astype(np.float32)] * 20
    ys = [rng.integers(0, 3, 4)] * 20

    def make():
        cr.manual_seed(0)
        return cr.models.small_cnn(1, 3)

    _training_matches(make, xs, ys)


# ---------------------------------------------------------------------- buffers and cache
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from([(2, 3), (4, 3), (2, 3, 2), ()]), min_size=1, max_size=12),
    st.sampled_from([1, buffers.MIN_BYTES]),
)
def test_results_are_never_aliased_or_overwritten(shapes, min_bytes):
    rng = np.random.default_rng(len(shapes))

    def f(x, w):
        y = cr.tanh(x * w + 1.0)
        z = cr.exp(y * w)  # temporaries (into buffers) returned as views
        views = (z * 2.0).T, (z - 1.0).reshape(-1)[:1]
        return y, (y * y).sum(), cr.grad(lambda v: (cr.exp(v) * w).sum())(x), views

    default = buffers.MIN_BYTES, buffers.NESTED
    buffers.MIN_BYTES, buffers.NESTED = min_bytes, min_bytes == 1  # every temporary, or none
    try:
        compiled = cr.compile(f, cache_size=2)
        kept = []
        for shape in shapes:
            x, w = rng.standard_normal(shape), rng.standard_normal(shape)
            results = compiled(x, w)
            assert_identical(results, f(x, w))
            for leaf in tree_leaves(results):
                assert not np.shares_memory(leaf.data, x) and not np.shares_memory(leaf.data, w)
                for buffer in workspaces(compiled):  # no result is, or views, a buffer
                    assert not np.shares_memory(leaf.data, buffer)
            kept.append((tree_leaves(results), [r.data.copy() for r in tree_leaves(results)]))
    finally:
        buffers.MIN_BYTES, buffers.NESTED = default
    arrays = [a.data for leaves, _ in kept for a in leaves]
    for leaves, copies in kept:  # no later call wrote into an earlier result
        for leaf, copy in zip(leaves, copies):
            assert type(leaf.data) is np.ndarray
            assert np.array_equal(leaf.data, copy)
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)


def _mlp_loss(params, x, y):
    """The lecture's two-layer MLP on a batch of 128, so that its temporaries are large."""
    f1 = x @ params["W1"] + params["b1"]
    a1 = cr.tanh(f1)
    f2 = a1 @ params["W2"] + params["b2"]
    return cr.nn.functional.cross_entropy(f2, y)


def _mlp_arguments(rng, seed=0):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((784, 256)) * 0.05, "b1": np.zeros(256)}
    params |= {"W2": rng.standard_normal((256, 10)) * 0.05, "b2": np.zeros(10)}
    return params, rng.standard_normal((128, 784)), rng.integers(0, 10, 128)


def test_large_temporaries_are_written_into_the_workspace(rng):
    compiled = cr.compile(cr.value_and_grad(_mlp_loss))
    first = _mlp_arguments(rng, 0)
    results = compiled(*first)
    text = "\n".join(line.strip() for line in compiled.source.splitlines())
    # the lecture's lines, each into a buffer of the workspace
    assert "f1 = np.matmul(x, W1, out=_b[0])\nf1 += b1\n" in text  # f1 = x @ W1 + b1
    assert "a1 = np.tanh(f1, out=_b[1])" in text
    assert "d1 = np.matmul(d2, W2.T, out=_b[2])\nd1 *= 1 - a1 * a1\n" in text
    assert "dW1 = x.T @ d1" in text  # a result: fresh
    assert "# _b: " in text
    # each buffer written by one expression only, once per call
    written = [int(i) for i in __import__("re").findall(r"out=_b\[(\d+)\]", text)]
    assert sorted(written) == list(range(len(written))) and len(written) == 3
    kept = [leaf.data.copy() for leaf in tree_leaves(results)]
    second = _mlp_arguments(rng, 1)
    assert_identical(compiled(*second), cr.value_and_grad(_mlp_loss)(*second))
    assert_identical(results, cr.value_and_grad(_mlp_loss)(*first))
    for leaf, copy in zip(tree_leaves(results), kept):  # the first call's results: untouched
        assert np.array_equal(leaf.data, copy)
        assert not any(np.shares_memory(leaf.data, b) for b in workspaces(compiled))


class Pause(cr.Function):
    """The identity, sleeping in its forward and backward (another thread runs)."""

    @staticmethod
    def forward(ctx, x):
        __import__("time").sleep(0.002)
        return x.copy()

    @staticmethod
    def backward(ctx, grad_out):
        __import__("time").sleep(0.002)
        return grad_out


def test_concurrent_calls_run_on_their_own_workspaces(rng, monkeypatch):
    import threading

    buffer_every_temporary(monkeypatch)

    def loss(params, x, y):
        return Pause.apply(_mlp_loss(params, Pause.apply(x), y))

    compiled = cr.compile(cr.value_and_grad(loss))
    arguments = [_mlp_arguments(rng, seed) for seed in range(4)]
    expected = [cr.value_and_grad(loss)(*a) for a in arguments]
    compiled(*arguments[0])
    made = []
    make = buffers.Instances.make
    monkeypatch.setattr(buffers.Instances, "make", lambda self: made.append(1) or make(self))
    failures = []
    start = threading.Barrier(2)

    def work(offset):
        start.wait()
        for i in range(6):
            index = (offset + i) % 4
            try:
                assert_identical(compiled(*arguments[index]), expected[index], f"call {i}")
            except AssertionError as error:  # noqa: PERF203
                failures.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]
    assert made  # a call found the program running and ran a copy of its own


class Reenter(cr.Function):
    """The identity, whose forward calls a compiled function while ``pending`` holds one."""

    pending: list = []
    results: list = []

    @staticmethod
    def forward(ctx, x):
        if Reenter.pending:
            compiled, args = Reenter.pending.pop()
            Reenter.results.append(compiled(*args))
        return x.copy()

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out


def test_a_call_from_inside_the_program_runs_on_its_own_workspace(rng, monkeypatch):
    buffer_every_temporary(monkeypatch)

    def f(x, w):
        h = cr.tanh(x @ w)
        return cr.grad(lambda v: cr.exp(Reenter.apply(h @ v) * 0.5).sum())(w)

    compiled = cr.compile(f)
    outer = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    inner = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    compiled(*outer)
    Reenter.pending.append((compiled, inner))  # the outer call's forward calls it again
    got = compiled(*outer)
    assert not Reenter.pending and len(Reenter.results) == 1
    assert_identical(got, f(*outer))
    assert_identical(Reenter.results.pop(), f(*inner))


class SameOnRequest(cr.Function):
    """The identity: a copy while tracing, the input array itself once ``same`` is set (a
    Function whose output may be its input, which the trace did not see)."""

    same = [False]

    @staticmethod
    def forward(ctx, x):
        return x if SameOnRequest.same[0] else x.copy()

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out


def test_a_result_that_turns_out_to_be_a_buffer_is_copied(rng, monkeypatch):
    buffer_every_temporary(monkeypatch)
    monkeypatch.setattr(SameOnRequest, "same", [False])
    compiled = cr.compile(lambda x, w: SameOnRequest.apply(cr.tanh(x * w)))
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    compiled(x, w)
    assert "_own(" in compiled.source
    SameOnRequest.same[0] = True
    first = compiled(x, w)
    kept = first.data.copy()
    second = compiled(w, x * 2)
    assert np.array_equal(first.data, kept) and not np.shares_memory(first.data, second.data)
    for buffer in workspaces(compiled):
        assert not np.shares_memory(first.data, buffer)
        assert not np.shares_memory(second.data, buffer)


def test_a_gradient_equal_to_an_argument_is_a_copy_of_it(rng):
    # ∂(Σ a∘b)/∂a = b: the program multiplies by the seed's ones no more (1·b = b exactly),
    # and returns b's values in an array of their own
    compiled = cr.compile(cr.grad(lambda a, b: (a * b).sum(), argnums=(0, 1)))
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    grad_a, grad_b = compiled(a, b)
    assert np.array_equal(grad_a.data, b) and not np.shares_memory(grad_a.data, b)
    assert np.array_equal(grad_b.data, a) and not np.shares_memory(grad_b.data, a)
    assert " * " not in compiled.source  # no multiplication left


def test_a_compiled_function_inside_another_is_traced_into_it(rng):
    inner = cr.compile(lambda x: cr.tanh(x) * 2)
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    inner(x)  # compiled and cached on its own
    outer = check_compiled(cr.grad(lambda v: inner(v).sum()), (x,), (y,))
    assert "np.tanh" in outer.source and inner.traces == 1


def test_a_call_keeps_no_saved_arrays_after_the_backward(rng):
    labels = np.array([0, 2, 1])
    compiled = cr.compile(cr.grad(lambda x: cr.nn.functional.cross_entropy(x, labels)))
    compiled(rng.standard_normal((3, 4)))
    (instance,) = compiled._latest.run.free  # the copy of the program that ran the call
    contexts = [v for v in instance.__globals__.values() if isinstance(v, cr.Context)]
    assert contexts and all(c._saved == () for c in contexts)  # freed, as the engine does


def test_a_new_signature_retraces_and_the_cache_is_lru(rng):
    compiled = cr.compile(lambda x: (x * 2).sum(), cache_size=2)
    a, b, c = rng.standard_normal(3), rng.standard_normal(4), rng.standard_normal((2, 2))
    for x in (a, b, a, b):
        compiled(x)
    assert compiled.traces == 2
    compiled(a.astype(np.float32))  # a dtype is part of the signature
    assert compiled.traces == 3
    compiled(c)  # b was the least recently used: evicted
    compiled(a.astype(np.float32))
    assert compiled.traces == 4
    compiled(b)
    assert compiled.traces == 5


def test_a_changed_structure_retraces(rng):
    compiled = cr.compile(lambda tree: sum((v * v).sum() for v in tree_leaves(tree)))
    x = rng.standard_normal(3)
    assert_identical(compiled({"a": x}), cr.tensor((x * x).sum()))
    assert_identical(compiled({"a": x, "b": x}), cr.tensor((x * x).sum() + (x * x).sum()))
    assert_identical(compiled([x]), cr.tensor((x * x).sum()))
    assert compiled.traces == 3


def test_python_numbers_are_part_of_the_signature(rng):
    compiled = cr.compile(lambda x, p: (x**p).sum())
    x = rng.standard_normal(3)
    assert_identical(compiled(x, 2), (cr.tensor(x) ** 2).sum())
    assert_identical(compiled(x, 3), (cr.tensor(x) ** 3).sum())
    assert compiled.traces == 2


# ---------------------------------------------------------------------- the program's text
def test_the_source_of_an_mlp_reads_like_the_lecture(rng):
    def loss(params, x, y):
        f1 = x @ params["W1"] + params["b1"]
        a1 = cr.tanh(f1)
        f2 = a1 @ params["W2"] + params["b2"]
        return ((f2 - y) ** 2).mean()

    params = {"W1": rng.standard_normal((3, 5)), "b1": np.zeros(5)}
    params |= {"W2": rng.standard_normal((5, 2)), "b2": np.zeros(2)}
    compiled = cr.compile(cr.value_and_grad(loss))
    compiled(params, rng.standard_normal((8, 3)), rng.standard_normal((8, 2)))
    text = "\n".join(line.strip() for line in compiled.source.splitlines())
    assert "f1 = x @ W1 + b1" in text
    assert "a1 = np.tanh(f1)" in text
    assert "d1 = " in text and "* (1 - a1 * a1)" in text
    assert "Context" not in text and "Tensor" not in text


# ---------------------------------------------------------------------- what compile refuses
def test_returning_a_non_array_names_the_leaf(rng):
    with pytest.raises(TypeError, match="returned a float as output leaf 1"):
        cr.compile(lambda x: (x.sum(), 1.0))(rng.standard_normal(3))


@pytest.mark.parametrize(
    "read, what",
    [
        (lambda t: bool(t.sum() > 0), r"bool\(\)"),
        (lambda t: float(t.sum()), r"item\(\)"),
        (lambda t: t.sum().item(), r"item\(\)"),
        (lambda t: t.numpy(), r"numpy\(\)"),
        (lambda t: t.tolist(), r"tolist\(\)"),
    ],
    ids=["bool", "float", "item", "numpy", "tolist"],
)
def test_reading_a_traced_value_says_why_and_what_to_do(read, what, rng):
    def f(x):
        read(x)
        return x * 2

    with pytest.raises(cr.TracedValueError, match=what) as caught:
        cr.compile(f)(rng.standard_normal(3))
    message = str(caught.value)
    assert "depends on the function's inputs" in message and "cr.where" in message


def test_data_dependent_control_flow_is_refused(rng):
    def f(x):
        return x * 2 if x.sum() > 0 else x * 3

    with pytest.raises(cr.TracedValueError, match="bool"):
        cr.compile(f)(rng.standard_normal(3))


def test_a_constant_read_is_allowed(rng):
    scale = cr.tensor(np.array(2.0))
    f = cr.compile(lambda x: x * float(scale))  # scale does not depend on the input
    x = rng.standard_normal(3)
    assert_identical(f(x), cr.tensor(x) * 2.0)


def test_values_computed_outside_the_ops_are_refused(rng):
    with pytest.raises(cr.TracedValueError, match="the op Mul uses an array"):
        cr.compile(lambda x: x * np.exp(x.data))(rng.standard_normal(3))
    with pytest.raises(cr.TracedValueError, match="draws random numbers"):
        cr.compile(lambda x: x * cr.randn(3))(rng.standard_normal(3))
    dropout = cr.nn.Dropout(0.5)  # even on 3 elements, where two masks agree 1 time in 8
    with pytest.raises(cr.TracedValueError, match="draws random numbers"):
        cr.compile(dropout)(rng.standard_normal(3))
    generator = np.random.default_rng(0)  # a generator of one's own: the two traces differ
    with pytest.raises(cr.TracedValueError, match="changes with the inputs"):
        cr.compile(lambda x: x * generator.random(50))(rng.standard_normal(50))
    dropout.eval()
    x = rng.standard_normal(3)
    assert_identical(cr.compile(dropout)(x), cr.tensor(x))


def test_backward_and_in_place_writes_are_refused(rng):
    def with_backward(x):
        w = cr.tensor(np.ones(3), requires_grad=True)
        (x * w).sum().backward()
        return w.grad

    with pytest.raises(cr.TracedValueError, match=r"\.backward\(\)"):
        cr.compile(with_backward)(rng.standard_normal(3))

    def in_place(x):
        y = x * 2
        y += 1
        return y

    with pytest.raises(cr.TracedValueError, match="in place"):
        cr.compile(in_place)(rng.standard_normal(3))


def test_a_graph_made_outside_the_trace_is_refused(rng):
    w = cr.tensor(rng.standard_normal(3), requires_grad=True)
    outside = w * 2  # a node recorded before compile traces
    with pytest.raises(cr.TracedValueError, match="before the trace began"):
        cr.compile(lambda x: engine.grad((outside * x).sum(), [w]))(rng.standard_normal(3))
    with pytest.raises(cr.TracedValueError, match="checkpoint"):
        cr.compile(cr.grad(lambda x: cr.checkpoint(cr.tanh)(x).sum()))(rng.standard_normal(3))


def test_tracing_restores_the_engine_flags(rng):
    fast = cr.mode.STATE.fast
    with pytest.raises(cr.TracedValueError):
        cr.compile(lambda x: float(x.sum()))(rng.standard_normal(2))
    assert cr.mode.STATE.trace is None and cr.mode.STATE.fast == fast


def test_batch_norm_compiles_in_eval_mode_only(rng):
    norm = cr.nn.BatchNorm1d(3)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(cr.TracedValueError, match="BatchNorm1d in training mode"):
        cr.compile(norm)(x)
    norm.eval()
    check_compiled(norm, (x,), (x * 2,))


def test_an_argument_that_requires_grad_runs_f_itself(rng):
    compiled = cr.compile(lambda t: cr.tanh(t) * 2)
    x = cr.tensor(rng.standard_normal(3), requires_grad=True)
    out = compiled(x)  # recorded, as f's own call: differentiable from outside
    out.sum().backward()
    assert out.requires_grad and compiled.traces == 0
    np.testing.assert_array_equal(x.grad.data, 2 * (1 - np.tanh(x.data) ** 2))


def test_source_before_any_call_and_explain(rng):
    compiled = cr.compile(lambda x: cr.tanh(x))
    with pytest.raises(RuntimeError, match="not called yet"):
        compiled.source  # noqa: B018
    text = compiled.explain(rng.standard_normal(2))
    assert "np.tanh(x)" in text and compiled.traces == 1


def test_every_template_is_held_to_bit_equality_by_the_op_table(monkeypatch, rng):
    """Each template writes its Function's rule as source: the op-table tests above are
    what keep the two equal, so every template must be used by some op of the table."""
    from chainrule.compiled.templates import TEMPLATES

    used = set()
    for function, template in TEMPLATES.items():

        def accepts(view, template=template, function=function):
            ok = type(template).accepts(template, view)
            if ok:
                used.add(function)
            return ok

        monkeypatch.setattr(template, "accepts", accepts)
    for spec in DIFFERENTIABLE:
        first = [x for x in spec.inputs(rng)]
        u = rng.standard_normal(spec.fn(*map(cr.tensor, first)).shape)
        cr.compile(_vjp_of(spec))(first, u)
    assert used == set(TEMPLATES), set(TEMPLATES) - used
