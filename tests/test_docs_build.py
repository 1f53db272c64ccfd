"""The documentation site builds in strict mode, and the pages hold what they promise.

Skips when the ``docs`` extra (MkDocs, Material, mkdocstrings) is not installed.
"""

import importlib.util
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner


def mkdocs_build(config, site, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def nav_pages(nav):
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            yield from nav_pages(value)
        else:
            yield value


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    result = mkdocs_build(ROOT / "mkdocs.yml", site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return site


def page(site, markdown_path):
    """The HTML file MkDocs writes for docs/<markdown_path> (directory URLs)."""
    stem = markdown_path[: -len(".md")]
    if stem == "index" or stem.endswith("/index"):
        return site / stem[: -len("index")] / "index.html"
    return site / stem / "index.html"


def test_every_page_in_the_nav_is_built(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = list(nav_pages(config["nav"]))
    for required in ("index.md", "tutorial.md", "architecture.md", "howto/resume.md"):
        assert required in pages
    for markdown_path in pages:
        assert (ROOT / "docs" / markdown_path).is_file(), markdown_path
        assert page(site, markdown_path).is_file(), markdown_path


def test_tutorial_includes_every_lecture_script_and_renders_math(site):
    html = page(site, "tutorial.md").read_text(encoding="utf-8")
    text = unescape(re.sub(r"<[^>]+>", "", html))
    scripts = sorted((ROOT / "examples" / "lecture").glob("*.py"))
    assert scripts
    for script in scripts:
        assert f"examples/lecture/{script.name}" in text, script.name
        # the script's own code made it into the page: the snippet was included
        source = script.read_text(encoding="utf-8").splitlines()
        for line in (source[0].lstrip('"'), source[-1]):
            assert line.strip() in text, (script.name, line)
    assert "--8&lt;--" not in html and "--8<--" not in html
    # math is left for MathJax in arithmatex spans, with the lecture's symbols
    assert html.count('class="arithmatex"') >= 20
    assert r"\delta^{[l]}" in html and "W^{[l+1]}" in html
    for section in ("Metrics", "Notation", "Functions", "Gradients", "perceptron",
                    "Forward and backward propagation", "Autodiff", "caution"):  # fmt: skip
        assert section in html, section


def test_api_reference_is_generated_from_the_docstrings(site):
    html = page(site, "api/onnx.md").read_text(encoding="utf-8")
    assert "chainrule.onnx.export" in html
    # a phrase from the docstring itself, not from the page's markdown
    assert "Write ŷ = model(x) as an ONNX model with a dynamic batch axis" in html
    tensor = page(site, "api/tensor.md").read_text(encoding="utf-8")
    assert "chainrule.tensor.Tensor" in tensor
    lecture = page(site, "api/lecture.md").read_text(encoding="utf-8")
    # the lecture's g[l](f[l]) is text, not a Markdown link to "f[l]"
    assert 'href="f[l]"' not in lecture and "g′[l]" in lecture


def test_math_javascript_is_shipped_with_the_site_and_nothing_is_fetched(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert (site / "javascripts" / "mathjax.js").is_file()
    scripts = config["extra_javascript"]
    assert "mathjax" in " ".join(scripts).lower()
    assert not [s for s in scripts if "://" in s]  # no CDN: MathJax is vendored at build time
    for script in scripts:
        assert (site / script).is_file(), script
    fonts = site / "javascripts" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) > 20
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert "cdn.jsdelivr" not in text and "mathjax@" not in text, html
    # the theme would otherwise ask a font service for its fonts when a page is viewed
    assert config["theme"]["font"] is False
    plugin_names = {next(iter(p)) if isinstance(p, dict) else p for p in config["plugins"]}
    assert "privacy" not in plugin_names  # the one Material plugin that downloads at build


def _browser_check():
    spec = importlib.util.spec_from_file_location(
        "browser_check", ROOT / "docs" / "_ext" / "browser_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_headless_browser_sees_every_formula_typeset_offline_and_fitting(site):
    """Chromium opens each page with maths: all typeset, nothing fetched from outside the
    site, no formula wider than the text column at 1280 px."""
    check = _browser_check()
    if check.chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    pages = check.math_pages(site)
    assert "tutorial/index.html" in pages and "index.html" in pages
    with check.serve(site) as base:
        for page in pages:
            findings = check.probe(base, page, width=1280)
            assert findings["mathjax"] and findings["version"].startswith("3."), page
            assert findings["typeset"] == findings["formulas"] > 0, (page, findings)
            assert check.problems(findings) == [], (page, findings)


def test_api_pages_show_code_blocks_not_restructuredtext(site):
    for html in (site / "api").rglob("index.html"):
        text = re.sub(r"<code>.*?</code>|<pre.*?</pre>", "", html.read_text(encoding="utf-8"),
                      flags=re.DOTALL)  # fmt: skip
        text = unescape(re.sub(r"<[^>]+>", "", text))
        assert not re.search(r"\w::(\s|$)", text), html  # "identical::" left for Markdown
    assert "SPEC.md" not in page(site, "api/index.md").read_text(encoding="utf-8")


def test_the_command_line_page_holds_every_help_text(site):
    from chainrule.cli.main import build_parser

    html = unescape(page(site, "cli.md").read_text(encoding="utf-8"))
    text = re.sub(r"<[^>]+>", "", html)
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == {"train", "evaluate", "explain", "export"}
    for name, command in commands.items():
        assert f"usage: chainrule {name}" in text, name
        for action in command._actions:
            for option in action.option_strings:
                assert option in text, (name, option)
    assert "<!-- chainrule" not in html


def test_strict_build_fails_on_a_broken_link(tmp_path):
    """The validation settings of mkdocs.yml turn a broken link into a failed build."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](howto/missing.md).\n")
    small = {
        "site_name": "check",
        "docs_dir": str(docs),
        "validation": config["validation"],
        "theme": {"name": "material", "font": False},
        "markdown_extensions": ["admonition"],
    }
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(small))
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site", cwd=tmp_path)
    assert result.returncode != 0
    assert "howto/missing.md" in result.stderr
