"""chainrule's benchmark suite: W1-W5 against a hand-written NumPy floor and PyTorch.

Run from the repository root: ``python bench/run.py`` (or ``python -m bench``);
``--quick`` for fewer rounds, ``--only w1,w2`` for some sections. PyTorch is timed when
installed (``pip install torch==2.13.0``, the optional ``bench`` extra).

Method: the frameworks are timed in interleaved rounds in one process (the machines are
shared and noisy, so only ratios measured side by side mean anything); each figure is the
median over rounds of the mean time per call within a round.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
SECTIONS = ("w1", "w2", "w3", "w4", "w5", "scaling", "jacobian", "memory")


# PyTorch's OpenMP workers keep spinning for a while after its last op (about 0.2 s here),
# and OpenBLAS's do the same after NumPy's: whatever runs next loses a core, and NumPy ran
# 2-3x slower right after PyTorch. So every timed block starts on a quiet machine, and the
# order rotates from round to round.
SETTLE_SECONDS = 0.25


def timed_rounds(
    steps: dict[str, Callable[[], object]],
    rounds: int,
    calls: dict[str, int],
    settle: float = SETTLE_SECONDS,
    warmup: int = 3,
) -> dict[str, list[float]]:
    """Seconds per call of each named step in each round: blocks of ``calls[name]`` calls,
    timed round-robin, each after a ``settle`` pause, the order rotating every round."""
    for step in steps.values():  # warm up (allocations, caches, lazy imports)
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            step = steps[name]
            time.sleep(settle)
            started = time.perf_counter()
            for _ in range(calls[name]):
                step()
            samples[name].append((time.perf_counter() - started) / calls[name])
    return samples


def interleaved(
    steps: dict[str, Callable[[], object]],
    rounds: int,
    budget: float,
    settle: float = SETTLE_SECONDS,
    warmup: int = 3,
) -> dict:
    """Median seconds per call for each named step, each block sized to about ``budget``
    seconds by timing one call (after the warm-up)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    calls = {}
    for name, step in steps.items():
        time.sleep(settle)
        started = time.perf_counter()
        step()
        once = max(time.perf_counter() - started, 1e-7)
        calls[name] = max(1, int(budget / once))
    samples = timed_rounds(steps, rounds, calls, settle, warmup=0)
    return {name: statistics.median(values) for name, values in samples.items()}


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _ratio(times: dict[str, float], baseline: str) -> str:
    """chainrule's time over ``baseline``'s, as "1.23×"; "—" where there is no baseline."""
    if baseline not in times:
        return f"{'—':>10}"
    return f"{times['chainrule'] / times[baseline]:>9.2f}×"


def _row(label: str, times: dict[str, float]) -> str:
    cells = [f"{label:<34}"]
    for name in ("numpy", "torch", "chainrule"):
        cells.append(f"{_fmt(times[name]) if name in times else '—':>11}")
    cells.append(_ratio(times, "numpy"))
    cells.append(_ratio(times, "torch"))
    return " ".join(cells)


def section_workloads(rounds: int, only: set[str]) -> None:
    print(f"{'workload':<34} {'numpy':>11} {'torch':>11} {'chainrule':>11} "
          f"{'cr/floor':>10} {'cr/torch':>10}")  # fmt: skip
    cases = [
        ("w1", "W1 overhead (16×16) fwd+bwd", W.w1_chainrule, W.w1_numpy, W.w1_torch),
        ("w2", "W2 MLP SGD step, batch 128", W.w2_chainrule, W.w2_numpy, W.w2_torch),
        ("w3", "W3 LeNet-5 SGD step, batch 64", W.w3_chainrule, None, W.w3_torch),
        ("w1", "W1 compiled (cr.compile)", W.w1_compiled, W.w1_numpy, W.w1_torch),
        ("w2", "W2 compiled, SGD in NumPy", W.w2_compiled, W.w2_numpy, W.w2_torch),
        ("w3", "W3 compiled, SGD in NumPy", W.w3_compiled, None, W.w3_torch),
        ("w5", "W5 Jacobian tanh(Wx), n=256", W.w5_jacobian_chainrule, W.w5_jacobian_numpy,
         W.w5_jacobian_torch),
        ("w5", "W5 Hessian Σtanh(Wx), n=100", W.w5_hessian_chainrule, W.w5_hessian_numpy,
         W.w5_hessian_torch),
    ]  # fmt: skip
    for key, label, ours, floor, torch in cases:
        if key not in only:
            continue
        steps = {"chainrule": ours()}
        if floor is not None:
            steps["numpy"] = floor()
        if HAS_TORCH:
            steps["torch"] = torch()
        print(_row(label, interleaved(steps, rounds, budget=0.2)), flush=True)


