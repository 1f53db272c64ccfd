"""Every public name has a docstring (help(), pydoc and the API pages show it): the
modules, what their ``__all__`` exports, and the public methods and properties of the
exported classes. The core files being rewritten are counted by test_docstrings_core.py."""

import pytest

from public_names import is_core, public_names

NAMES = [(name, documented) for name, home, documented in public_names() if not is_core(home)]


def test_the_count_covers_the_library():
    assert len(NAMES) > 250  # 269 when written: cr.nn, cr.data, cr.metrics, the CLI, …
    covered = {name.split(".")[1] for name, _ in NAMES if name.count(".") > 1}
    for package in ("nn", "data", "metrics", "cli", "lecture", "viz", "checkpoint", "creation"):
        assert package in covered, package


@pytest.mark.parametrize("name, documented", NAMES, ids=[name for name, _ in NAMES])
def test_has_a_docstring(name, documented):
    assert documented, f"{name} has no docstring"
