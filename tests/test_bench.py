"""The benchmark suite still runs: every workload builds and takes a step (no timing is
asserted; speed is checked by running ``python bench/run.py``, never by unit tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import paired
        import run
        import workloads

        yield workloads, run, paired
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize(
    "name",
    ["w1_chainrule", "w1_numpy", "w2_chainrule", "w2_numpy", "w3_chainrule",
     "w1_compiled", "w2_compiled", "w3_compiled",
     "w5_jacobian_chainrule", "w5_jacobian_numpy", "w5_hessian_chainrule", "w5_hessian_numpy"],
)  # fmt: skip
def test_every_workload_takes_a_step(bench, name):
    workloads, _, _ = bench
    step = getattr(workloads, name)()
    step()
    step()


def test_the_jacobian_workload_matches_its_closed_form(bench):
    workloads, _, _ = bench
    ours = workloads.w5_jacobian_chainrule(16)()
    np.testing.assert_allclose(ours.data, workloads.w5_jacobian_numpy(16)(), rtol=1e-5, atol=1e-6)
    hessian = workloads.w5_hessian_chainrule(8)()
    np.testing.assert_allclose(hessian.data, workloads.w5_hessian_numpy(8)(), rtol=1e-4, atol=1e-5)


def test_the_epoch_workloads_train_and_report_accuracy(bench):
    workloads, _, _ = bench
    rng = np.random.default_rng(0)
    data = (
        rng.random((300, 784), dtype=np.float32), rng.integers(0, 10, 300),
        rng.random((50, 784), dtype=np.float32), rng.integers(0, 10, 50),
    )  # fmt: skip
    builders = [workloads.w4_chainrule, workloads.w4_numpy, workloads.w4_cnn_chainrule]
    if importlib.util.find_spec("torch") is not None:
        builders += [workloads.w4_torch, workloads.w4_cnn_torch]
    for build in builders:
        epoch = build(data)
        epoch()
        assert 0.0 <= epoch.accuracy() <= 1.0


def test_interleaved_and_paired_return_positive_medians(bench):
    _, run, paired = bench
    times = run.interleaved({"a": lambda: None, "b": lambda: sum(range(10))}, 2, 0.0, 0.0, 1)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())
    first, second, ratio = paired.paired(lambda: None, lambda: None, calls=3, rounds=2, pause=0.0)
    assert first > 0 and second > 0 and ratio > 0


def test_a_ratio_without_a_floor_is_a_dash_not_nan(bench):
    _, run, _ = bench
    row = run._row("W3 LeNet-5 SGD step, batch 64", {"chainrule": 2.0, "torch": 1.0})
    assert "nan" not in row
    assert row.split()[-2:] == ["—", "2.00×"]
    full = run._row("W2", {"chainrule": 3.0, "numpy": 2.0, "torch": 1.5})
    assert full.split()[-2:] == ["1.50×", "2.00×"]


def test_the_minimal_python_engine_computes_w1s_gradients(bench):
    # bench/python_floor.py times it as the floor of any engine written in Python: its
    # gradients must be W1's, or its time would be for other work
    import python_floor

    python_floor._check()
    step = python_floor.w1_minimal()
    step()
    step()
