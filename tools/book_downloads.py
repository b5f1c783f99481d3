"""A local Sphinx extension: what readers of a Jupyter Book expect to download.

- Every notebook page offers its notebook as ``.ipynb`` (executed, outputs included) beside its
  ``.md`` source in the page's download menu: the source with the outputs the execution cache
  holds for it goes to ``_sources/``, and the theme's menu links it. (myst-nb's own copy in
  ``jupyter_execute/`` has outputs only when the notebook ran in that build, not when they came
  from the cache.)
- ``downloads/exercises.zip`` holds the exercise notebooks as learners get them (solutions
  replaced by ``raise NotImplementedError``, as ``python -m bpcourse.grade release`` makes them),
  as ``.ipynb``; each exercise page links it.
"""
import tempfile
import zipfile
from pathlib import Path

from book_live import executed_notebook

ARCHIVE = "downloads/exercises.zip"


def offer_notebook(app, pagename, templatename, context, doctree):
    """Before the theme builds its download menu (priority 501): the page's notebook."""
    if doctree is not None and executed_notebook(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


def link_archive(app, doctree, docname):
    """Under an exercise page's title: a link to the archive of all of them."""
    from docutils import nodes

    if docname.startswith("exercises/") and doctree.children:
        para = nodes.paragraph()
        para += nodes.Text("All the exercises, without their solutions, as notebooks: ")
        para += nodes.reference("", "exercises.zip", refuri="../" * docname.count("/") + ARCHIVE,
                                classes=["bp-exercises-zip"])
        para += nodes.Text(".")
        doctree.children[0].insert(1, para)


def write_downloads(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import jupytext
    from jupyter_cache import get_cache

    out = Path(app.outdir)
    cache = get_cache(out.parent / ".jupyter_cache")  # where myst-nb keeps it (_build/)
    for pagename in app.env.found_docs:
        if executed_notebook(app, pagename):
            _, nb = cache.merge_match_into_notebook(jupytext.read(app.env.doc2path(pagename)))
            target = out / "_sources" / f"{pagename}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            jupytext.write(nb, target)
    from bpcourse.grade import release

    with tempfile.TemporaryDirectory() as folder:
        release(Path(app.srcdir) / "exercises", Path(folder), ipynb=True)
        archive = out / ARCHIVE
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(Path(folder).rglob("*.ipynb")):
                z.write(path, f"exercises/{path.name}")


def setup(app):
    app.connect("html-page-context", offer_notebook, priority=400)
    app.connect("doctree-resolved", link_archive)
    app.connect("build-finished", write_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
