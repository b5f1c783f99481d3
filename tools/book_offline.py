"""A local Sphinx extension that keeps the built book quiet and offline.

jupyter-book 1 always loads sphinx-thebe, even with thebe turned off in _config.yml. Its
configuration script is added twice per page, so every page logs "Identifier 'THEBE_JS_URL' has
already been declared", and it points at a CDN. The book has no thebe button, so this extension
drops thebe's scripts from every page.

It also makes the notebooks' kernels talk over Unix sockets instead of TCP ports (see
bpcourse/kernel.py): a kernel that loses its port to another process dies at start, and the
whole build fails with it.
"""
from bpcourse.kernel import use_ipc_kernels_in_jupyter_cache


def _is_thebe(script):
    filename = getattr(script, "filename", None) or ""
    body = getattr(script, "attributes", {}).get("body", "") if hasattr(script, "attributes") else ""
    return "thebe" in filename or "THEBE_JS_URL" in body


def drop_thebe_scripts(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def setup(app):
    use_ipc_kernels_in_jupyter_cache()
    app.connect("html-page-context", drop_thebe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
