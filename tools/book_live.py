"""A local Sphinx extension: every code cell of the book can run in the reader's browser.

The built pages carry, for each notebook page, its code cells as JSON (source, tags, and for an
exercise's solution cell the stub the learner starts from), and each cell's element gets the
class ``bp-cell-<index>`` so that ``bpcourse/live.js`` finds it. The site gets ``live/``: the
page script, the worker that runs Pyodide (fetched into ``_vendor/pyodide/`` by `make vendor`
and copied to ``pyodide/`` at the site root), a wheel of bplib and bpcourse built from this
checkout, and the digits data set that chapter 6 loads through scikit-learn, which the browser's
Python does not have.
"""
import base64
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

from docutils import nodes

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bplib", "bpcourse")
NOT_IN_PAGE = "not-in-page"
ASSETS = ("live.js", "live.css", "worker.js", "lab.js")


def wheel_bytes():
    """A pure-Python wheel of bplib and bpcourse, made in memory from the checkout (what
    `pip wheel` would make; no build tools needed, and it takes milliseconds)."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).iterdir()):
            if path.suffix in (".py", ".js"):
                files[f"{package}/{path.name}"] = path.read_bytes()
    info = "bplib-0.1.0.dist-info"
    files[f"{info}/METADATA"] = b"Metadata-Version: 2.1\nName: bplib\nVersion: 0.1.0\n"
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: tools/book_live.py\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def digits_bytes():
    """scikit-learn's 8x8 digits as a small .npz: pixels 0..16 as uint8, labels as uint8."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, data=digits.data.astype(np.uint8),
                        target=digits.target.astype(np.uint8))
    return buffer.getvalue()


def mark_cells(app, doctree, docname):
    """Give every code cell's element the class bp-cell-<index in the notebook>."""
    for node in doctree.findall(nodes.container):
        if node.get("nb_element") == "cell_code":
            node["classes"].append(f"bp-cell-{node['cell_index']}")


def page_cells(notebook):
    """The code cells of an executed notebook, for the page: index, source, tags, and the stub
    of a solution cell (the reference solution replaced as in the learner's copy). A cell tagged
    not-in-page (it needs PyTorch, say, which does not run in the browser) is left out: the page
    shows its output from the build, and says so."""
    from bpcourse.grade import BEGIN, strip_solutions

    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code" or NOT_IN_PAGE in cell.get("metadata", {}).get("tags", []):
            continue
        source = "".join(cell["source"])
        entry = {"index": index, "source": source,
                 "tags": cell.get("metadata", {}).get("tags", [])}
        if BEGIN in source:
            entry["stub"] = strip_solutions(source, f"cell {index}")
        cells.append(entry)
    return cells


def executed_notebook(app, pagename):
    """The page's notebook as the build executed it (myst-nb's jupyter_execute/), or None."""
    path = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    return path if path.exists() else None


def add_cells(app, pagename, templatename, context, doctree):
    """Notebook pages carry their cells as JSON and load the page script."""
    executed = executed_notebook(app, pagename)
    if doctree is None or executed is None:
        return
    config = {"page": pagename, "cells": page_cells(json.loads(executed.read_text())),
              "root": context["pathto"]("", 1) or "./", "wheel": app.bp_wheel_name}
    payload = json.dumps(config, separators=(",", ":")).replace("</", "<\\/")
    context["body"] += f'\n<script type="application/json" id="bp-live-config">{payload}</script>\n'
    live = context["pathto"]("live/", 1)
    context["metatags"] += (f'\n<link rel="stylesheet" href="{live}live.css">'
                            f'\n<script defer src="{live}live.js"></script>')


def prepare(app):
    app.bp_wheel = wheel_bytes()
    # The name changes with the content, so a browser never reuses a stale cached copy.
    app.bp_wheel_name = f"bplib-0.1.0-py3-none-any.whl?v={hashlib.sha256(app.bp_wheel).hexdigest()[:12]}"


def write_assets(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir) / "live"
    out.mkdir(exist_ok=True)
    for name in ASSETS:
        shutil.copyfile(ROOT / "bpcourse" / name, out / name)
    (out / "bplib-0.1.0-py3-none-any.whl").write_bytes(app.bp_wheel)
    digits = out / "digits.npz"
    if not digits.exists():
        digits.write_bytes(digits_bytes())


def setup(app):
    app.connect("builder-inited", prepare)
    app.connect("doctree-resolved", mark_cells)
    app.connect("html-page-context", add_cells)
    app.connect("build-finished", write_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
