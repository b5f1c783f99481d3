"""A local Sphinx extension: fixes for the pinned themes (sphinx-book-theme 1.3.0 over
pydata-sphinx-theme 0.17.1) that readers would otherwise meet. Each fix is a file in
tools/static/ with its reasons at the top: theme-fixes.js (the ☰ and "Contents" buttons; display
equations wider than a phone's column) and theme-fixes.css."""
import shutil
from pathlib import Path

STATIC = Path(__file__).parent / "static"


def copy_static(app, exception):
    """Into _static/, written over every build (Sphinx keeps a static file that exists)."""
    if exception is None and app.builder.format == "html":
        for path in STATIC.iterdir():
            shutil.copyfile(path, Path(app.outdir) / "_static" / path.name)


def setup(app):
    app.connect("build-finished", copy_static)
    app.add_js_file("theme-fixes.js", loading_method="defer")
    app.add_css_file("theme-fixes.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
