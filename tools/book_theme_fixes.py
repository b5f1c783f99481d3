"""A local Sphinx extension: fixes for the pinned themes (sphinx-book-theme 1.3.0 over
pydata-sphinx-theme 0.17.1) that readers would otherwise meet. Each fix is a file in
tools/static/ with its reason at the top; today one, theme-fixes.js (the ☰ and "Contents"
buttons)."""
from pathlib import Path

STATIC = Path(__file__).parent / "static"


def add_static(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("builder-inited", add_static)
    app.add_js_file("theme-fixes.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
