"""cr.distributed: the single-process no-op world in-process, then real 2-rank MPI jobs.

The MPI tests launch ``mpiexec -n 2`` as a subprocess (about 2 s each) and skip, saying
why, when mpi4py or mpiexec is missing (``pip install 'chainrule[mpi]'`` provides both).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import distributed as dist
from chainrule import nn
from chainrule.cli.datasets import load_splits
from chainrule.cli.rundir import RunDir, TrainConfig
from chainrule.cli.trainer import Trainer

LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
TIMEOUT = 120  # seconds: only reached if a job hangs, which is the failure


@pytest.fixture
def single_process(monkeypatch):
    """A fresh, un-joined world with no launcher variables (as in a plain `python`)."""
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(dist, "_initialized", False)
    monkeypatch.setattr(dist, "_comm", None)
    monkeypatch.setattr(dist, "_mpi", None)


def _model(seed=0):
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def _train_steps(model, optimizer, rng, steps=3):
    for _ in range(steps):
        x = cr.tensor(rng.standard_normal((6, 4)).astype(np.float32))
        y = cr.tensor(rng.integers(0, 3, 6))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


# ---------------------------------------------------------------- one process, no MPI
def test_a_plain_process_is_a_world_of_one_without_importing_mpi4py(single_process):
    had_mpi4py = "mpi4py" in sys.modules
    dist.init()
    dist.init()  # idempotent
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    dist.barrier()
    assert dist.broadcast_object({"a": 1}) == {"a": 1}
    if not had_mpi4py:
        assert "mpi4py" not in sys.modules


def test_allreduce_mean_of_one_rank_is_the_value(single_process):
    assert dist.allreduce_mean(3) == 3.0 and isinstance(dist.allreduce_mean(3), float)
    assert isinstance(dist.allreduce_mean(cr.tensor(2.5)), float)
    values = np.array([[1.0, 2.0], [3.0, 4.5]], dtype=np.float32)
    mean = dist.allreduce_mean(values)
    assert mean.dtype == np.float64 and mean.shape == (2, 2)
    np.testing.assert_array_equal(mean, values)
    mean[0, 0] = 9.0
    assert values[0, 0] == 1.0  # a copy: the input is never changed


def test_broadcasts_leave_one_process_unchanged(single_process):
    model = _model()
    before = model.state_dict()
    dist.broadcast_parameters(model)
    optimizer = cr.optim.Adam(model.parameters(), lr=0.01)
    dist.broadcast_optimizer_state(optimizer)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])
    with pytest.raises(ValueError, match="root"):
        dist.broadcast_parameters(model, root=1)


@pytest.mark.parametrize("make", [
    lambda params: cr.optim.SGD(params, lr=0.1, momentum=0.9),
    lambda params: cr.optim.Adam(params, lr=0.01),
])  # fmt: skip
def test_distributed_optimizer_on_one_process_steps_like_the_wrapped_one(single_process, make):
    plain_model, wrapped_model = _model(), _model()
    plain = make(plain_model.parameters())
    wrapped = dist.DistributedOptimizer(make(wrapped_model.parameters()))
    _train_steps(plain_model, plain, np.random.default_rng(5))
    _train_steps(wrapped_model, wrapped, np.random.default_rng(5))
    for (name, a), b in zip(plain_model.state_dict().items(), wrapped_model.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert wrapped.param_groups is wrapped.optimizer.param_groups
    assert wrapped.state is wrapped.optimizer.state
    state = wrapped.state_dict()
    assert state.keys() == plain.state_dict().keys() and state["state"]


def test_distributed_optimizer_is_an_optimizer_for_schedulers_and_state(single_process):
    model = _model()
    optimizer = dist.DistributedOptimizer(cr.optim.SGD(model.parameters(), lr=0.1))
    scheduler = cr.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    optimizer.step()
    scheduler.step()
    assert optimizer.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    other = dist.DistributedOptimizer(cr.optim.SGD(_model().parameters(), lr=0.1))
    other.load_state_dict(optimizer.state_dict())
    assert other.param_groups[0]["lr"] == pytest.approx(0.05)
    assert "DistributedOptimizer(SGD" in repr(optimizer)
    with pytest.raises(TypeError, match="wraps a cr.optim optimizer"):
        dist.DistributedOptimizer(model)
    with pytest.raises(TypeError, match="wraps a cr.optim optimizer"):
        dist.DistributedOptimizer(optimizer)


def test_closure_is_evaluated_before_the_step(single_process):
    model = _model()
    optimizer = dist.DistributedOptimizer(cr.optim.SGD(model.parameters(), lr=0.1))
    x, y = cr.tensor(np.ones((2, 4), np.float32)), cr.tensor(np.array([0, 2]))
    before = model.state_dict()

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    assert np.isfinite(loss.item())
    changed = [not np.array_equal(a, before[k]) for k, a in model.state_dict().items()]
    assert all(changed)


def test_launched_by_mpiexec_without_mpi4py_says_how_to_install_it(single_process, monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # makes `import mpi4py` fail
    with pytest.raises(ImportError, match=r"2 processes.*chainrule\[mpi\]"):
        dist.init()


def test_trainer_refuses_a_global_batch_the_ranks_cannot_share(monkeypatch):
    monkeypatch.setattr(dist, "world_size", lambda: 3)
    monkeypatch.setattr(dist, "rank", lambda: 0)
    config = TrainConfig(hidden=(8,), epochs=1, batch_size=64)
    splits = load_splits(config.dataset, None, config.val_fraction)
    with pytest.raises(ValueError, match="divisible by the 3 ranks"):
        Trainer(config, splits, RunDir("unused"), say=lambda line: None, progress=False)


# ---------------------------------------------------------------- real MPI jobs
def _mpi_missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'chainrule[mpi]')"
    if shutil.which("mpiexec") is None:
        return "no mpiexec on PATH (pip install 'chainrule[mpi]' installs MPICH's)"
    return None


@pytest.fixture
def mpiexec():
    """Run ``mpiexec -n 2 ARGS`` in a fresh process group; kill the group if it hangs."""
    reason = _mpi_missing()
    if reason:
        print(f"skipping the MPI test: {reason}")
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"

    def run(*args, cwd=None):
        process = subprocess.Popen(
            ["mpiexec", "-n", "2", *map(str, args)], cwd=cwd, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"mpiexec hung for {TIMEOUT} s:\n{out}\n{err}")
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    return run


EQUIVALENCE = r"""
import json, sys
import numpy as np
import chainrule as cr
from chainrule import distributed as dist, nn

