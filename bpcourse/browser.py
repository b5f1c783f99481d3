"""The book's code cells, run in the reader's browser by Pyodide (in the page's Web Worker).

``install()`` runs once when the worker starts; then ``run_cell(source, name)`` runs one cell in
the page's namespace and returns, as JSON, what a Jupyter kernel would have sent: printed text,
displayed values (figures as SVG, objects' HTML, SVG or plain text) and an error trimmed to the
reader's own code. ``lab_frame(name, controls)`` computes one frame of a lab, as the JupyterLab
widget does.

A few modules that the cells import come from Jupyter, which does not run in a page; each gets a
stand-in doing what the module does for these cells: ``myst_nb.glue`` shows its value,
``IPython.display.display`` shows an object, ``threadpoolctl.threadpool_limits`` does nothing
(Pyodide runs numpy on one thread anyway), ``graphviz.Digraph`` writes DOT text that the page
draws with Graphviz compiled to WebAssembly, and ``bpcourse.widgets``' labs are drawn by the
page and computed by this Python instead of a kernel. IPython's line magics (``%config``, ``%xmode``) only
set how Jupyter shows outputs and are skipped. ``sklearn.datasets.load_digits`` reads the same
digits from a file the book build saved next to the runtime.

One Python can serve several pages (the site keeps it running while the reader moves from page to
page, so the next page does not wait for it to start). Each page is a *session* of its own, as if
it had a Python to itself: its own namespace, its own copies of the library's modules (a page that
changes ``bplib`` changes it for itself only), its own ``progress()``, matplotlib settings and
numpy random and error state. ``end_session`` forgets a page that has gone.
"""
import ast
import io
import json
import linecache
import os
import sys
import traceback
import types
import warnings

OUTPUTS = []  # what the running cell has sent so far
MIME_METHODS = (("text/html", "_repr_html_"), ("image/svg+xml", "_repr_svg_"),
                ("text/markdown", "_repr_markdown_"), ("text/latex", "_repr_latex_"))


class _Stream(io.TextIOBase):
    """sys.stdout or sys.stderr during a cell: text goes to OUTPUTS, runs of it merged."""

    def __init__(self, name):
        self.name = name

    def writable(self):
        return True

    def write(self, text):
        last = OUTPUTS[-1] if OUTPUTS else None
        if last and last["type"] == "stream" and last["name"] == self.name:
            last["text"] += text
        elif text:
            OUTPUTS.append({"type": "stream", "name": self.name, "text": text})
        return len(text)


def mime_bundle(value):
    """What ``value`` shows as: a matplotlib figure as SVG, else the rich forms the object
    offers (``_repr_mimebundle_``, ``_repr_html_`` and its kind) and always its repr as
    text/plain."""
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        svg = io.StringIO()
        value.savefig(svg, format="svg")
        return {"image/svg+xml": svg.getvalue(), "text/plain": repr(value)}
    method = getattr(value, "_repr_mimebundle_", None)
    bundle = dict(method()) if callable(method) and not isinstance(value, type) else {}
    for mime, name in MIME_METHODS:
        method = getattr(value, name, None)
        data = method() if callable(method) and not isinstance(value, type) else None
        if data is not None:
            bundle[mime] = data
    bundle["text/plain"] = repr(value)
    return bundle


def display(*values, **_options):
    """IPython.display.display, for a page: an object with ``_ipython_display_`` shows itself."""
    for value in values:
        show = getattr(value, "_ipython_display_", None)
        if callable(show) and not isinstance(value, type):
            show()
        else:
            OUTPUTS.append({"type": "display", "data": mime_bundle(value)})


class _Rich:
    """IPython.display.Markdown / HTML / SVG: a string shown as that kind of content."""

    mime = "text/plain"

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return f"<{type(self).__name__} object>"


def _rich(name, mime, method):
    return type(name, (_Rich,), {"mime": mime, method: lambda self: self.data})


def _module(name, **attributes):
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


