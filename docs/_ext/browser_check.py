"""Look at the built site in a headless Chromium: is the maths typeset, offline, and does
it fit the page?

    python docs/_ext/browser_check.py SITE [PAGE ...] [--width 1280] [--screenshots DIR]

SITE is the output of ``mkdocs build``; each PAGE is a path in it (default: every page
with formulas). The site is served on 127.0.0.1 by this script; each page is opened with a
probe script added at its end, which waits for MathJax and reports, as JSON, how many
formulas there are and how many were typeset, any TeX left raw, every resource the page
loaded that was not on 127.0.0.1, and every formula wider than the text column. With
``--screenshots`` a PNG of the top of each page is written too, to be looked at.
The exit status is 1 when a page has raw TeX, an outside resource or an overflow.

Chromium runs with no network of its own (no sync, no component updates, no background
requests) and a fresh profile; tests/test_docs_browser.py runs this and skips when
Chromium is not installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--hide-scrollbars", "--mute-audio",
)  # fmt: skip
PROBE_QUERY = "chainrule-probe"

# Runs in the page: waits for MathJax's first typesetting, then writes its findings into
# a <pre id="chainrule-probe"> that --dump-dom shows.
PROBE = """
<script>
(function () {
  // the TeX as the page has it, before MathJax replaces it
  document.querySelectorAll(".arithmatex").forEach(function (s) {
    s.setAttribute("data-original", s.textContent);
  });
  function report() {
    var column = document.querySelector(".md-content__inner") || document.body;
    var right = column.getBoundingClientRect().right;
    var spans = Array.from(document.querySelectorAll(".arithmatex"));
    var raw = spans.filter(function (s) { return !s.querySelector("mjx-container"); })
                   .map(function (s) { return s.textContent.slice(0, 80); });
    var wide = Array.from(document.querySelectorAll(".arithmatex")).filter(function (s) {
      var math = s.querySelector("mjx-math");
      return math && math.getBoundingClientRect().right > right + 1;
    }).map(function (s) {
      var math = s.querySelector("mjx-math");
      return {top: Math.round(math.getBoundingClientRect().top + window.scrollY),
              width: Math.round(math.getBoundingClientRect().width),
              column: Math.round(column.getBoundingClientRect().width),
              tex: (s.getAttribute("data-original") || "").slice(0, 160),
              text: (s.querySelector("mjx-assistive-mml") || s).textContent.slice(0, 120)};
    });
    var local = /^(https?:\\/\\/127\\.0\\.0\\.1[:\\/]|data:|blob:)/;
    var outside = performance.getEntriesByType("resource").map(function (e) {
      return e.name;
    }).filter(function (url) { return !local.test(url); });
    var pre = document.createElement("pre");
    pre.id = "chainrule-probe";
    pre.textContent = JSON.stringify({
      mathjax: typeof MathJax !== "undefined" && !!MathJax.version,
      version: typeof MathJax !== "undefined" ? MathJax.version : null,
      formulas: spans.length,
      typeset: spans.length - raw.length,
      raw: raw, overflowing: wide, outside: outside,
      pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth
    });
    document.body.appendChild(pre);
  }
  function wait() {
    if (typeof MathJax !== "undefined" && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(function () { setTimeout(report, 200); });
    } else {
      setTimeout(report, 3000);  // no MathJax: report what the page has
    }
  }
  if (document.readyState === "complete") { wait(); } else { addEventListener("load", wait); }
})();
</script>
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site; adds the probe to an HTML page asked for with ?chainrule-probe."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server spelling)
        path, _, query = self.path.partition("?")
        if query != PROBE_QUERY:
            super().do_GET()
            return
        target = Path(self.translate_path(path))
        if target.is_dir():
            target = target / "index.html"
        html = target.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>", 1)
        body = html.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """The site on http://127.0.0.1:PORT/ (a free port) for the duration of the block."""
    handler = functools.partial(_Handler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium() -> str | None:
    """The Chromium (or Chrome) program on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(program: str, args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="chainrule-chromium-") as profile:
        result = subprocess.run(
            [program, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def probe(
    base: str, page: str, width: int = 1280, program: str | None = None, timeout: float = 90
) -> dict[str, Any]:
    """Open ``page`` of the served site and return the probe's findings."""
    program = program or chromium()
    if program is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    dom = _run_chromium(
        program,
        [f"--window-size={width},1000", "--virtual-time-budget=20000", "--dump-dom",
         f"{base}{page}?{PROBE_QUERY}"],
        timeout,
    )  # fmt: skip
    found = re.search(r'<pre id="chainrule-probe">(.*?)</pre>', dom, re.DOTALL)
    if found is None:
        raise RuntimeError(f"{page}: the probe did not report (page not loaded?)")
    import html

    return json.loads(html.unescape(found.group(1)))


def screenshot(
    base: str, page: str, path: Path, width: int = 1280, height: int = 1600,
    program: str | None = None,
) -> Path:  # fmt: skip
    """A PNG of the top ``height`` pixels of ``page`` at ``width``, after MathJax ran."""
    program = program or chromium()
    if program is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    _run_chromium(
        program,
        [f"--window-size={width},{height}", "--virtual-time-budget=20000",
         f"--screenshot={path}", f"{base}{page}"],
        90,
    )  # fmt: skip
    return path


def math_pages(site: Path) -> list[str]:
    """The pages of the built site that hold formulas (pymdownx.arithmatex spans)."""
    return sorted(
        page.relative_to(site).as_posix()
        for page in site.rglob("*.html")
        if 'class="arithmatex"' in page.read_text(encoding="utf-8")
    )


def problems(findings: dict[str, Any]) -> list[str]:
    """What is wrong with a page, in words (empty when nothing is)."""
    found = []
    if findings["formulas"] and not findings["mathjax"]:
        found.append("MathJax did not load")
    if findings["raw"]:
        found.append(f"{len(findings['raw'])} formulas left as raw TeX: {findings['raw'][:3]}")
    if findings["outside"]:
        found.append(f"resources from outside the site: {findings['outside']}")
    if findings["overflowing"]:
        found.append(f"formulas wider than the text column: {findings['overflowing']}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("pages", nargs="*", help="default: every page with formulas")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--screenshots", type=Path, help="write PAGE.png files here")
    args = parser.parse_args(argv)
    status = 0
    with serve(args.site) as base:
        for page in args.pages or math_pages(args.site):
            findings = probe(base, page, args.width)
            wrong = problems(findings)
            status = max(status, 1 if wrong else 0)
            summary = f"{findings['typeset']}/{findings['formulas']} formulas typeset"
            print(f"{page}: {summary}; " + ("; ".join(wrong) if wrong else "all good"))
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                name = page.replace("/index.html", "").replace("/", "-") or "index"
                shot = screenshot(base, page, args.screenshots / f"{name}.png", args.width)
                print(f"  screenshot: {shot}")
    return status


if __name__ == "__main__":
    sys.exit(main())