def train(dtype, make_optimizer, batch, shard):
    cr.manual_seed(7)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    if dtype == "float64":
        model.double()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((208, 5)).astype(dtype)  # 6 batches of 32, a last one of 16
    y = rng.integers(0, 3, 208)
    optimizer = make_optimizer(model.parameters())
    if shard is not None:
        dist.broadcast_parameters(model)
        optimizer = dist.DistributedOptimizer(optimizer)
    loader = cr.data.DataLoader(
        cr.data.TensorDataset(x, y), batch_size=batch, shuffle=True, seed=3, shard=shard
    )
    losses = []
    for epoch in range(3):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            losses.append(dist.allreduce_mean(loss.item()) if shard else loss.item())
    return {k: v.tolist() for k, v in model.state_dict().items()}, losses

optimizers = {
    "sgd": lambda p: cr.optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: cr.optim.Adam(p, lr=0.01),
}
p, r = dist.world_size(), dist.rank()
results = {"world": p, "rank": r}
for dtype in ("float64", "float32"):
    for name, make in optimizers.items():
        results[f"{dtype}-{name}-ranks"] = train(dtype, make, 32 // p, (r, p))
        if dist.is_main():
            results[f"{dtype}-{name}-single"] = train(dtype, make, 32, None)
with open(sys.argv[1] + f".{r}.json", "w") as stream:
    json.dump(results, stream)
"""


def test_two_ranks_at_half_batch_end_with_the_weights_of_one_process(mpiexec, tmp_path):
    script = tmp_path / "equivalence.py"
    script.write_text(EQUIVALENCE)
    result = mpiexec(sys.executable, script, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    ranks = [json.loads((tmp_path / f"out.{r}.json").read_text()) for r in (0, 1)]
    assert [(d["world"], d["rank"]) for d in ranks] == [(2, 0), (2, 1)]
    tolerances = {"float64": 1e-10, "float32": 1e-5}
    for dtype, rtol in tolerances.items():
        for name in ("sgd", "adam"):
            single, single_losses = ranks[0][f"{dtype}-{name}-single"]
            for result in ranks:
                weights, losses = result[f"{dtype}-{name}-ranks"]
                assert weights.keys() == single.keys()
                for key in single:
                    expected = np.asarray(single[key])
                    actual = np.asarray(weights[key])
                    scale = np.abs(expected).max()
                    assert np.abs(actual - expected).max() <= rtol * scale, (dtype, name, key)
                # the mean of the ranks' half-batch losses is the full batch's loss
                np.testing.assert_allclose(losses, single_losses, rtol=rtol * 10)
            assert ranks[0][f"{dtype}-{name}-ranks"] == ranks[1][f"{dtype}-{name}-ranks"]


def _single_process_run(tmp_path, config):
    run = RunDir(tmp_path / "single")
    run.create(config)
    splits = load_splits(config.dataset, None, config.val_fraction)
    Trainer(config, splits, run, say=lambda line: None, progress=False).fit()
    return cr.load(run.checkpoint_path)


def test_cli_under_mpiexec_trains_one_run_directory_and_resumes(mpiexec, tmp_path):
    # diabetes: 319 training examples, so at a global batch of 106 the last batch has one
    # example and rank 1 gets none: the ranks must still match one process exactly.
    common = ["--dataset", "diabetes", "--hidden", "16", "--batch-size", "106"]
    first = mpiexec("chainrule", "train", *common, "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs  # rank 0 alone chose the name and wrote the directory
    assert first.stdout.count("test results") == 1  # rank 0 alone prints
    assert "on 2 ranks" in first.stdout and "RMSE" in first.stdout
    assert RunDir(runs[0]).load_checkpoint()[2] == 1

    resumed = mpiexec("chainrule", "train", "--resume", runs[0], "--epochs", "3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and resumed.stdout.count("test results") == 1
    assert [r["epoch"] for r in RunDir(runs[0]).read_metrics()] == [1, 2, 3]

    config = replace(RunDir(runs[0]).read_config(), epochs=3)
    assert config.batch_size == 106
    expected = _single_process_run(tmp_path, config)
    actual = cr.load(RunDir(runs[0]).checkpoint_path)
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key].dtype == expected[key].dtype == np.float32
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)


FAULTY_CLI = r"""
import sys
from chainrule import distributed
from chainrule.cli import main

steps = []
original = distributed.DistributedOptimizer.step

def step_then_fail(self, closure=None):
    steps.append(1)
    if distributed.rank() == 1 and len(steps) == 30:  # in the second epoch
        raise RuntimeError("injected fault on rank 1")
    return original(self, closure)

distributed.DistributedOptimizer.step = step_then_fail
sys.exit(main(sys.argv[1:]))
"""


def test_a_failing_rank_stops_the_cli_job_and_keeps_the_last_checkpoint(mpiexec, tmp_path):
    script = tmp_path / "faulty.py"
    script.write_text(FAULTY_CLI)
    out = tmp_path / "run"
    argv = ["train", "--hidden", "16", "--batch-size", "64", "--epochs", "50", "--out", out]
    result = mpiexec(sys.executable, script, *argv)
    assert result.returncode != 0
    assert "injected fault on rank 1" in result.stderr
    assert "rank 1 of 2" in result.stderr
    # one message, from the failing rank, and not MPICH's "called MPI_Abort" after it
    assert result.stderr.count("chainrule") == 1 and "MPI_Abort" not in result.stderr
    model_state, optimizer_state, epoch = RunDir(out).load_checkpoint()
    assert epoch == 1 and optimizer_state["state"]
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    model.load_state_dict(model_state)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "fashion-mnist", "--data-dir", "/nonexistent/fm"], "does not exist"),
        (["--resume", "/nonexistent/run"], "is not a run directory"),
        (["--hidden", "16", "--model", "perceptron"], "--hidden"),
    ],
)
def test_a_mistake_that_every_rank_makes_is_reported_once(mpiexec, tmp_path, argv, message):
    """Setup errors (options, paths, data) are agreed on by the ranks: one line, exit 2."""
    result = mpiexec(sys.executable, "-m", "chainrule", "train", *argv, "--quiet", cwd=tmp_path)
    shown = f"return code {result.returncode}; stderr:\n{result.stderr}"
    assert result.returncode == 2, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule: error: "), shown
    assert message in lines[0], shown


UNCAUGHT = r"""
import numpy as np
from chainrule import distributed as dist

dist.init()
for step in range(1000):
    if dist.rank() == 1 and step == 3:
        raise ValueError("rank 1 fails on purpose at step 3")
    dist.allreduce_mean(np.ones(4))  # rank 0 would wait here forever without the abort
"""


def test_an_uncaught_exception_on_one_rank_aborts_the_whole_job(mpiexec, tmp_path):
    script = tmp_path / "uncaught.py"
    script.write_text(textwrap.dedent(UNCAUGHT))
    result = mpiexec(sys.executable, script)
    shown = f"return code {result.returncode}; stderr:\n{result.stderr}"
    assert result.returncode != 0, shown
    assert "Traceback" in result.stderr, shown
    assert "ValueError: rank 1 fails on purpose at step 3" in result.stderr, shown
    assert "rank 1 of 2 raised ValueError; aborting every rank" in result.stderr, shown


def test_the_worker_scripts_run_on_one_process_too(tmp_path):
    """The same script runs without mpiexec: the no-op world trains it as one process."""
    script = tmp_path / "equivalence.py"
    script.write_text(EQUIVALENCE)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    subprocess.run([sys.executable, script, tmp_path / "out"], check=True, env=env,
                   timeout=TIMEOUT)  # fmt: skip
    result = json.loads(Path(f"{tmp_path / 'out'}.0.json").read_text())
    assert result["world"] == 1
    assert result["float64-sgd-ranks"] == result["float64-sgd-single"]