class threadpool_limits:  # noqa: N801  (threadpoolctl's name)
    """threadpoolctl.threadpool_limits: a context manager that changes nothing here."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ThreadpoolController:
    """threadpoolctl.ThreadpoolController: its limits change nothing here either."""

    def limit(self, *args, **kwargs):
        return threadpool_limits()


def _dot_quote(text):
    return '"' + str(text).replace('"', '\\"') + '"'


class Digraph:
    """graphviz.Digraph, as far as bplib.graph uses it: it writes the DOT text, which the page
    draws with Graphviz compiled to WebAssembly (there is no ``dot`` program to run here)."""

    draws_in_page = True

    def __init__(self, format="svg", graph_attr=None, node_attr=None):  # noqa: A002
        self.format, self.body = format, []
        self.graph_attr, self.node_attr = dict(graph_attr or {}), dict(node_attr or {})

    @staticmethod
    def _attributes(attributes):
        return ", ".join(f"{key}={_dot_quote(value)}" for key, value in attributes.items())

    def node(self, name, label=None, **attributes):
        if label is not None:
            attributes = {"label": label, **attributes}
        self.body.append(f"\t{_dot_quote(name)} [{self._attributes(attributes)}]")

    def edge(self, tail, head, **attributes):
        extra = f" [{self._attributes(attributes)}]" if attributes else ""
        self.body.append(f"\t{_dot_quote(tail)} -> {_dot_quote(head)}{extra}")

    @property
    def source(self):
        lines = ["digraph {"]
        if self.graph_attr:
            lines.append(f"\tgraph [{self._attributes(self.graph_attr)}]")
        if self.node_attr:
            lines.append(f"\tnode [{self._attributes(self.node_attr)}]")
        return "\n".join(lines + self.body + ["}"]) + "\n"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/vnd.graphviz": self.source}


class PageLab:
    """bpcourse.widgets.Lab in a page: shown as a lab whose controls this Python computes (the
    page draws it with lab.js, as JupyterLab does)."""

    def __init__(self, name, **initial):
        from bpcourse import labs

        self.name = name
        self.controls = labs.check_controls(name, {**labs.defaults(name), **initial})

    def __repr__(self):
        return f"<{self.name} lab>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from bpcourse import labs

        return {"application/vnd.bplib.lab+json": {"spec": labs.spec(self.name),
                                                    "controls": self.controls}}


def _page_labs():
    def lab(name, doc):
        def make(**initial):
            return PageLab(name, **initial)
        make.__doc__ = doc
        return make
    return {"Lab": PageLab,
            "lr_lab": lab("lr", "The learning-rate lab: lr, optimizer, steps, seed."),
            "init_lab": lab("init", "The initialisation lab: scheme, sigma, activation, depth, "
                                    "seed."),
            "depth_lab": lab("depth", "The depth-and-skips lab: depth and seed.")}


def glue(name, variable, display=True):  # noqa: A002  (myst_nb's signature)
    """myst_nb.glue: in the book it stores the value for the text; in a page it shows it."""
    if display:
        globals()["display"](variable)


def _load_digits(digits_file):
    import numpy as np

    def load_digits():
        """sklearn.datasets.load_digits: the 1,797 8x8 digits, from the file the build saved."""
        with np.load(digits_file) as saved:
            return types.SimpleNamespace(data=saved["data"], target=saved["target"],
                                         images=saved["data"].reshape(-1, 8, 8))
    return load_digits


def install(digits_file=None):
    """Set up the page's Python: Agg figures, and the stand-ins for Jupyter's modules."""
    os.environ["MPLBACKEND"] = "Agg"  # figures are drawn to SVG; a worker has no canvas
    os.environ["BPLIB_NO_PROGRESS"] = "1"
    display_module = _module("IPython.display", display=display,
                             Markdown=_rich("Markdown", "text/markdown", "_repr_markdown_"),
                             HTML=_rich("HTML", "text/html", "_repr_html_"),
                             SVG=_rich("SVG", "image/svg+xml", "_repr_svg_"))
    # version 0: matplotlib asks, and must not take this for a real IPython with a shell
    _module("IPython", display=display_module, get_ipython=lambda: None, version_info=(0, 0))
    _module("myst_nb", glue=glue)
    _module("threadpoolctl", threadpool_limits=threadpool_limits,
            ThreadpoolController=ThreadpoolController)
    _module("graphviz", Digraph=Digraph)
    _module("bpcourse.widgets", **_page_labs())
    if digits_file:
        datasets = _module("sklearn.datasets", load_digits=_load_digits(digits_file))
        _module("sklearn", datasets=datasets)
    import matplotlib.pyplot  # noqa: F401  (its first import builds a font cache, and says so)


def _without_magics(source):
    """The cell with IPython's line magics (``%config ...``, ``%xmode minimal``) blanked out,
    so that line numbers stay those of the cell."""
    return "\n".join("" if line.lstrip().startswith("%") else line
                     for line in source.split("\n"))


def _show_open_figures():
    """Figures made with pyplot and left open are shown at the end of the cell, as Jupyter's
    inline backend does."""
    if "matplotlib.pyplot" in sys.modules:
        plt = sys.modules["matplotlib.pyplot"]
        for number in plt.get_fignums():
            display(plt.figure(number))
        plt.close("all")


def _package_path(filename):
    """A module's file as its package shows it, bplib/validate.py: the path below the first
    folder up that is not a package (no __init__.py)."""
    root = os.path.dirname(filename)
    while os.path.exists(os.path.join(root, "__init__.py")):
        root = os.path.dirname(root)
    return os.path.relpath(filename, root)


def _error(err, name):
    """The error as the reader should see it: the frames of the page's cells only, then the
    exception; a frame in the library is named by its file and line, not printed whole."""
    last = traceback.format_exception_only(type(err), err)
    if isinstance(err, SyntaxError) and err.filename == name:
        text = "".join(last)  # the cell's line, a caret, the message
    else:
        frames = traceback.extract_tb(err.__traceback__)
        lines = traceback.format_list([f for f in frames if f.filename.startswith("<cell")])
        if frames and not frames[-1].filename.startswith("<"):
            where = _package_path(frames[-1].filename)
            lines.append(f"  raised in {where}, line {frames[-1].lineno}\n")
        text = "Traceback (most recent call last):\n" + "".join(lines + last)
    OUTPUTS.append({"type": "error", "ename": type(err).__name__, "evalue": str(err),
                    "traceback": text.rstrip("\n")})


class _Session:
    """What one page's Python holds that another page's must not see."""

    def __init__(self):
        import matplotlib
        import numpy as np

        self.namespace = {"__name__": "__main__"}
        self.modules = {}  # the page's own copies of the library, imported when first used
        self.rc = {key: value for key, value in matplotlib.rcParamsDefault.items()
                   if key != "backend"}
        self.random = np.random.RandomState().get_state()  # seeded afresh, as a new Python is
        self.errors = {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}


SESSIONS = {}  # page -> _Session, the current one's state live in sys.modules, matplotlib, numpy
MAX_SESSIONS = 4  # pages kept; the one used longest ago is forgotten first
_current = [None]


def _own(module_name):
    """Whether each page gets its own copy of this module: the library, and the course modules
    with state (``progress()`` remembers what passed); not this module or the stand-ins."""
    return module_name == "bplib" or module_name.startswith("bplib.") or (
        module_name.startswith("bpcourse.") and module_name not in ("bpcourse.browser",
                                                                   "bpcourse.widgets"))


def _unplug(names):
    """Take these modules out of sys.modules (and off a shared package that holds them)."""
    for name in names:
        module = sys.modules.pop(name)
        parent, _, child = name.rpartition(".")
        if getattr(sys.modules.get(parent), child, None) is module:
            delattr(sys.modules[parent], child)


def _plug(modules):
    """Put a page's modules back, each also as an attribute of its package."""
    sys.modules.update(modules)
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)


