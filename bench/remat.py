"""Peak memory of checkpointing: ``python bench/remat.py``.

A 20-block MLP, each block Linear(128, 512), tanh, Linear(512, 128), tanh (a transformer's
MLP block: its wide hidden activation is what checkpointing drops), batch 1024, float32, is
trained for one step, plainly and with every block wrapped in ``cr.checkpoint``; ``tracemalloc``
(which sees NumPy's allocations) gives the peak of the forward + backward above what was
allocated before it, in MiB, and the step's time. Run on demand; not a timed test.
"""

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr

BLOCKS, WIDTH, HIDDEN, BATCH = 20, 128, 512, 1024


def step(blocks: list[Any], x: Any, wrap: Callable[[Any], Any]) -> float:
    """One forward and backward pass; returns the loss."""
    h = x
    for block in blocks:
        h = wrap(block)(h)
    loss = (h * h).mean()
    loss.backward()
    return float(loss.item())


def measure(remat: bool) -> tuple[float, float, float]:
    cr.manual_seed(0)
    blocks = [
        cr.nn.Sequential(
            cr.nn.Linear(WIDTH, HIDDEN), cr.nn.Tanh(), cr.nn.Linear(HIDDEN, WIDTH), cr.nn.Tanh()
        )
        for _ in range(BLOCKS)
    ]
    x = cr.tensor(np.random.default_rng(0).standard_normal((BATCH, WIDTH)).astype(np.float32))
    wrap = cr.checkpoint if remat else (lambda block: block)
    step(blocks, x, wrap)  # warm up; .grad then exists, so the measured step allocates none
    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    start = time.perf_counter()
    loss = step(blocks, x, wrap)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - before) / 2**20, seconds, loss


def main() -> None:
    results = {}
    print(f"{BLOCKS} blocks of {WIDTH} → {HIDDEN} → {WIDTH} with tanh, batch {BATCH}")
    print(f"{'':<14}{'peak (MiB)':>12}{'time (s)':>10}")
    for remat in (False, True):
        peak, seconds, loss = measure(remat)
        results[remat] = loss
        name = "cr.checkpoint" if remat else "plain"
        print(f"{name:<14}{peak:>12.1f}{seconds:>10.2f}")
    assert np.isclose(results[False], results[True], rtol=1e-6)


if __name__ == "__main__":
    main()
