"""Every script of examples/lecture/ (one per slide) runs, and its assertions hold."""

import runpy
from pathlib import Path

import pytest

LECTURE = Path(__file__).resolve().parent.parent / "examples" / "lecture"
SCRIPTS = sorted(LECTURE.glob("*.py"))


def test_there_is_one_script_per_slide():
    slides = ["metrics", "functions", "gradients", "perceptron", "forward_backward",
              "autodiff", "caution"]  # fmt: skip
    names = [path.stem for path in SCRIPTS]
    assert len(names) == len(slides)
    for number, (name, slide) in enumerate(zip(names, slides), 1):
        assert name == f"{number:02d}_{slide}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_lecture_example_runs(script, capsys, monkeypatch):
    monkeypatch.chdir(script.parent)
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()  # each script shows what it checked
