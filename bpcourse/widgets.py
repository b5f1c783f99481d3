"""The book's labs as widgets: live in JupyterLab, precomputed in the HTML book.

``lr_lab()``, ``init_lab()`` and ``depth_lab()`` return a ``Lab``, an anywidget whose view is
drawn by ``lab.js``. In a kernel, moving a control sends the new ``controls`` to Python, which
computes the ``frame`` (``bpcourse.labs``) and sends it back; ``lab.set(lr=1.5)`` does the same from
code, and ``lab.frame`` is the current frame. Displayed, a lab also offers a ``text/html``
version: every frame of the lab's grid, precomputed once per process, with ``lab.js`` inline.
The book shows that version (``nb_mime_priority_overrides`` in ``_config.yml``); JupyterLab
shows the widget.

``import bpcourse`` does not import this module, so numpy-only code never loads the widget stack.
"""
import functools
import json
from pathlib import Path

import anywidget
import traitlets

from . import labs

JS = (Path(__file__).with_name("lab.js")).read_text()


@functools.cache
def static_html(name):
    """The lab as one self-contained element: its precomputed frames as JSON, and lab.js."""
    payload = json.dumps(labs.precompute(name), separators=(",", ":")).replace("</", "<\\/")
    return (f'<div class="bplib-lab" data-lab="{name}">'
            f'<script type="application/json">{payload}</script>'
            f"<script>{JS}\nbplibLab.mountStatic(document.currentScript.parentElement);</script>"
            "</div>")


class Lab(anywidget.AnyWidget):
    """One of ``bpcourse.labs.LABS``, live: ``controls`` in, ``frame`` out (see the module)."""

    _esm = JS + "\nexport default { render: (context) => globalThis.bplibLab.render(context) };\n"
    spec = traitlets.Dict().tag(sync=True)
    controls = traitlets.Dict().tag(sync=True)
    frame = traitlets.Dict().tag(sync=True)
    served = traitlets.Int(0).tag(sync=True)  # frames sent: the view waits for each one

    def __init__(self, name, **initial):
        super().__init__(spec=labs.spec(name))
        self.controls = {**labs.defaults(name), **initial}  # checked, then the first frame
        self.on_msg(self._message)

    def _message(self, widget, content, buffers):
        if content.get("do") == "rerun":
            self.rerun()

    @traitlets.validate("controls")
    def _check(self, proposal):
        return labs.check_controls(self.spec["lab"], proposal["value"])

    @traitlets.observe("controls")
    def _compute(self, change=None):
        with self.hold_sync():  # one message: the frame (if it changed) and the count
            try:
                self.frame = labs.frame(self.spec["lab"], **self.controls)
            finally:
                self.served += 1

    def set(self, **values):
        """Move some controls, e.g. ``lab.set(lr=1.5, optimizer="momentum")``; the frame follows."""
        self.controls = {**self.controls, **values}

    def rerun(self):
        """Compute the frame again from the same controls (the same seed, so the same initial
        weights); True if it came out identical, as it always should."""
        before = self.frame
        self._compute()
        return self.frame == before

    def _repr_mimebundle_(self, **kwargs):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        return {**data, "text/html": static_html(self.spec["lab"])}, metadata


def lr_lab(**initial):
    """The learning-rate lab: lr, optimizer ("SGD", "momentum"), steps, seed."""
    return Lab("lr", **initial)


def init_lab(**initial):
    """The initialisation lab: scheme ("normal", "xavier", "he"), sigma, activation, depth, seed."""
    return Lab("init", **initial)


def depth_lab(**initial):
    """The depth-and-skips lab: depth and seed; plain against residual."""
    return Lab("depth", **initial)
