"""W1 (a 5-op graph and its backward on 16×16) in the leanest reverse mode Python allows.

    python bench/python_floor.py            # minimal engine, chainrule, PyTorch eager
    python bench/python_floor.py --rounds 21

The minimal engine below is micrograd's design on NumPy arrays: a Tensor of three slots,
a node as a tuple (backward rule, parents, saved value), a depth-first topological order
and a dict of gradients. It has none of what makes chainrule's answers checkable: no
gradient summed back over broadcast axes, no shape or dtype check of what a backward
returns, no refusal of saved arrays written in place or freed by an earlier backward, no
retain_grad, hooks, anomaly mode or create_graph. Its time is what any engine written in
Python pays for W1's five ops and their backward; issue 18's target for chainrule's eager
W1 (0.4× PyTorch) sits just above it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402
from run import HAS_TORCH, timed_rounds  # noqa: E402


class Minimal:
    """A value and, if an op made it, its node: (rule, parents, what the rule needs)."""

    __slots__ = ("data", "grad", "node")

    def __init__(self, data: np.ndarray, node: tuple | None = None) -> None:
        self.data, self.grad, self.node = data, None, node

    def __mul__(self, other: Minimal) -> Minimal:
        return Minimal(self.data * other.data, (_mul, (self, other), (self.data, other.data)))

    def __add__(self, other: Minimal) -> Minimal:
        return Minimal(self.data + other.data, (_add, (self, other), None))

    def tanh(self) -> Minimal:
        y = np.tanh(self.data)
        return Minimal(y, (_tanh, (self,), y))

    def sum(self) -> Minimal:
        return Minimal(np.add.reduce(self.data, None), (_sum, (self,), self.data.shape))


def _mul(g: Any, saved: tuple) -> tuple:
    a, b = saved
    return g * b, g * a


def _add(g: Any, saved: None) -> tuple:
    return g, g


def _tanh(g: Any, y: np.ndarray) -> tuple:
    return (g * (1 - y * y),)


def _sum(g: Any, shape: tuple) -> tuple:
    out = np.empty(shape, np.asarray(g).dtype)
    out.fill(g)
    return (out,)


def backward(root: Minimal) -> None:
    """Topological order by depth-first search, then one pass adding up gradients."""
    order: list[Minimal] = []
    seen: set[int] = set()
    stack = [(root, False)]
    while stack:
        value, inputs_done = stack.pop()
        if inputs_done:
            order.append(value)
            continue
        if id(value) in seen:
            continue
        seen.add(id(value))
        stack.append((value, True))
        if value.node is not None:
            stack.extend((p, False) for p in value.node[1] if id(p) not in seen)
    grads = {id(root): np.array(1, root.data.dtype)}
    for value in reversed(order):
        g = grads.pop(id(value), None)
        if g is None:
            continue
        if value.node is None:
            value.grad = g if value.grad is None else value.grad + g
            continue
        rule, parents, saved = value.node
        for parent, pg in zip(parents, rule(g, saved)):
            previous = grads.get(id(parent))
            grads[id(parent)] = pg if previous is None else previous + pg


def w1_minimal(n: int = 16) -> W.Step:
    rng = W._rng()
    a = Minimal(rng.standard_normal((n, n)).astype(W.F32))
    b = Minimal(rng.standard_normal((n, n)).astype(W.F32))

    def step() -> None:
        a.grad = b.grad = None
        backward(((a * b + a).tanh() * b).sum())

    return step


def _check() -> None:
    """The minimal engine's gradients are W1's (so its time is for the same work)."""
    rng = W._rng()
    x, y = (rng.standard_normal((16, 16)).astype(W.F32) for _ in range(2))
    a, b = Minimal(x), Minimal(y)
    backward(((a * b + a).tanh() * b).sum())
    ga, gb = W.w1_numpy()()  # the floor's gradients, for the same draws
    assert np.allclose(a.grad, ga, atol=1e-5) and np.allclose(b.grad, gb, atol=1e-5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    _check()
    steps = {"minimal": w1_minimal(), "chainrule": W.w1_chainrule()}
    if HAS_TORCH:
        steps["torch"] = W.w1_torch()
    samples = timed_rounds(steps, args.rounds, dict.fromkeys(steps, args.calls))
    for name, times in samples.items():
        print(f"{name:>10}: {statistics.median(times) * 1e6:6.1f} µs")
    if HAS_TORCH:
        for name in ("minimal", "chainrule"):
            ratios = [x / t for x, t in zip(samples[name], samples["torch"])]
            print(f"{name} / torch: {statistics.median(ratios):.3f} (median of per-round ratios)")


if __name__ == "__main__":
    main()