def section_epoch(rounds: int) -> None:
    """W4: a real training epoch, each framework with its own data loader."""
    data, source = W.fashion_mnist_rows()
    epochs = {"chainrule": W.w4_chainrule(data), "numpy": W.w4_numpy(data)}
    if HAS_TORCH:
        epochs["torch"] = W.w4_torch(data)
    label = "W4 MLP epoch (60k, batch 128)"
    print(_row(label, interleaved(epochs, max(1, rounds // 2), 0, warmup=1)))
    trained = 2 + max(1, rounds // 2)  # warm-up and sizing epochs included
    accuracy = ", ".join(f"{name} {e.accuracy():.2%}" for name, e in epochs.items())
    print(f"{'':34} test accuracy after {trained} epochs on {source}: {accuracy}")
    # the same number of steps on one fixed batch: the compute alone, no data pipeline
    steps = {"chainrule": W.w2_chainrule(), "numpy": W.w2_numpy()}
    if HAS_TORCH:
        steps["torch"] = W.w2_torch()
    batches = 60_000 // 128 + 1
    compute = {name: (lambda s=s: [s() for _ in range(batches)]) for name, s in steps.items()}
    print(
        _row("W4 469 steps on one batch", interleaved(compute, max(1, rounds // 2), 0, warmup=1))
    )
    # the CNN of `chainrule train --model cnn`: LeNet-5, Adam, batch 64
    cnn = {"chainrule": W.w4_cnn_chainrule(data)}
    if HAS_TORCH:
        cnn["torch"] = W.w4_cnn_torch(data)
    print(
        _row(
            "W4 LeNet-5 epoch (60k, batch 64)", interleaved(cnn, max(1, rounds // 2), 0, warmup=1)
        )
    )


def section_scaling(rounds: int) -> None:
    print("\nScaling of the W2 step (chainrule / NumPy floor at each size; linear in batch)")
    print(f"{'batch':>7} {'width':>6} {'numpy':>11} {'chainrule':>11} {'ratio':>7} "
          f"{'µs per example':>15}")  # fmt: skip
    for batch, width in [(32, 256), (128, 256), (512, 256), (1024, 256), (128, 512),
                         (128, 1024)]:  # fmt: skip
        times = interleaved(
            {"chainrule": W.w2_chainrule(batch, width), "numpy": W.w2_numpy(batch, width)},
            rounds, budget=0.05, settle=0,  # no PyTorch here: nothing spins in between
        )  # fmt: skip
        print(f"{batch:>7} {width:>6} {_fmt(times['numpy']):>11} {_fmt(times['chainrule']):>11}"
              f" {times['chainrule'] / times['numpy']:>6.2f}× "
              f"{times['chainrule'] / batch * 1e6:>14.2f}")  # fmt: skip


def section_jacobian_cost(rounds: int) -> None:
    """A Jacobian from one forward pass vs N separate forward+backward passes."""
    import chainrule as cr

    print("\nJacobian of tanh(Wx), R^n -> R^n: one call vs n separate backward passes")
    for n in (16, 64, 256):
        w, x = W._jacobian_data(n)
        wt = cr.tensor(w)
        jac = cr.jacobian(lambda v, wt=wt: (wt @ v).tanh())

        def rows(n=n, wt=wt, x=x) -> None:
            for k in range(n):
                v = cr.tensor(x, requires_grad=True)
                (wt @ v).tanh()[k].backward()

        times = interleaved(
            {"jacobian": lambda jac=jac, x=x: jac(x), "rows": rows}, rounds, 0.05, settle=0
        )
        print(
            f"  n={n:<4} cr.jacobian {_fmt(times['jacobian']):>10}   n backward passes "
            f"{_fmt(times['rows']):>10}   ({times['rows'] / times['jacobian']:.1f}× faster)"
        )


def section_memory() -> None:
    """Peak RSS of 200 W2 training steps, each framework in a fresh process."""
    print("\nPeak memory of W2 training (200 steps; fresh process each; RSS in MiB)")
    print(f"{'framework':<10} {'after setup':>12} {'peak':>8} {'growth':>8}")
    for name in ["chainrule", "numpy"] + (["torch"] if HAS_TORCH else []):
        result = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("memory.py")), name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        setup, peak = (float(v) for v in result.stdout.split())
        print(f"{name:<10} {setup:>12.1f} {peak:>8.1f} {peak - setup:>8.1f}")


def machine() -> str:
    import chainrule as cr

    parts = [platform.processor() or platform.machine(), f"{os.cpu_count()} cores",
             f"Python {platform.python_version()}", f"NumPy {np.__version__}",
             f"chainrule {cr.__version__}"]  # fmt: skip
    if HAS_TORCH:
        import torch

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    parser.add_argument("--only", default="", help="comma-separated: w1,w2,w3,w4,w5,scaling,"
                        "jacobian,memory")  # fmt: skip
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    only = {s.strip() for s in args.only.split(",") if s.strip()} or set(SECTIONS)
    print(machine())
    print(f"medians of {rounds} interleaved rounds; float32\n")
    started = time.perf_counter()
    if only & {"w1", "w2", "w3", "w5"}:
        section_workloads(rounds, only)
    if "w4" in only:
        section_epoch(rounds)
    if "scaling" in only:
        section_scaling(rounds)
    if "jacobian" in only:
        section_jacobian_cost(rounds)
    if "memory" in only:
        section_memory()
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
