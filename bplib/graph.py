"""Draw the computation graph behind a :class:`bplib.engine.Value` with Graphviz.

Each Value is a box ``label | data 2.0000 | grad -0.0305``; each operation is an oval
between its inputs and its result. In Jupyter the returned ``graphviz.Digraph`` shows
itself as inline SVG, so a built book needs no network.
"""
import shutil

from bplib.engine import topological_order

_RANKDIRS = ("LR", "RL", "TB", "BT")


def draw_graph(root, rankdir="LR", fmt="svg"):
    """Return a ``graphviz.Digraph`` of every Value that ``root`` depends on.

    Inputs:
    - root: the Value to draw from (usually the loss).
    - rankdir: "LR" (inputs left, output right), "RL", "TB" or "BT".
    - fmt: output format used by ``.render()`` / ``.pipe()``, e.g. "svg" or "png".

    Node ids follow the topological order (``v0``, ``v1``, ...), so drawing the same
    graph twice gives identical output.
    """
    if rankdir not in _RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be one of {_RANKDIRS}, got {rankdir!r}")
    try:
        import graphviz
    except ImportError as err:
        raise ImportError("draw_graph needs the Python package 'graphviz' "
                          "(pip install graphviz)") from err
    # In the reader's browser, bpcourse's stand-in for graphviz has the page draw the graph.
    if shutil.which("dot") is None and not getattr(graphviz.Digraph, "draws_in_page", False):
        raise RuntimeError("draw_graph needs Graphviz's 'dot' program, which is not on PATH; "
                           "install it with `apt-get install graphviz` (Debian/Ubuntu)")

    order = topological_order(root)
    ids = {node: f"v{i}" for i, node in enumerate(order)}
    dot = graphviz.Digraph(format=fmt, graph_attr={"rankdir": rankdir},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"})
    for node in order:
        fields = [f"data {node.data:.4f}", f"grad {node.grad:.4f}"]
        if node.label:
            fields.insert(0, _escape(node.label))
        dot.node(ids[node], " | ".join(fields), shape="record")
        if node._children:
            op_id = ids[node] + "_op"
            dot.node(op_id, _escape(_op_text(node)), shape="ellipse")
            dot.edge(op_id, ids[node])
            for child in node._children:
                dot.edge(ids[child], op_id)
    return dot


def _op_text(node):
    """The operation as shown in the drawing: "**" shows its exponent, "neg" shows "-"."""
    return f"**{node._const[0]:g}" if node.op == "**" else "-" if node.op == "neg" else node.op


def _escape(text):
    """Backslash the characters that have a meaning inside a Graphviz record label."""
    for ch in "\\{}|<>":
        text = text.replace(ch, "\\" + ch)
    return text
