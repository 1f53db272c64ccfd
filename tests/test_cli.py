"""The command line end to end: train, interrupt and resume exactly, evaluate, bad input."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.cli.datasets import load_splits
from chainrule.cli.rundir import RunDir, TrainConfig
from chainrule.cli.trainer import Trainer
from chainrule.training import Interrupted

SMALL = ["--hidden", "32", "--batch-size", "64", "--quiet"]


def run_main(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def checkpoint_arrays(path):
    return cr.load(Path(path) / "checkpoint.safetensors")


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_train_one_epoch_writes_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, _ = run_main(["train", "--epochs", "1", "--out", str(out), *SMALL], capsys)
    assert status == 0
    assert re.search(r"accuracy\s+\d+\.\d+%", stdout)
    assert "after 1 epoch\n" in stdout and "1 epochs" not in stdout
    for name in ("config.json", "checkpoint.safetensors", "metrics.jsonl", "curves.png"):
        assert (out / name).is_file(), name
    assert len(RunDir(out).read_metrics()) == 1
    assert RunDir(out).read_config().hidden == (32,)
    results = json.loads((out / "results.json").read_text())
    assert results["epochs"] == 1 and results["model"] == "mlp"
    printed = float(re.search(r"accuracy\s+(\S+)%", stdout).group(1))
    assert printed == pytest.approx(100 * results["test"]["accuracy"], abs=0.005)


def test_resume_extends_a_run_and_config_json_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    run_main(["train", "--epochs", "1", "--out", str(out), *SMALL], capsys)
    status, stdout, _ = run_main(["train", "--resume", str(out), "--epochs", "3"], capsys)
    assert status == 0
    assert f"resuming {out} after epoch 1 of 3" in stdout
    assert "test results: mlp on digits after 3 epochs" in stdout
    assert RunDir(out).read_config().epochs == 3
    assert json.loads((out / "results.json").read_text())["epochs"] == 3
    assert [r["epoch"] for r in RunDir(out).read_metrics()] == [1, 2, 3]


def test_resuming_a_finished_run_says_there_is_nothing_left(tmp_path, capsys):
    out = tmp_path / "run"
    run_main(["train", "--epochs", "2", "--out", str(out), *SMALL], capsys)
    before = (out / "checkpoint.safetensors").read_bytes()
    status, stdout, _ = run_main(["train", "--resume", str(out)], capsys)
    assert status == 0
    assert "nothing left to train" in stdout and "finished all its 2 epochs" in stdout
    assert "test results: mlp on digits after 2 epochs" in stdout
    assert (out / "checkpoint.safetensors").read_bytes() == before


def test_evaluate_and_resume_accept_the_checkpoint_file(tmp_path, capsys):
    out = tmp_path / "run"
    run_main(["train", "--epochs", "1", "--out", str(out), *SMALL], capsys)
    checkpoint = str(out / "checkpoint.safetensors")
    status, by_dir, _ = run_main(["evaluate", "--checkpoint", str(out)], capsys)
    assert status == 0
    status, by_file, _ = run_main(["evaluate", "--checkpoint", checkpoint], capsys)
    assert status == 0 and by_file.splitlines()[:3] == by_dir.splitlines()[:3]
    status, _, err = run_main(["train", "--resume", checkpoint, "--epochs", "2"], capsys)
    assert status == 0, err
    assert RunDir(out).finished_epochs() == 2


def test_evaluate_reports_the_same_test_accuracy(tmp_path, capsys):
    out = tmp_path / "run"
    _, trained, _ = run_main(["train", "--epochs", "2", "--out", str(out), *SMALL], capsys)
    status, evaluated, _ = run_main(["evaluate", "--checkpoint", str(out)], capsys)
    assert status == 0
    pick = lambda text: re.search(r"accuracy\s+(\S+)%", text).group(1)  # noqa: E731
    assert pick(trained) == pick(evaluated)


def test_diabetes_reports_mae_mse_and_rmse_as_the_root_of_mse(tmp_path, capsys):
    argv = ["train", "--dataset", "diabetes", "--epochs", "3", "--out", str(tmp_path / "r")]
    status, stdout, _ = run_main(argv, capsys)
    assert status == 0
    # the epoch lines say which figures are standardized and which in the target's units
    epoch_line = next(line for line in stdout.splitlines() if line.startswith("epoch   1/3"))
    assert "train MSE" in epoch_line and "(standardized targets)" in epoch_line
    assert "val RMSE" in epoch_line and "(target units)" in epoch_line
    results = json.loads((tmp_path / "r" / "results.json").read_text())["test"]
    assert set(results) == {"loss", "mae", "mse", "rmse"}
    values = {k: float(v) for k, v in re.findall(r"^\s+(MAE|MSE|RMSE)\s+(\S+)", stdout, re.M)}
    assert set(values) == {"MAE", "MSE", "RMSE"}
    assert math.isclose(values["RMSE"], math.sqrt(values["MSE"]), rel_tol=1e-3)
    assert values["MAE"] <= values["RMSE"]


def _trainer(tmp_path, name, epochs=3):
    config = TrainConfig(hidden=(32,), epochs=epochs, batch_size=64, seed=3)
    splits = load_splits(config.dataset, None, config.val_fraction)
    run = RunDir(tmp_path / name)
    run.create(config)
    return Trainer(config, splits, run, say=lambda line: None, progress=False)


def test_interrupted_and_resumed_run_ends_bit_for_bit_like_a_straight_run(tmp_path):
    straight = _trainer(tmp_path, "straight")
    straight.fit()

    interrupted = _trainer(tmp_path, "interrupted")
    original_step = interrupted.optimizer.step
    steps = []

    def step_then_sigint():  # a real SIGINT in the middle of the second epoch
        original_step()
        steps.append(1)
        if len(steps) == 30:
            os.kill(os.getpid(), signal.SIGINT)

    interrupted.optimizer.step = step_then_sigint
    with pytest.raises(Interrupted):
        interrupted.fit()
    assert RunDir(tmp_path / "interrupted").load_checkpoint()[2] == 1  # epoch 1 kept
    assert (tmp_path / "interrupted" / "curves.png").is_file()  # the curves so far, too

    resumed = Trainer(
        interrupted.config, interrupted.splits, interrupted.run, lambda line: None, False
    )
    resumed.restore()
    assert resumed.epoch == 1
    resumed.fit()
    assert_same_arrays(
        checkpoint_arrays(tmp_path / "straight"), checkpoint_arrays(tmp_path / "interrupted")
    )
    assert len(RunDir(tmp_path / "interrupted").read_metrics()) == 3


def test_sigint_to_the_process_then_resume_matches_a_straight_run(tmp_path):
    common = ["train", "--hidden", "64", "--batch-size", "16", "--epochs", "4", "--seed", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = tmp_path / "straight"
    subprocess.run(
        [sys.executable, "-m", "chainrule", *common, "--out", str(straight), "--quiet"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "chainrule", *common, "--out", str(run)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text().strip():
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.02)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in (0, 130), stderr
    if process.returncode == 130:
        assert "--resume" in stderr and "Traceback" not in stderr
    resumed = subprocess.run(
        [sys.executable, "-m", "chainrule", "train", "--resume", str(run), "--quiet"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert_same_arrays(checkpoint_arrays(straight), checkpoint_arrays(run))


def test_resume_refuses_a_changed_architecture(tmp_path, capsys):
    out = tmp_path / "run"
    run_main(["train", "--epochs", "1", "--out", str(out), *SMALL], capsys)
    status, _, err = run_main(["train", "--resume", str(out), "--hidden", "16"], capsys)
    assert status == 2 and "--hidden" in err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "--dataset", "imagenet"], "invalid choice"),
        (["train", "--lr", "0"], "--lr must be a positive number"),
        (["train", "--lr", "-0.1"], "--lr must be a positive number"),
        (["train", "--hidden", "256,abc"], "--hidden expects comma-separated"),
        (["train", "--hidden", "0"], "--hidden expects comma-separated"),
        (["train", "--epochs", "0"], "--epochs must be a positive integer"),
        (["train", "--model", "transformer"], "invalid choice"),
        (["train", "--dataset", "diabetes", "--model", "cnn", "--epochs", "1"], "image data"),
        (["evaluate", "--checkpoint", "/nonexistent/run"], "not a run directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(argv, expected, capsys, tmp_path):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "run")]
    status, _, err = run_main(argv, capsys)
    assert status == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_fashion_mnist_files_name_the_debian_package(tmp_path, capsys):
    argv = ["train", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path)]
    status, _, err = run_main([*argv, "--out", str(tmp_path / "run")], capsys)
    assert status == 2
    assert "dataset-fashion-mnist" in err and len(err.strip().splitlines()) == 1


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    run_main(["train", "--epochs", "1", "--out", str(a), *SMALL], capsys)
    run_main(["train", "--epochs", "1", "--out", str(b), "--hidden", "8", "--quiet"], capsys)
    (a / "checkpoint.safetensors").write_bytes((b / "checkpoint.safetensors").read_bytes())
    status, _, err = run_main(["evaluate", "--checkpoint", str(a)], capsys)
    assert status == 2
    assert "shape" in err and len(err.strip().splitlines()) == 1


def test_an_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    run_main(["train", "--epochs", "1", "--out", str(out), *SMALL], capsys)
    before = (out / "checkpoint.safetensors").read_bytes()
    status, _, err = run_main(["train", "--epochs", "1", "--out", str(out), *SMALL], capsys)
    assert status == 2 and "--resume" in err
    assert (out / "checkpoint.safetensors").read_bytes() == before


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt: "20260101-000000")
    for _ in range(2):
        status, _, err = run_main(["train", "--epochs", "1", *SMALL], capsys)
        assert status == 0, err
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["digits-mlp-20260101-000000", "digits-mlp-20260101-000000-2"]
