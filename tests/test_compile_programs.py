"""Random programs (``tests/differential.py``) through ``cr.compile``: traced on the
program's inputs, then called on other values (each input's elements shuffled: the same
magnitudes, another order, so that which element is largest, which side of a comparison
wins and which index an argmax returns all change), the compiled value, gradients and
Hessian-vector products equal eager's on those values, to the last bit.

A program compile refuses loudly (``TracedValueError``: an in-place update of a traced
value, a value read outside the ops) is counted and set aside: the danger this test hunts
is a compiled program that silently replays the trace's values.
"""

from __future__ import annotations

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st

import chainrule as cr
from chainrule.compiled import buffers
from chainrule.tree import tree_leaves
from differential import hunt_settings, programs, weighted_loss

SETTINGS = hunt_settings(40)


def _value_grads_and_hvp(program):
    """(L, ∇L, ∇(∇L · v)) of the program's weighted outputs, for inputs xs and directions vs."""
    loss = weighted_loss(program)
    k = len(program.inputs)
    argnums = tuple(range(k))

    def f(xs, vs):
        value, grads = cr.value_and_grad(loss, argnums=argnums)(*xs)

        def directional(*ys):
            return sum((g * v).sum() for g, v in zip(cr.grad(loss, argnums=argnums)(*ys), vs))

        return value, grads, cr.grad(directional, argnums=argnums)(*xs)

    return f


def _identical(got, expected, what: str) -> None:
    got, expected = tree_leaves(got), tree_leaves(expected)
    assert len(got) == len(expected), what
    for index, (a, b) in enumerate(zip(got, expected)):
        a = a.data if isinstance(a, cr.Tensor) else np.asarray(a)
        b = b.data if isinstance(b, cr.Tensor) else np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what}, leaf {index}"
        assert np.array_equal(a, b, equal_nan=True), (
            f"{what}, leaf {index}: compiled {a!r} != eager {b!r}"
        )


@given(program=programs(), seed=st.integers(0, 2**16), buffered=st.booleans())
@SETTINGS
def test_random_programs_compiled_equal_eager_on_other_values(program, seed, buffered):
    if any(node.op == "inplace" for node in program.nodes):
        event("in place: refused by compile")
        return
    # buffered: every temporary of the program, nested ones too, written into its
    # workspace through out= (these programs' arrays are far below the size that is)
    saved = buffers.MIN_BYTES, buffers.NESTED
    buffers.MIN_BYTES, buffers.NESTED = (1, True) if buffered else saved
    try:
        _compare(program, seed)
    finally:
        buffers.MIN_BYTES, buffers.NESTED = saved


def _compare(program, seed: int) -> None:
    rng = np.random.default_rng(seed)
    f = _value_grads_and_hvp(program)
    inputs = [np.asarray(x) for x in program.inputs]
    directions = [rng.standard_normal(x.shape) for x in inputs]
    compiled = cr.compile(f)
    try:
        first = compiled(inputs, directions)
    except cr.TracedValueError:
        event("refused by compile")
        return
    kept = [np.array(leaf.data) for leaf in tree_leaves(first)]
    others = [rng.permutation(x.ravel()).reshape(x.shape) for x in inputs]
    with np.errstate(all="ignore"):
        try:
            expected = f([cr.tensor(x) for x in others], [cr.tensor(v) for v in directions])
        except (ArithmeticError, ValueError, IndexError, np.linalg.LinAlgError):
            event("eager refuses the shuffled values")
            return
        got = compiled(others, directions)
    event("compared")
    _identical(got, expected, f"program:\n{program}")
    _identical(first, kept, "the first call's results, after the second call")


@given(program=programs(), seed=st.integers(0, 2**16))
@SETTINGS
def test_random_programs_compiled_under_vmap_equal_eager_vmap(program, seed):
    # cr.compile(cr.vmap(value_and_grad(L))): per-example values and gradients of a batch
    # of three shuffled copies of the inputs, then of another batch
    if any(node.op == "inplace" for node in program.nodes):
        event("in place: refused by compile")
        return
    rng = np.random.default_rng(seed)
    k = len(program.inputs)
    f = cr.vmap(cr.value_and_grad(weighted_loss(program), argnums=tuple(range(k))))

    def batch(shuffled: bool):
        def example(x):
            return rng.permutation(np.ravel(x)).reshape(np.shape(x)) if shuffled else x

        return [np.stack([example(x) for _ in range(3)]) for x in program.inputs]

    compiled = cr.compile(f)
    try:
        compiled(*batch(shuffled=False))  # the values the program was drawn for
    except cr.TracedValueError:
        event("refused by compile")
        return
    except TypeError as error:  # NumPy code reading a batched value: vmap refuses it
        assert "inside cr.vmap" in str(error), error
        event("refused by vmap")
        return
    others = batch(shuffled=True)
    with np.errstate(all="ignore"):
        try:
            expected = f(*[cr.tensor(x) for x in others])
        except (ArithmeticError, ValueError, IndexError, np.linalg.LinAlgError):
            event("eager refuses the shuffled values")
            return
        got = compiled(*others)
    event("compared")
    _identical(got, expected, f"program:\n{program}")
