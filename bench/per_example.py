"""Per-example gradients with ``cr.vmap(cr.grad(loss))``: ``python bench/per_example.py``.

A 784-256-10 tanh MLP with softmax cross-entropy, 64 examples, float32 (``--float64`` for
float64). Times, round-robin in one process (``bench/run.py``'s ``timed_rounds``), medians:

- ``batched``: one backward of the mean loss over the 64 examples (``cr.grad``);
- ``vmap``: 64 per-example gradients at once, ``cr.vmap(cr.grad(loss), (None, 0, 0))``;
- ``loop``: the same 64 gradients from a Python loop of ``cr.grad`` calls;
- ``numpy``: the per-example gradients written by hand in NumPy (the outer products
  xᵢ δᵢᵀ per example): the floor, bound by writing 64 copies of the parameters;
- with ``--torch``, ``torch.func.vmap(torch.func.grad(...))`` on the same data.

Then per-example Hessians of a small function (64 × R¹⁰ → R), vmap against a loop of
``cr.hessian``: a case where the result is small and batching pays in full.

The per-example results are checked against the loop first. Run on demand; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import timed_rounds  # noqa: E402

import chainrule as cr  # noqa: E402

N, IN, HIDDEN, OUT = 64, 784, 256, 10


def loss(params: Any, x: Any, y: Any) -> Any:
    """Softmax cross-entropy of the MLP's scores: one example (x of shape (784,)) or a
    batch (x of shape (N, 784))."""
    (w1, b1), (w2, b2) = params
    a1 = cr.tanh(x @ w1 + b1)
    return cr.nn.functional.cross_entropy(a1 @ w2 + b2, y)


def numpy_per_example(params: Any, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    (w1, b1), (w2, b2) = params
    a1 = np.tanh(x @ w1 + b1)
    scores = a1 @ w2 + b2
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d2 = p
    d2[np.arange(len(y)), y] -= 1  # δ[2] per example: softmax − one-hot
    d1 = (d2 @ w2.T) * (1 - a1 * a1)  # δ[1] = g′(f[1]) ∘ (W[2] δ[2])
    return [x[:, :, None] * d1[:, None, :], d1, a1[:, :, None] * d2[:, None, :], d2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--torch", action="store_true", help="also torch.func (if installed)")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    dtype = np.float64 if args.float64 else np.float32
    rng = np.random.default_rng(0)
    params = [
        (rng.normal(0, IN**-0.5, (IN, HIDDEN)).astype(dtype), np.zeros(HIDDEN, dtype)),
        (rng.normal(0, HIDDEN**-0.5, (HIDDEN, OUT)).astype(dtype), np.zeros(OUT, dtype)),
    ]
    x = rng.normal(size=(N, IN)).astype(dtype)
    y = rng.integers(0, OUT, N)

    def one(p: Any, xi: Any, yi: Any) -> Any:  # one example, as a batch of one
        return loss(p, cr.reshape(xi, (1, IN)), cr.reshape(yi, (1,)))

    per_example = cr.vmap(cr.grad(one), in_axes=(None, 0, 0))
    batched = cr.grad(loss)
    labels = cr.tensor(y)

    def looped() -> list:
        return [cr.grad(loss)(params, x[i : i + 1], y[i : i + 1]) for i in range(N)]

    got = per_example(params, x, labels)
    want = looped()
    floor = numpy_per_example(params, x, y)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for i in (0, N - 1):
        for (gw, gb), (ww, wb) in zip(got, want[i]):
            np.testing.assert_allclose(gw.data[i], ww.data, rtol=tolerance, atol=tolerance)
            np.testing.assert_allclose(gb.data[i], wb.data, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(got[0][0].data, floor[0], rtol=tolerance, atol=tolerance)

    steps = {
        "batched": lambda: batched(params, x, y),
        "vmap": lambda: per_example(params, x, labels),
        "loop": looped,
        "numpy": lambda: numpy_per_example(params, x, y),
    }
    if args.torch:
        steps["torch.func"] = _torch_step(params, x, y)
    calls = {name: 1 if name == "loop" else 5 for name in steps}
    samples = timed_rounds(steps, args.rounds, calls, settle=0.3)
    medians = {name: 1e3 * statistics.median(times) for name, times in samples.items()}
    print(f"784-256-10 MLP, {N} examples, {np.dtype(dtype).name}; median ms per call")
    for name, ms in medians.items():
        print(f"  {name:<11}{ms:9.2f} ms  {ms / medians['batched']:6.1f}x batched")
    print(
        f"  vmap is {medians['loop'] / medians['vmap']:.1f}x faster than the loop and "
        f"{medians['vmap'] / medians['numpy']:.2f}x the hand-written NumPy floor"
    )
    _hessians(args.rounds, dtype)


def _hessians(rounds: int, dtype: Any) -> None:
    """Per-example Hessians, where the result is small: x ↦ Σ tanh(xW)², 64 × R¹⁰."""
    rng = np.random.default_rng(1)
    w = (rng.normal(size=(10, 32)) / 3).astype(dtype)
    xs = rng.normal(size=(N, 10)).astype(dtype)

    def energy(x: Any) -> Any:
        return (cr.tanh(x @ w) ** 2).sum()

    hessian = cr.hessian(energy)
    steps = {
        "vmap": lambda: cr.vmap(hessian)(xs),
        "loop": lambda: [hessian(x) for x in xs],
    }
    np.testing.assert_allclose(steps["vmap"]().data[3], hessian(xs[3]).data, rtol=1e-4, atol=1e-5)
    samples = timed_rounds(steps, rounds, {"vmap": 5, "loop": 1}, settle=0.05)
    vmap_ms, loop_ms = (1e3 * statistics.median(samples[k]) for k in ("vmap", "loop"))
    print(
        f"per-example Hessians of Σ tanh(xW)², {N} × R^10: vmap {vmap_ms:.2f} ms, "
        f"loop of cr.hessian {loop_ms:.2f} ms ({loop_ms / vmap_ms:.1f}x)"
    )


def _torch_step(params: Any, x: np.ndarray, y: np.ndarray) -> Any:
    import torch  # only with --torch

    tparams = [(torch.tensor(w), torch.tensor(b)) for w, b in params]
    tx, ty = torch.tensor(x), torch.tensor(y)

    def one(p: Any, xi: Any, yi: Any) -> Any:
        (w1, b1), (w2, b2) = p
        a1 = torch.tanh(xi[None] @ w1 + b1)
        return torch.nn.functional.cross_entropy(a1 @ w2 + b2, yi[None])

    step = torch.func.vmap(torch.func.grad(one), (None, 0, 0))
    return lambda: step(tparams, tx, ty)


if __name__ == "__main__":
    main()
