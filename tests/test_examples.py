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
