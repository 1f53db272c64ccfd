"""Data-parallel scaling: the same global batch on 1 and on 2 MPI ranks.

Trains the MLP 784-256-128-10 (Fashion-MNIST's shapes; random data, since only the time
matters) with Adam at a fixed global batch B: one rank computes all B examples, p ranks
B/p each and then average their gradients with one ``Allreduce``
(``cr.distributed.DistributedOptimizer``). For each world size it reports, as medians
over the timed steps on rank 0:

* compute: forward and backward of the rank's share of the batch;
* allreduce: ``DistributedOptimizer.synchronize`` (the flat-buffer ``Allreduce``, including
  any wait for the slower rank);
* alone: the same ``Allreduce`` started right after a barrier, i.e. the communication cost
  alone, and the bandwidth it implies: 2(p-1)/p of the buffer's bytes in that time;
* step: the whole step (compute, allreduce and the optimizer's update);
* throughput: B / step, in examples per second;
* efficiency: throughput(p) / (p · throughput(1)), 100 % for perfect scaling.

Each rank runs NumPy with ``--threads`` BLAS threads (default 1), so that p ranks use p
cores and one rank does not already use them all.

Run: ``python bench/distributed.py`` (needs ``pip install 'chainrule[mpi]'``);
``--ranks 1,2,4 --batch-size 256 --steps 200`` to change the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LAYERS = (784, 256, 128, 10)
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker(batch_size: int, steps: int, warmup: int, out: Path) -> None:
    """One rank of the benchmark: time ``steps`` training steps, rank 0 writes the medians."""
    import chainrule as cr
    from chainrule import distributed as dist
    from chainrule import nn

    dist.init()
    world, rank = dist.world_size(), dist.rank()
    if batch_size % world:
        raise ValueError(f"--batch-size {batch_size} is not divisible by {world} ranks")
    cr.manual_seed(0)
    model = cr.models.mlp(LAYERS[0], LAYERS[1:-1], LAYERS[-1], flatten=False)
    dist.broadcast_parameters(model)
    optimizer = dist.DistributedOptimizer(cr.optim.Adam(model.parameters(), lr=1e-3))
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(rank)
    local = batch_size // world
    x = cr.tensor(rng.random((local, LAYERS[0]), dtype=np.float32))
    y = cr.tensor(rng.integers(0, LAYERS[-1], local))

    times: dict[str, list[float]] = {"compute": [], "allreduce": [], "step": []}
    dist.barrier()
    for step in range(warmup + steps):
        started = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        computed = time.perf_counter()
        optimizer.synchronize()
        reduced = time.perf_counter()
        optimizer.optimizer.step()
        finished = time.perf_counter()
        if step >= warmup:
            times["compute"].append(computed - started)
            times["allreduce"].append(reduced - computed)
            times["step"].append(finished - started)
    for _ in range(steps):
        dist.barrier()
        started = time.perf_counter()
        optimizer.synchronize()
        times.setdefault("alone", []).append(time.perf_counter() - started)
    if dist.is_main():
        medians = {name: statistics.median(values) for name, values in times.items()}
        parameters = sum(p.size for p in model.parameters())
        out.write_text(json.dumps({"world": world, "parameters": parameters, **medians}))


def _launch(ranks: int, args: argparse.Namespace, out: Path) -> dict:
    env = dict(os.environ, **{name: str(args.threads) for name in _THREAD_VARIABLES})
    command = [
        "mpiexec", "-n", str(ranks), sys.executable, __file__, "--worker",
        "--batch-size", str(args.batch_size), "--steps", str(args.steps),
        "--warmup", str(args.warmup), "--out", str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True, env=env, timeout=600)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="1,2", help="world sizes to compare, e.g. 1,2,4")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch B")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per world size")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per rank")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.batch_size, args.steps, args.warmup, args.out)
        return
    if shutil.which("mpiexec") is None:
        sys.exit("bench/distributed.py needs mpiexec: pip install 'chainrule[mpi]'")

    sizes = [int(part) for part in args.ranks.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        rows = [_launch(p, args, Path(folder) / f"{p}.json") for p in sizes]
    # speed-up against one rank (extrapolated linearly when the smallest world is larger)
    per_rank = args.batch_size / rows[0]["step"] / rows[0]["world"]
    count = rows[0]["parameters"]
    print(f"MLP {'-'.join(map(str, LAYERS))} ({count:,} float32 parameters: "
          f"{4 * count / 1e6:.2f} MB of gradients per step), Adam, global batch "
          f"{args.batch_size}, {args.threads} BLAS thread(s) per rank, {os.cpu_count()} "
          f"CPUs; medians of {args.steps} steps")  # fmt: skip
    columns = [
        ("ranks", 5), ("batch/rank", 10), ("compute ms", 10), ("allreduce ms", 12),
        ("alone ms", 8), ("GB/s", 5), ("step ms", 8), ("examples/s", 10), ("speed-up", 8),
        ("efficiency", 10),
    ]  # fmt: skip
    header = "  ".join(f"{name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        p = row["world"]
        throughput = args.batch_size / row["step"]
        speedup = throughput / per_rank
        wire = f"{2 * (p - 1) / p * 4 * count / row['alone'] / 1e9:.1f}" if p > 1 else "-"
        print(f"{p:>5}  {args.batch_size // p:>10}  {1e3 * row['compute']:>10.2f}  "
              f"{1e3 * row['allreduce']:>12.2f}  {1e3 * row['alone']:>8.2f}  {wire:>5}  "
              f"{1e3 * row['step']:>8.2f}  {throughput:>10,.0f}  {speedup:>7.2f}x  "
              f"{100 * speedup / p:>9.0f}%")  # fmt: skip


if __name__ == "__main__":
    main()
