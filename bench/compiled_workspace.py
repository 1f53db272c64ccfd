"""``cr.compile``'s workspace (``compiled.buffers``) on and off: step time and page faults.

    python bench/compiled_workspace.py                 # W1-W3 compiled, 5 processes each
    python bench/compiled_workspace.py w3c --processes 9

Whether a fresh large array costs page faults depends on the state of the C library's
heap (glibc raises its mmap threshold after freeing a mapped block, and trims the heap's
top), which depends on everything else the process did: a process that also ran PyTorch
(as ``bench/paired.py`` does) may see none. So each measurement is its own process, a
plain script that runs only the compiled step, with the workspace on or off
(``buffers.MIN_BYTES`` out of reach), alternating; each prints the median of 15 blocks of
calls and the minor page faults per call (``resource.getrusage``), and the medians over
the processes are reported.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402

STEPS = {"w1c": (W.w1_compiled, 1000), "w2c": (W.w2_compiled, 50), "w3c": (W.w3_compiled, 10)}


def child(workload: str, workspace: bool) -> None:
    """One process: time the step, print 'seconds-per-call faults-per-call'."""
    from chainrule.compiled import buffers

    if not workspace:
        buffers.MIN_BYTES = 1 << 62
    build, calls = STEPS[workload]
    step = build()
    for _ in range(calls):
        step()
    times = []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(15):
        started = time.perf_counter()
        for _ in range(calls):
            step()
        times.append((time.perf_counter() - started) / calls)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(statistics.median(times), faults / (15 * calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help="w1c, w2c, w3c (default: all)")
    parser.add_argument("--processes", type=int, default=5, help="per workload and setting")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1] == "on")
        return
    for workload in args.workloads or sorted(STEPS):
        if workload not in STEPS:
            parser.error(f"unknown workload {workload!r}: choose from {sorted(STEPS)}")
        found: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
        for number in range(args.processes):
            for setting in ("on", "off") if number % 2 else ("off", "on"):
                command = [sys.executable, __file__, "--child", workload, setting]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                seconds, faults = map(float, out.stdout.split())
                found[setting].append((seconds, faults))
        medians = {k: statistics.median(s for s, _ in v) for k, v in found.items()}
        faults = {k: statistics.median(f for _, f in v) for k, v in found.items()}
        print(
            f"{workload}: workspace {medians['on'] * 1e6:.1f} µs ({faults['on']:.1f} page "
            f"faults per call), fresh arrays {medians['off'] * 1e6:.1f} µs "
            f"({faults['off']:.1f}), ratio {medians['on'] / medians['off']:.3f} "
            f"(medians of {args.processes} processes each)"
        )


if __name__ == "__main__":
    main()
