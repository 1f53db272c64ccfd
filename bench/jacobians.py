"""Forward against reverse mode: ``python bench/jacobians.py [REPEATS]``.

Times ``cr.jacfwd`` and ``cr.jacobian`` (reverse mode, JAX's jacrev) on a tall Jacobian
(8 inputs → 512 outputs: jacfwd should win) and a wide one (512 → 8: jacobian should win),
float64, and prints the median of REPEATS calls (default 30) in milliseconds. The two
results are checked equal first. Run on demand; not a timed test.
"""

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr


def mlp(n_in: int, n_out: int, hidden: int = 512) -> Callable[[Any], Any]:
    """x ↦ W3 tanh(W2 tanh(W1 x)): n_in → hidden → hidden → n_out."""
    rng = np.random.default_rng(0)
    w1 = cr.tensor(rng.normal(size=(hidden, n_in)) / np.sqrt(n_in))
    w2 = cr.tensor(rng.normal(size=(hidden, hidden)) / np.sqrt(hidden))
    w3 = cr.tensor(rng.normal(size=(n_out, hidden)) / np.sqrt(hidden))

    def f(x: Any) -> Any:
        return w3 @ cr.tanh(w2 @ cr.tanh(w1 @ x))

    return f


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(f"{'shape':<12}{'jacfwd (ms)':>14}{'jacobian (ms)':>16}  faster")
    for n_in, n_out in ((8, 512), (512, 8)):
        f = mlp(n_in, n_out)
        x = np.random.default_rng(1).normal(size=n_in)
        forward, reverse = cr.jacfwd(f), cr.jacobian(f)
        np.testing.assert_allclose(forward(x).data, reverse(x).data, rtol=1e-10, atol=1e-12)
        t_fwd = median_ms(lambda forward=forward, x=x: forward(x), repeats)
        t_rev = median_ms(lambda reverse=reverse, x=x: reverse(x), repeats)
        winner = "jacfwd" if t_fwd < t_rev else "jacobian"
        print(f"{f'{n_in} → {n_out}':<12}{t_fwd:>14.2f}{t_rev:>16.2f}  {winner}")


if __name__ == "__main__":
    main()
