"""Random programs (``tests/differential.py``) under ``cr.vmap``: batched, each equals the
program run once per example, values and per-example gradients.

A batch is the program's own inputs and two nearby draws. A program that vmap refuses
loudly (an in-place update, or NumPy code reading a batched value) is counted and set
aside: the danger this test hunts is a batched answer that differs silently.
"""

from __future__ import annotations

import numpy as np
from hypothesis import event, given

import chainrule as cr
from differential import CR, evaluate, hunt_settings, programs, weighted_loss

SETTINGS = hunt_settings(60)


def _batch(program):
    rng = np.random.default_rng(0)
    return [
        np.stack([x, x + 1e-3 * rng.standard_normal(x.shape), x * (1 - 1e-3)])
        for x in program.inputs
    ]


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
    grads = cr.vmap(cr.grad(weighted_loss(program), argnums=tuple(range(k))))(*batch)
    for i, example in enumerate(examples):
        expected = cr.grad(weighted_loss(program), argnums=tuple(range(k)))(*example)
        for j, (g, e) in enumerate(zip(grads, expected)):
            _close(g.data[i], e.data, f"example {i}, gradient {j}")
    event("compared")
