"""Peak resident memory of 200 W2 training steps: ``python bench/memory.py FRAMEWORK``.

Prints two numbers in MiB: the RSS after imports and setup, and the peak RSS of the
process (``ru_maxrss``). Run by ``bench/run.py`` in a fresh process per framework.
"""

import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    framework = sys.argv[1]
    step = {"chainrule": W.w2_chainrule, "numpy": W.w2_numpy, "torch": W.w2_torch}[framework]()
    step()
    setup = rss_mib()
    for _ in range(200):
        step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{setup:.1f} {peak:.1f}")


if __name__ == "__main__":
    main()
