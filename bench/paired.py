"""Two steps timed in alternation, with pauses: a quick, fair ratio for one workload.

    python bench/paired.py w1            # chainrule vs PyTorch eager
    python bench/paired.py w2 --against numpy
    python bench/paired.py w3
    python bench/paired.py w1c --against numpy   # W1 through cr.compile
    python bench/paired.py cnn-epoch --rounds 5 --warmup 1   # LeNet-5 epochs, Fashion-MNIST

Each round times a block of calls of one step, pauses (PyTorch's OpenMP workers spin for
about 0.2 s after its last op), then the other, alternating which goes first. Prints both
medians and the median of the per-round ratios, which is steadier than a ratio of
medians when the machine's speed drifts.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402
from run import timed_rounds  # noqa: E402


@functools.cache
def _fashion_mnist() -> tuple:
    data, source = W.fashion_mnist_rows()
    print(f"data: {source}")
    return data


WORKLOADS = {
    "w1": (W.w1_chainrule, W.w1_numpy, W.w1_torch, 500),
    "w2": (W.w2_chainrule, W.w2_numpy, W.w2_torch, 100),
    "w3": (W.w3_chainrule, None, W.w3_torch, 20),
    # the loss and gradients through cr.compile (W2, W3: the SGD update in NumPy)
    "w1c": (W.w1_compiled, W.w1_numpy, W.w1_torch, 500),
    "w2c": (W.w2_compiled, W.w2_numpy, W.w2_torch, 100),
    "w3c": (W.w3_compiled, None, W.w3_torch, 20),
    "jacobian": (W.w5_jacobian_chainrule, W.w5_jacobian_numpy, W.w5_jacobian_torch, 50),
    "hessian": (W.w5_hessian_chainrule, W.w5_hessian_numpy, W.w5_hessian_torch, 50),
    "cnn-epoch": (
        lambda: W.w4_cnn_chainrule(_fashion_mnist()),
        None,
        lambda: W.w4_cnn_torch(_fashion_mnist()),
        1,
    ),
}


def paired(
    a: Callable[[], object],
    b: Callable[[], object],
    calls: int,
    rounds: int,
    pause: float,
    warmup: int = 5,
) -> tuple[float, float, float]:
    """(median seconds per call of a, of b, median of the per-round ratios a/b)."""
    samples = timed_rounds({"a": a, "b": b}, rounds, {"a": calls, "b": calls}, pause, warmup)
    ratios = [x / y for x, y in zip(samples["a"], samples["b"])]
    return (
        statistics.median(samples["a"]),
        statistics.median(samples["b"]),
        statistics.median(ratios),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--against", choices=("torch", "numpy"), default="torch")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pause", type=float, default=0.25, help="seconds before each block")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls of each first")
    args = parser.parse_args()
    ours, floor, torch, calls = WORKLOADS[args.workload]
    other = torch if args.against == "torch" else floor
    if other is None:
        parser.error(f"{args.workload} has no {args.against} version")
    mine, theirs, ratio = paired(ours(), other(), calls, args.rounds, args.pause, args.warmup)
    print(
        f"{args.workload}: chainrule {mine * 1e6:.1f} µs, {args.against} {theirs * 1e6:.1f} µs, "
        f"median ratio {ratio:.3f} ({args.rounds} rounds of {calls} calls)"
    )


if __name__ == "__main__":
    main()
