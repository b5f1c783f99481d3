"""bpcourse.notebook.setup: in a kernel it sets what the chapters' %config lines used to set, and
a figure comes out as the same SVG; outside IPython it sets the SVG salt and nothing fails."""
import subprocess
import sys

import matplotlib
import nbformat
import pytest
from matplotlib_inline.config import InlineBackend
from nbclient import NotebookClient

from book import ROOT
from bpcourse.kernel import IPCKernelManager
from bpcourse.notebook import setup

MAGICS = """import matplotlib.pyplot as plt
%config InlineBackend.figure_formats = ['svg']
%config InlineBackend.print_figure_kwargs = {'metadata': {'Date': None}}
plt.rcParams['svg.hashsalt'] = 'bplib'"""
SETUP = "from bpcourse.notebook import setup\nsetup()"
FIGURE = """import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 1))
ax.plot([0, 1], [1, 0])
plt.close(fig)
fig"""
STATE = """from matplotlib_inline.config import InlineBackend
inline = InlineBackend.instance()
print(sorted(inline.figure_formats), inline.print_figure_kwargs,
      plt.rcParams['svg.hashsalt'])"""


def run(*cells):
    """Run the cells in a fresh kernel; the outputs of the last figure and the printed state."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   kernel_manager_class=IPCKernelManager).execute()
    figure = [c for c in nb.cells if c.source == FIGURE][-1]
    return figure.outputs, nb.cells[-1].outputs[0].text


@pytest.fixture(scope="module")
def by_magics():
    return run(MAGICS, FIGURE, STATE)


@pytest.mark.jupyter
@pytest.mark.parametrize("cells", [(SETUP, FIGURE, STATE), (FIGURE, SETUP, FIGURE, STATE)],
                         ids=["before the first figure", "after a figure"])
def test_in_a_kernel_setup_sets_what_the_magics_set(by_magics, cells):
    outputs, state = run(*cells)
    assert state == by_magics[1] == "['svg'] {'metadata': {'Date': None}} bplib\n"
    (output,), (reference,) = outputs, by_magics[0]
    assert output["data"] == reference["data"]          # the same SVG, byte for byte
    assert set(output["data"]) == {"image/svg+xml", "text/plain"}
    assert "<svg" in output["data"]["image/svg+xml"]
    assert "<dc:date>" not in output["data"]["image/svg+xml"]


def test_outside_ipython_setup_sets_the_salt_and_nothing_else():
    with matplotlib.rc_context():
        setup()
        assert matplotlib.rcParams["svg.hashsalt"] == "bplib"
    assert not InlineBackend.initialized()


def test_without_ipython_installed_setup_still_works():
    """As in Pyodide without a kernel: IPython and matplotlib_inline cannot be imported."""
    code = ("import sys; sys.modules['IPython'] = sys.modules['matplotlib_inline'] = None\n"
            "from bpcourse.notebook import setup; setup()\n"
            "import matplotlib; print(matplotlib.rcParams['svg.hashsalt'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout == "bplib\n" and done.stderr == ""
