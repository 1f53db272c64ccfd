"""Framework overhead per op: chainrule forward and backward next to the same maths in NumPy.

For each op and size, times (median of several rounds):
  * chainrule forward (inputs require grad, so the graph is recorded);
  * chainrule forward + backward (seeded with a fixed upstream gradient);
  * the same forward and the hand-written backward in plain NumPy.
The ratio column is chainrule / NumPy: near 1 for large tensors (the BLAS and ufunc work
dominates), and the per-op Python overhead for small ones.

Run: ``python bench/overhead.py`` (``--quick`` for fewer rounds).
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable

import numpy as np
from scipy.special import erf as scipy_erf

import chainrule as cr

_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)


def _median_seconds(fn: Callable[[], object], number: int, rounds: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=rounds)) / number


def _cases(n: int, rng: np.random.Generator) -> dict[str, tuple]:
    """op name -> (chainrule forward on tensors, numpy forward, numpy backward)."""
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    g = rng.standard_normal((n, n)).astype(np.float32)

    def np_softmax(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return {
        "add": (lambda x, y: x + y, lambda: a + b, lambda: (g, g)),
        "mul": (lambda x, y: x * y, lambda: a * b, lambda: (g * b, g * a)),
        "tanh": (lambda x, y: x.tanh(), lambda: np.tanh(a), lambda: g * (1 - np.tanh(a) ** 2)),
        "exp": (lambda x, y: x.exp(), lambda: np.exp(a), lambda: g * np.exp(a)),
        # v0.2 elementwise ops: each should cost what exp and tanh do
        "sin": (lambda x, y: x.sin(), lambda: np.sin(a), lambda: g * np.cos(a)),
        "expm1": (lambda x, y: x.expm1(), lambda: np.expm1(a), lambda: g * (np.expm1(a) + 1)),
        "square": (lambda x, y: x.square(), lambda: np.square(a), lambda: g * (2 * a)),
        "erf": (
            lambda x, y: x.erf(),
            lambda: scipy_erf(a),
            lambda: g * (_TWO_OVER_SQRT_PI * np.exp(-(a * a))),
        ),
        "relu": (lambda x, y: x.relu(), lambda: np.maximum(a, 0), lambda: g * (a > 0)),
        "sigmoid": (
            lambda x, y: x.sigmoid(),
            lambda: 1 / (1 + np.exp(-a)),
            lambda: g * (s := 1 / (1 + np.exp(-a))) * (1 - s),
        ),
        "sum(axis=1)": (
            lambda x, y: x.sum(axis=1),
            lambda: a.sum(axis=1),
            lambda: np.broadcast_to(g[:, :1], a.shape).copy(),
        ),
        "matmul": (lambda x, y: x @ y, lambda: a @ b, lambda: (g @ b.T, a.T @ g)),
        "softmax": (
            lambda x, y: x.softmax(axis=1),
            lambda: np_softmax(a),
            lambda: (s := np_softmax(a)) * (g - (g * s).sum(axis=1, keepdims=True)),
        ),
    }, (a, b, g)


def run(sizes: list[int], rounds: int) -> None:
    rng = np.random.default_rng(0)
    header = f"{'op':<12} {'size':>9} {'cr fwd':>10} {'np fwd':>10} {'ratio':>6} "
    header += f"{'cr bwd':>10} {'np bwd':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for n in sizes:
        cases, (a, b, g) = _cases(n, rng)
        number = max(1, int(2e5 // (n * n)) if n <= 64 else int(2e7 // (n * n * n)) or 1)
        for name, (cr_fn, np_fwd, np_bwd) in cases.items():
            x = cr.tensor(a, requires_grad=True)
            y = cr.tensor(b, requires_grad=True)
            out_shape = cr_fn(x, y).shape
            seed = g if out_shape == g.shape else g[:, 0].copy()

            def forward(cr_fn=cr_fn, x=x, y=y):
                return cr_fn(x, y)

            def forward_backward(cr_fn=cr_fn, x=x, y=y, seed=seed):
                x.grad = y.grad = None
                cr_fn(x, y).backward(seed)

            t_fwd = _median_seconds(forward, number, rounds)
            t_total = _median_seconds(forward_backward, number, rounds)
            t_np_fwd = _median_seconds(np_fwd, number, rounds)
            t_np_bwd = _median_seconds(np_bwd, number, rounds)
            t_bwd = max(t_total - t_fwd, 0.0)
            print(
                f"{name:<12} {f'{n}x{n}':>9} {t_fwd * 1e6:>8.1f}µs {t_np_fwd * 1e6:>8.1f}µs "
                f"{t_fwd / t_np_fwd:>6.2f} {t_bwd * 1e6:>8.1f}µs {t_np_bwd * 1e6:>8.1f}µs "
                f"{t_bwd / t_np_bwd:>6.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--sizes", default="16,1024", help="comma-separated n for n×n inputs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    run(sizes, rounds=3 if args.quick else 7)


if __name__ == "__main__":
    main()
