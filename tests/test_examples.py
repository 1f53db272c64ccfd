"""The quick examples run as scripts (their assertions are part of the suite)."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICK = ["matrix_calculus.py", "custom_function.py"]


@pytest.mark.parametrize("name", QUICK)
def test_example_runs(name, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert capsys.readouterr().out  # each example reports what it checked


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="needs the Debian package dataset-fashion-mnist",
)
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_fashion_mnist_example_runs_on_a_slice(model, capsys, monkeypatch):
    argv = ["fashion_mnist.py", "--model", model, "--epochs", "1", "--limit", "600"]
    monkeypatch.setattr("sys.argv", argv)
    runpy.run_path(str(EXAMPLES / "fashion_mnist.py"), run_name="__main__")
    assert "test accuracy" in capsys.readouterr().out
