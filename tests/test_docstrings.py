"""Every public name has a docstring (help(), pydoc and the API pages show it): the
modules, what their ``__all__`` exports, and the public methods and properties of the
exported classes."""

import pytest

from public_names import public_names

NAMES = [(name, documented) for name, _, documented in public_names()]


def test_the_count_covers_the_library():
    assert len(NAMES) > 450  # the core, cr.nn, cr.data, cr.metrics, the CLI, …
    covered = {name.split(".")[1] for name, _ in NAMES if name.count(".") > 1}
    for package in ("tensor", "function", "functional", "ops", "optim", "nn", "data",
                    "metrics", "cli", "lecture", "viz", "serialization", "creation"):  # fmt: skip
        assert package in covered, package


@pytest.mark.parametrize("name, documented", NAMES, ids=[name for name, _ in NAMES])
def test_has_a_docstring(name, documented):
    assert documented, f"{name} has no docstring"
