"""Random programs (``tests/differential.py``) under ``cr.vmap``: batched, each equals the
program run once per example, values and per-example gradients.

A batch is the program's own inputs and two nearby draws. A program that vmap refuses
loudly (an in-place update, or NumPy code reading a batched value) is counted and set
aside: the danger this test hunts is a batched answer that differs silently.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, event, given, settings

import chainrule as cr
from differential import CR, evaluate, programs

HUNT = int(os.environ.get("CHAINRULE_HUNT", "0"))  # random examples for a long hunt
SETTINGS = settings(
    max_examples=HUNT or 60,
    derandomize=not HUNT,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _batch(program):
    rng = np.random.default_rng(0)
    return [
        np.stack([x, x + 1e-3 * rng.standard_normal(x.shape), x * (1 - 1e-3)])
        for x in program.inputs
    ]


def _loss(program):
    def loss(*xs):
        values = evaluate(program, CR, [cr.tensor(x) if not isinstance(x, cr.Tensor) else x
                                        for x in xs])  # fmt: skip
        return sum((values[o] * w).sum() for o, w in zip(program.outputs, program.weights))

    return loss


def _outputs(program):
    def outputs(*xs):
        values = evaluate(program, CR, [cr.tensor(x) if not isinstance(x, cr.Tensor) else x
                                        for x in xs])  # fmt: skip
        return [values[o] for o in program.outputs]

    return outputs


def _close(actual, expected, what):
    np.testing.assert_allclose(
        np.asarray(actual), np.asarray(expected), rtol=1e-9, atol=1e-11, equal_nan=True,
        err_msg=what,
    )  # fmt: skip


@given(program=programs())
@SETTINGS
def test_random_programs_under_vmap_equal_the_program_per_example(program):
    if any(node.op == "inplace" for node in program.nodes):
        event("in place: not under vmap")
        return
    batch = _batch(program)
    examples = [[x[i] for x in batch] for i in range(3)]
    try:
        batched = cr.vmap(_outputs(program))(*batch)
    except TypeError as error:
        assert "inside cr.vmap" in str(error), error
        event("refused: reads a batched value")
        return
    for i, example in enumerate(examples):
        for out, expected in zip(batched, _outputs(program)(*example)):
            _close(out.data[i], expected.data, f"example {i}")
    k = len(batch)
    grads = cr.vmap(cr.grad(_loss(program), argnums=tuple(range(k))))(*batch)
    for i, example in enumerate(examples):
        expected = cr.grad(_loss(program), argnums=tuple(range(k)))(*example)
        for j, (g, e) in enumerate(zip(grads, expected)):
            _close(g.data[i], e.data, f"example {i}, gradient {j}")
    event("compared")
