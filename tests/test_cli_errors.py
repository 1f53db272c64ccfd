"""Every user mistake on the command line: one line on standard error, exit status 2,
no traceback, and nothing loaded or written before the mistake is found."""

import os
import subprocess
import sys

import pytest

from chainrule.cli import datasets as cli_datasets
from chainrule.cli import main

SMALL = ["--hidden", "16", "--batch-size", "64", "--epochs", "1", "--quiet"]


def run_main(argv, capsys):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status, err, *phrases):
    assert status == 2, err
    assert err.startswith("chainrule: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch digits run."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    return out


@pytest.fixture
def no_data_loading(monkeypatch):
    """Fail the test if a dataset is loaded: path mistakes must be found before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("the data was loaded before the mistake was reported")

    monkeypatch.setattr(cli_datasets, "load_splits", refuse)
    monkeypatch.setattr("chainrule.cli.train.load_splits", refuse)
    monkeypatch.setattr("chainrule.cli.models.load_splits", refuse)


# ------------------------------------------------------------------------ train --out
def test_out_naming_an_existing_file(tmp_path, capsys, no_data_loading):
    target = tmp_path / "taken"
    target.write_text("mine")
    status, _, err = run_main(["train", *SMALL, "--out", target], capsys)
    assert_one_line_error(status, err, f"--out {target}", "a file of that name exists")
    assert target.read_text() == "mine"


def test_out_below_a_file(tmp_path, capsys, no_data_loading):
    (tmp_path / "file").write_text("")
    status, _, err = run_main(["train", *SMALL, "--out", tmp_path / "file" / "sub"], capsys)
    assert_one_line_error(status, err, "--out", "is a file, not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_where_folders_cannot_be_created(tmp_path, capsys, no_data_loading):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    status, _, err = run_main(["train", *SMALL, "--out", locked / "a" / "b"], capsys)
    assert_one_line_error(status, err, "--out", "permission denied")


def test_out_on_a_missing_parent_is_created(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "run"
    status, _, err = run_main(["train", *SMALL, "--out", out], capsys)
    assert status == 0, err
    assert (out / "results.json").is_file()


def test_out_that_already_holds_a_run(trained, capsys, no_data_loading):
    status, _, err = run_main(["train", *SMALL, "--out", trained], capsys)
    assert_one_line_error(status, err, "already holds a run", "--resume")


def test_empty_out(capsys, no_data_loading):
    status, _, err = run_main(["train", *SMALL, "--out", ""], capsys)
    assert_one_line_error(status, err, "--out needs a folder name")


def test_out_with_resume(trained, tmp_path, capsys, no_data_loading):
    argv = ["train", "--resume", trained, "--out", tmp_path / "elsewhere"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "--out and --resume")
    assert not (tmp_path / "elsewhere").exists()


# ------------------------------------------------------------------- train, options
@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--seed", "-1"], ["--seed must be a non-negative integer"]),
        (["--seed", "x"], ["--seed expects an integer"]),
        (["--hidden", "256,,128"], ["--hidden expects comma-separated", "'256,,128'"]),
        (["--hidden", "256,"], ["--hidden expects comma-separated"]),
        (["--hidden", ""], ["--hidden expects comma-separated"]),
        (["--model", "perceptron", "--hidden", "32"], ["--hidden", "perceptron has no hidden"]),
        (["--model", "cnn", "--hidden", "32"], ["--hidden", "cnn has fixed layers"]),
        (["--epochs", "1.5"], ["--epochs expects an integer"]),
        (["--batch-size", "0"], ["--batch-size must be a positive integer"]),
        (["--lr", "nan"], ["--lr must be a positive number"]),
    ],
)
def test_bad_train_options(argv, phrases, tmp_path, capsys, no_data_loading):
    status, _, err = run_main(["train", *argv, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(status, err, *phrases)
    assert not (tmp_path / "run").exists()


def test_unused_options_are_warned_about_not_refused(tmp_path, capsys):
    argv = ["train", "--model", "perceptron", "--activation", "tanh", "--data-dir", tmp_path]
    status, _, err = run_main([*argv, "--epochs", "1", "--quiet", "--out", tmp_path / "r"], capsys)
    assert status == 0, err
    assert "chainrule: warning: --activation is ignored: the perceptron" in err
    assert "chainrule: warning: --data-dir is ignored" in err and "digits" in err
    config = (tmp_path / "r" / "config.json").read_text()
    assert '"data_dir": null' in config  # an unused folder is not recorded as the run's


# -------------------------------------------------------------- data and config files
def test_missing_data_dir_names_the_option_not_the_python_argument(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    argv = ["train", "--dataset", "fashion-mnist", "--data-dir", missing, "--out", tmp_path / "r"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, f"--data-dir {missing} does not exist")
    assert "root=" not in err


def test_data_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    argv = ["train", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "f"]
    status, _, err = run_main([*argv, "--out", tmp_path / "r"], capsys)
    assert_one_line_error(status, err, "is a file, not a folder")
    assert "does not exist" not in err


def test_data_dir_without_the_files_says_how_to_get_them(tmp_path, capsys):
    argv = ["train", "--dataset", "fashion-mnist", "--data-dir", tmp_path]
    status, _, err = run_main([*argv, "--out", tmp_path / "r"], capsys)
    assert_one_line_error(status, err, "dataset-fashion-mnist", "--data-dir", "train-images")
    assert "root=" not in err


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"epochs": "many"}', "epochs is 'many'"),
        ('{"colour": 1}', "unknown keys: colour"),
    ],
)
def test_corrupt_config_json_names_the_file(trained, tmp_path, capsys, text, phrase):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "checkpoint.safetensors"):
        (copy / name).write_bytes((trained / name).read_bytes())
    (copy / "config.json").write_text(text)
    for argv in (["train", "--resume", copy], ["evaluate", "--checkpoint", copy]):
        status, _, err = run_main(argv, capsys)
        assert_one_line_error(status, err, str(copy / "config.json"), phrase)


def test_corrupt_checkpoint_is_one_line(trained, tmp_path, capsys, no_data_loading):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_bytes((trained / "config.json").read_bytes())
    (copy / "checkpoint.safetensors").write_bytes(b"\x00" * 5)
    status, _, err = run_main(["evaluate", "--checkpoint", copy], capsys)
    assert_one_line_error(status, err, "checkpoint.safetensors")


# ------------------------------------------------------------- --resume and --epochs
def test_resume_asking_for_fewer_epochs_than_done(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    status, _, err = run_main(["train", "--resume", out, "--epochs", "1"], capsys)
    assert_one_line_error(status, err, "--epochs 1", "already trained 2 epochs")


def test_resume_of_a_missing_or_foreign_folder(tmp_path, capsys, no_data_loading):
    for target, phrase in [
        (tmp_path / "none", "is not a run directory: it does not exist"),
        (tmp_path, "is not a run directory (no config.json"),
    ]:
        status, _, err = run_main(["train", "--resume", target], capsys)
        assert_one_line_error(status, err, f"--resume {target}", phrase)


# ------------------------------------------------------------ evaluate and export
@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_checkpoint_that_is_not_a_run(command, tmp_path, capsys, no_data_loading):
    stray = tmp_path / "stray.safetensors"
    stray.write_bytes(b"")
    argv = [command, "--checkpoint", stray]
    if command == "export":
        argv += ["--onnx", tmp_path / "m.onnx"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "is not a checkpoint in a run directory")


def test_export_onnx_naming_a_folder(trained, tmp_path, capsys, no_data_loading):
    argv = ["export", "--checkpoint", trained, "--onnx", tmp_path]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, f"--onnx {tmp_path} is a folder")


def test_export_onnx_below_a_file(trained, tmp_path, capsys, no_data_loading):
    (tmp_path / "f").write_text("")
    argv = ["export", "--checkpoint", trained, "--onnx", tmp_path / "f" / "m.onnx"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "is a file, not a folder")


def test_export_without_the_onnx_extra(trained, tmp_path, capsys, monkeypatch, no_data_loading):
    monkeypatch.setitem(sys.modules, "onnx", None)
    argv = ["export", "--checkpoint", trained, "--onnx", tmp_path / "m.onnx"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "pip install 'chainrule[onnx]'")


def test_export_with_a_too_old_opset(trained, tmp_path, capsys, no_data_loading):
    argv = ["export", "--checkpoint", trained, "--onnx", tmp_path / "m.onnx", "--opset", "9"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "--opset 9")


def test_evaluate_with_an_unused_data_dir_warns(trained, tmp_path, capsys):
    status, out, err = run_main(
        ["evaluate", "--checkpoint", trained, "--data-dir", tmp_path], capsys
    )
    assert status == 0 and "accuracy" in out
    assert "warning: --data-dir is ignored" in err


# --------------------------------------------------------------- explain and general
@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["explain", "--seed", "-1"], "--seed must be a non-negative integer"),
        (["explain", "--layers", "4,5000,2"], "at most 12 layers of at most 2048 units"),
        (["explain", "--graph", ""], "--graph needs a file name"),
        (["train", "--epochs"], "expected one argument"),
        (["evaluate"], "--checkpoint"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_other_bad_input(argv, phrase, capsys):
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, phrase)


def test_explain_graph_naming_a_folder(tmp_path, capsys):
    status, out, err = run_main(["explain", "--graph", tmp_path / "g.svg" / ".."], capsys)
    assert_one_line_error(status, err, "--graph")
    assert out == ""


# ------------------------------------------------------------------- closed pipes
def _chainrule(*argv):
    return [sys.executable, "-m", "chainrule", *map(str, argv)]


@pytest.mark.parametrize("command", ["train", "evaluate", "explain", "help"])
def test_a_closed_pipe_ends_the_output_not_the_work(command, trained, tmp_path):
    """``chainrule ... | head -1``: no BrokenPipeError, exit 0, and train still finishes."""
    out = tmp_path / "piped"
    argv = {
        "train": ["train", "--hidden", "16", "--epochs", "3", "--out", out],
        "evaluate": ["evaluate", "--checkpoint", trained],
        "explain": ["explain", "--layers", "30,20,10"],
        "help": ["train", "--help"],
    }[command]
    process = subprocess.Popen(
        _chainrule(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "0"},
    )  # fmt: skip
    first = process.stdout.readline()
    process.stdout.close()  # what `head -1` does after its line
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0, stderr
    assert first.strip() and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    if command == "train":
        assert (out / "results.json").is_file()  # the run went on to the end
        assert '"epochs": 3' in (out / "results.json").read_text()


def test_head_in_a_shell_pipeline(trained, tmp_path):
    shell = f"{' '.join(_chainrule('evaluate', '--checkpoint', trained))} | head -1"
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shell}"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("test results:") and result.stdout.count("\n") == 1
    assert result.stderr == ""


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("chainrule ") and out.strip().split()[1][0].isdigit()


def test_help_lists_every_command_and_describes_train(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "explain", "export"):
        assert f"    {command}" in out, command
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train_help = capsys.readouterr().out
    assert "Train a model by backprop" in train_help and "results.json" in train_help
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    explain_help = capsys.readouterr().out
    assert "``" not in explain_help  # no raw reStructuredText
    assert "up to 12 layers of up to 2048 units" in " ".join(explain_help.split())


def test_module_entry_point_has_the_same_help():
    result = subprocess.run(_chainrule("--help"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "explain" in result.stdout and "export" in result.stdout