def _switch(page):
    """Make ``page``'s session the current one: put away the state of the page that ran last,
    bring back (or start) this page's."""
    import matplotlib
    import numpy as np

    if _current[0] == page:
        return SESSIONS[page]
    old = SESSIONS.get(_current[0])
    mine = [name for name in sys.modules if _own(name)]
    if old is not None:
        old.modules = {name: sys.modules[name] for name in mine}
        old.rc = {key: value for key, value in matplotlib.rcParams.items() if key != "backend"}
        old.random, old.errors = np.random.get_state(), np.geterr()
    _unplug(mine)
    session = SESSIONS.pop(page, None) or _Session()
    SESSIONS[page] = session  # now the newest
    while len(SESSIONS) > MAX_SESSIONS:
        del SESSIONS[next(iter(SESSIONS))]
    _plug(session.modules)
    with warnings.catch_warnings():  # settings matplotlib deprecates, in its own defaults
        warnings.simplefilter("ignore")
        matplotlib.rcParams.update(session.rc)
    np.random.set_state(session.random)
    np.seterr(**session.errors)
    _current[0] = page
    return session


def end_session(page):
    """Forget a page the reader has left."""
    SESSIONS.pop(page, None)
    if _current[0] == page:
        _unplug([name for name in sys.modules if _own(name)])
        _current[0] = None


def run_cell(source, name="<cell>", page="page"):
    """Run one cell in the namespace of the page ``page``: a JSON list of outputs (stream,
    display, error). As in Jupyter, the value of a final expression is shown unless it is None or
    the line ends with a semicolon."""
    namespace = _switch(page).namespace
    OUTPUTS.clear()
    source = _without_magics(source)
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Stream("stdout"), _Stream("stderr")
    try:
        tree = ast.parse(source, name)
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        quiet = last is not None and source.rstrip().endswith(";")
        if last is not None:
            tree.body.pop()
        exec(compile(tree, name, "exec"), namespace)  # noqa: S102  (the reader's own code)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), name, "eval"), namespace)  # noqa: S307
            if value is not None and not quiet:
                display(value)
        _show_open_figures()
    except BaseException as err:  # noqa: BLE001  (everything the reader's code raises is shown)
        _error(err, name)
    finally:
        sys.stdout, sys.stderr = saved
    return json.dumps(OUTPUTS)


def lab_frame(name, controls_json, page="page"):
    """One frame of the lab ``name`` for the controls (a JSON object), as JSON: what the
    JupyterLab widget computes, with the same code (``bpcourse.labs.frame``), in the page
    ``page``'s session."""
    _switch(page)
    from bpcourse import labs

    return json.dumps(labs.frame(name, **json.loads(controls_json)))
