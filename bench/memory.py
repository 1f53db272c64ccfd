"""Peak resident memory of 200 W2 training steps: ``python bench/memory.py FRAMEWORK``.

Prints two numbers in MiB: the RSS after imports and setup, and the peak RSS of the
process (``VmHWM``; ``ru_maxrss`` would carry the parent's peak over ``exec``). Run by
``bench/run.py`` in a fresh process per framework.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402


def status_mib(field: str) -> float:
    """A memory figure of /proc/self/status (VmRSS: now, VmHWM: the peak) in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    framework = sys.argv[1]
    step = {"chainrule": W.w2_chainrule, "numpy": W.w2_numpy, "torch": W.w2_torch}[framework]()
    step()
    setup = status_mib("VmRSS")
    for _ in range(200):
        step()
    peak = status_mib("VmHWM")
    print(f"{setup:.1f} {peak:.1f}")


if __name__ == "__main__":
    main()
