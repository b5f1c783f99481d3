"""The call that opens every chapter: ``setup()``.

It replaces the lines each chapter used to start with::

    %config InlineBackend.figure_formats = ['svg']
    %config InlineBackend.print_figure_kwargs = {'metadata': {'Date': None}}
    plt.rcParams['svg.hashsalt'] = 'bplib'

It lives here and not in ``bplib`` because it reaches into IPython's inline backend, and
``bplib`` imports nothing from Jupyter.
"""
import matplotlib


def setup():
    """Draw the notebook's figures as SVG that is byte for byte the same in every build.

    Sets a fixed ``svg.hashsalt`` (matplotlib otherwise draws random ids into each SVG) and, in a
    Jupyter kernel, what the ``%config`` lines above set: inline figures as SVG, and no date in
    their metadata. Outside IPython (plain Python, or Pyodide in the browser without a kernel)
    there is no inline backend to configure, and only the salt is set.
    """
    matplotlib.rcParams["svg.hashsalt"] = "bplib"
    try:
        from IPython import get_ipython
        from matplotlib_inline.config import InlineBackend
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    # The backend reads this object when it first draws, and follows changes made after that.
    inline = InlineBackend.instance(parent=shell)
    inline.print_figure_kwargs = {"metadata": {"Date": None}}
    inline.figure_formats = {"svg"}
