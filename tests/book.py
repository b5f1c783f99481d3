"""Helpers shared by the tests that build and browse the book: which pages the TOC names,
building into a fresh folder, reading what a chapter glued, serving the HTML on localhost."""
import ast
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# tools/ holds the book's local Sphinx extensions, the site's server and the PDF printer (with the
# way Chromium is launched), which the tests use too.
sys.path.insert(0, str(ROOT / "tools"))
from book_pdf import CHROMIUM, CHROMIUM_ARGS  # noqa: E402, F401  (for the browser tests)
from serve_book import QuietHandler, served  # noqa: E402
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def toc_pages(toc=ROOT / "_toc.yml"):
    """Every document named in _toc.yml, as paths without suffix ('intro', 'chapters/...')."""
    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                yield node["file"]
            for key in ("chapters", "sections", "parts"):
                for child in node.get(key, []):
                    yield from walk(child)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child)

    data = yaml.safe_load(toc.read_text())
    return [data["root"], *walk(data)]


def notebook_pages():
    """The pages of _toc.yml that are notebooks (the chapters and exercises; not the
    introduction or the notation page), in reading order."""
    return [page for page in toc_pages()
            if (ROOT / f"{page}.md").read_text().startswith("---\njupytext:")]


def notebook_sources():
    """Chapter and exercise notebooks (MyST markdown with a jupytext header)."""
    files = sorted((ROOT / "chapters").glob("*.md")) + sorted((ROOT / "exercises").glob("*.md"))
    return [f for f in files if f.read_text().startswith("---\njupytext:")]


def build_book(out_dir, source=ROOT):
    """Build the book in `source` from scratch into out_dir (an empty folder, so no execution
    cache is reused) with warnings as errors. Returns (returncode, combined output, html folder)."""
    proc = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(source), "--path-output", str(out_dir), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, cwd=source,
    )
    return proc.returncode, proc.stdout + proc.stderr, Path(out_dir) / "_build" / "html"


def glued(html, chapter, name):
    """The value that chapter ``chapter`` (e.g. "02_loss") glued as ``name``, in the build whose
    HTML is in ``html``. myst-nb keeps each executed notebook's glue next to it, in
    ``_build/jupyter_execute/chapters/<chapter>.glue.json``, as what the kernel displayed: the
    repr, read back here into numbers, strings, lists and dicts (numpy's np.float64(x) as x)."""
    path = html.parent / "jupyter_execute" / "chapters" / f"{chapter}.glue.json"
    text = json.loads(path.read_text())[name]["data"]["text/plain"]
    text = re.sub(r"np\.\w+\(([^()]*)\)", r"\1", text)
    try:
        return ast.literal_eval(text)
    except ValueError:  # inf and nan are no literals
        return float(text)


def first_trouble(output, before=1500, after=3500):
    """The build log from a little before its first warning or traceback (where the cause is;
    the end of the log only shows jupyter-book's summary), and its last lines."""
    match = re.search(r"\b(WARNING|ERROR|CRITICAL):|Traceback \(most recent call last\)", output)
    start = max(match.start() - before, 0) if match else max(len(output) - after, 0)
    return output[start:start + before + after] + "\n[...]\n" + output[-1500:]


def build_one_page_book(tmp_path_factory, name, page):
    """A book of its own holding one MyST page (``name``.md, after a one-line intro), with the
    repository's _config.yml, tools/, _vendor/ and assets/, built as the real one is. Returns the
    html folder; fails the test if the build does."""
    src = tmp_path_factory.mktemp(f"{name}book")
    shutil.copy(ROOT / "_config.yml", src)
    for folder in ("tools", "_vendor", "assets"):
        os.symlink(ROOT / folder, src / folder)
    (src / "intro.md").write_text(f"# A book with one page: {name}\n")
    (src / f"{name}.md").write_text(page)
    (src / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n  - file: {name}\n")
    returncode, output, html = build_book(tmp_path_factory.mktemp(f"{name}build"), source=src)
    assert returncode == 0, first_trouble(output)
    return html


class _QuietHandler(QuietHandler):
    """What it sends is added to the server's ``sent`` (path and bytes, headers included),
    whoever asked: a page, or a worker shared by pages."""

    def setup(self):
        super().setup()
        self.wfile = _Counting(self.wfile, self)


class _Counting:
    def __init__(self, stream, handler):
        self.stream, self.handler = stream, handler

    def write(self, data):
        self.handler.server.sent.append((getattr(self.handler, "path", ""), len(data)))
        return self.stream.write(data)

    def __getattr__(self, name):
        return getattr(self.stream, name)


class Site(str):
    """The base URL of a served folder; ``sent`` lists what the server sent, (path, bytes)."""

    sent = ()


@contextlib.contextmanager
def serve(directory):
    """Serve a folder on 127.0.0.1 (a free port) for the duration of the block, as `make serve`
    does; yields the base URL (a Site)."""
    with served(directory, handler=_QuietHandler) as server:
        server.sent = []
        site = Site(f"http://127.0.0.1:{server.server_address[1]}")
        site.sent = server.sent
        yield site
