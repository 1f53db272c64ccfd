"""``cr.compile`` on W1-W3: compile time (the first call) and ratios from paired runs.

    python bench/compiled.py              # compile times, then the three paired ratios
    python bench/compiled.py --rounds 25

The compile time is the first call of the step: two traces of the function, the program
built, compiled, and run once to check it against the eager trace; the steady call after
it is shown for scale. The ratios come from ``paired.paired`` (blocks of calls timed in
alternation, with pauses; the median of the per-round ratios).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402
from paired import paired  # noqa: E402

PAIRS = [
    ("W1 compiled / NumPy floor", W.w1_compiled, W.w1_numpy, 500),
    ("W2 compiled / NumPy floor", W.w2_compiled, W.w2_numpy, 100),
    ("W3 compiled / chainrule eager", W.w3_compiled, W.w3_chainrule, 20),
]


def compile_time(build: W.Step, later: int = 5) -> tuple[float, float]:
    """(seconds of the first call, median seconds of the next ``later`` calls)."""
    step = build()
    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    times = []
    for _ in range(later):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pause", type=float, default=0.25)
    args = parser.parse_args()
    for name, build in (("W2", W.w2_compiled), ("W3", W.w3_compiled)):
        first, steady = compile_time(build)
        print(f"{name}: first call (compile) {first * 1e3:.1f} ms, then {steady * 1e3:.2f} ms")
    for label, ours, theirs, calls in PAIRS:
        mine, other, ratio = paired(ours(), theirs(), calls, args.rounds, args.pause)
        print(
            f"{label}: {mine * 1e6:.1f} µs / {other * 1e6:.1f} µs, median ratio {ratio:.3f} "
            f"({args.rounds} rounds of {calls} calls)"
        )


if __name__ == "__main__":
    main()
