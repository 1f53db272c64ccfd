"""Every ``chainrule`` command in the README and the docs runs, as written.

The ```bash blocks of each document are read in order; each line that runs ``chainrule``
(alone, after ``&&``, or under ``mpiexec``) is run through the command line's ``main`` in
a fresh folder per document, so that a command can use the run directory an earlier one
made (``--resume runs/digits-mlp``). Only the data is made smaller (a few hundred examples
of each split), so that the whole set takes seconds; the options are parsed and the code
runs exactly as for a reader. A command that needs Fashion-MNIST, Graphviz or onnx is
skipped, with the reason, where they are missing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex
import shutil
from pathlib import Path

import pytest

from chainrule.cli import datasets, main

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BASH = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SIZES = {"train": 256, "val": 64, "test": 128}


def commands(text: str) -> list[list[str]]:
    """The chainrule commands of a document's bash blocks, as argument lists."""
    found = []
    for block in BASH.findall(text):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            for part in " ".join(shlex.quote(w) for w in words).split(" '&&' "):
                argv = shlex.split(part)
                if argv[:1] == ["mpiexec"] and "chainrule" in argv:
                    argv = argv[argv.index("chainrule") :]  # one process runs the same code
                if argv[:1] == ["chainrule"]:
                    found.append(argv[1:])
    return found


def _documents_with_commands():
    for document in DOCUMENTS:
        found = commands(document.read_text(encoding="utf-8"))
        if found:
            yield pytest.param(found, id=str(document.relative_to(ROOT)))


def _missing(argv: list[str]) -> str | None:
    """Why a command cannot run on this machine, or None."""
    text = " ".join(argv)
    if "fashion-mnist" in text and not Path("/usr/share/datasets/fashion-mnist").is_dir():
        return "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
    graph = re.search(r"--graph \S+\.(svg|png|pdf)", text)
    if graph and (importlib.util.find_spec("graphviz") is None or shutil.which("dot") is None):
        return "Graphviz is not installed"
    if argv[0] == "export" and importlib.util.find_spec("onnx") is None:
        return "onnx is not installed"
    return None


@pytest.fixture
def small_data(monkeypatch):
    """load_splits with a few hundred examples of each split."""
    load = datasets.load_splits

    def small(name, data_dir, val_fraction):
        splits = load(name, data_dir, val_fraction)
        fewer = {}
        for split, size in SIZES.items():
            fewer[f"x_{split}"] = getattr(splits, f"x_{split}")[:size]
            fewer[f"y_{split}"] = getattr(splits, f"y_{split}")[:size]
        return dataclasses.replace(splits, **fewer)

    for module in ("chainrule.cli.train", "chainrule.cli.models"):
        monkeypatch.setattr(f"{module}.load_splits", small)


def test_the_commands_are_found():
    readme = commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert ["train"] in readme  # the quick start's, after `&&`
    assert ["explain", "--layers", "784,256,10", "--activation", "relu", "--loss",
            "cross-entropy", "--ascii"] in readme  # fmt: skip
    assert ["train", "--dataset", "fashion-mnist", "--batch-size", "256"] in readme  # mpiexec
    assert any(argv[0] == "export" for argv in readme)


@pytest.mark.parametrize("sequence", list(_documents_with_commands()))
def test_every_command_runs(sequence, tmp_path, monkeypatch, capsys, small_data):
    monkeypatch.chdir(tmp_path)
    skipped = []
    for argv in sequence:
        reason = _missing(argv)
        if reason:
            skipped.append(f"chainrule {' '.join(argv)}: {reason}")
            continue
        status = main(argv)
        err = capsys.readouterr().err
        assert status == 0, f"chainrule {' '.join(argv)} exited {status}: {err}"
        assert "Traceback" not in err
    if skipped:
        pytest.skip("; ".join(skipped))


def _quick_start(document: Path, heading: str) -> list[str]:
    text = document.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    return BASH.search(section).group(1).strip().splitlines()


def test_the_quick_start_is_two_lines_that_make_their_own_virtual_environment():
    """On Debian 12 or Ubuntu 23.04+, a bare `pip install` is refused (PEP 668): each line
    makes (or reuses) .venv and installs there. .ci/quickstart runs them as written."""
    readme = _quick_start(ROOT / "README.md", "## Quick start")
    assert readme == _quick_start(ROOT / "docs" / "index.md", "## Getting started")
    assert len(readme) == 2
    for line in readme:
        assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")
    assert readme[0].endswith("&& chainrule train")
    assert readme[1].endswith("&& python -m pytest")
