"""The package's layers, checked: each core module loads on its own, in any order; imports
inside functions are only for optional or heavy dependencies; and the import-linter
contracts of pyproject.toml hold (when import-linter is installed, as in CI)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "chainrule"

CORE = [
    "mode", "versions", "tensor", "graph", "checks", "function", "runners", "engine",
    "reference", "ops", "ops.elementwise", "ops.piecewise", "ops.reduction", "ops.shape",
    "ops.linalg", "ops.einsum", "ops.kernels", "ops.scatter", "ops.rules", "ops.conv",
    "ops.pool", "ops.im2col", "ops.losses", "ops.inverse", "ops.decompositions", "ops.norms",
    "ops.rearrange", "ops.diagonal", "ops.gather",
    "inplace", "creation", "linalg", "functional", "gradcheck", "wiring", "notation",
    "forward", "control",
    "ops.trigonometric", "ops.exponential", "ops.powers", "ops.special", "ops.rounding",
    "ops.scan", "ops.aggregates", "ops.sorting", "ops.normal", "tree", "workspace",
]  # fmt: skip

#: third-party packages a function may import when it needs them: the optional extras,
#: and dependencies too slow to load with ``import chainrule`` (scikit-learn, matplotlib;
#: scipy: ``scipy.special``, for erf and normal_cdf, adds about 90 ms to ``import chainrule``)
LAZY = {"graphviz", "onnx", "onnxruntime", "mpi4py", "matplotlib", "sklearn", "tqdm", "scipy"}

_FIRST_THEN_ALL = """
import importlib, sys, types
import numpy as np
package = types.ModuleType("chainrule")  # the package without its __init__
package.__path__ = [{path!r}]
sys.modules["chainrule"] = package
importlib.import_module("chainrule.{first}")
for name in {core!r}:
    importlib.import_module("chainrule." + name)
from chainrule.tensor import Tensor
x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
(x * x).sum().backward()
assert x.grad.data.tolist() == [2.0, 4.0]
"""


@pytest.mark.parametrize("first", CORE)
def test_each_core_module_loads_first(first):
    code = _FIRST_THEN_ALL.format(path=str(PACKAGE), first=first, core=CORE)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def _function_level_imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import):
                        for alias in inner.names:
                            yield path, inner.lineno, alias.name
                    elif isinstance(inner, ast.ImportFrom):
                        yield path, inner.lineno, "." * inner.level + (inner.module or "")


def test_imports_inside_functions_are_only_lazy_third_party_ones():
    found = [
        f"{path.relative_to(SRC)}:{line} imports {name}"
        for path, line, name in _function_level_imports()
        if name.split(".")[0] not in LAZY
    ]
    assert not found, "\n".join(found)


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_linter_contracts_hold():
    run = subprocess.run(["lint-imports"], capture_output=True, text=True, cwd=SRC.parent)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
