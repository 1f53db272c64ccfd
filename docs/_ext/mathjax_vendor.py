"""MkDocs hook: ship MathJax with the site, so that formulas render offline.

The files come from the PyPI package ``django-static-mathjax`` (MathJax 3.2.2 as static
files, no Django needed; the ``docs`` extra installs it). They are added to the site at
build time under ``javascripts/mathjax/``: what ``tex-mml-chtml.js`` loads when a page is
viewed (its CommonHTML fonts, the TeX extensions it may autoload, the menu and the
assistive MathML), so no page asks a CDN for anything. The speech engine (``sre``, 4 MB)
is left out: only the menu's speech options would load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

TARGET = "javascripts/mathjax"
PARTS = ("tex-mml-chtml.js", "output/chtml", "input/tex/extensions", "ui", "a11y")


def mathjax_root() -> Path:
    """The es5 folder of the installed MathJax distribution."""
    try:
        import mathjax  # the import name of django-static-mathjax
    except ImportError:
        raise PluginError(
            "MathJax is not installed: pip install -e '.[docs]' (it brings "
            "django-static-mathjax, MathJax's files as a Python package)"
        ) from None
    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (root / PARTS[0]).is_file():
        raise PluginError(f"{root} holds no {PARTS[0]}: reinstall django-static-mathjax")
    return root


def vendored_files(root: Path) -> list[Path]:
    """The files of ``PARTS`` under ``root``, sorted."""
    found: list[Path] = []
    for part in PARTS:
        path = root / part
        found += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return found


def on_files(files: Files, config: Any) -> Files:
    """Add MathJax's files to the site, as if they were in docs/javascripts/mathjax/."""
    root = mathjax_root()
    for path in vendored_files(root):
        uri = f"{TARGET}/{path.relative_to(root).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
