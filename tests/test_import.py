import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "bplib"
HEAVY = ["matplotlib", "ipywidgets", "sklearn", "torch"]


def test_import_stays_light():
    """Importing the numerical modules loads none of the heavy libraries."""
    code = ("import sys, bplib, bplib.layers, bplib.losses, bplib.init, bplib.optim, "
            "bplib.gradcheck, bplib.data, bplib.validate; "
            f"print([name for name in {HEAVY!r} if name in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def code_lines(path):
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    source = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if ast.get_docstring(node, clean=False) is not None:
                docstrings.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if line.strip() and not line.lstrip().startswith("#") and number not in docstrings)


# What the book teaches with: autodiff, layers, losses, optimisers, checks, data, training.
# Presentation and course tooling (plots, the interactive labs, exercise checks and the
# grader) are budgeted apart, so growth in either is visible on its own.
TOOLING = {"viz.py", "labs.py", "widgets.py", "check.py", "grade.py"}


def test_package_stays_small():
    """The library stays in the league of micrograd, minitorch and CS231n (teenygrad's sz.py):
    its numerical core under 1,500 code lines; plots, labs, exercise checks and grader under 1,300."""
    counts = {path.name: code_lines(path) for path in sorted(PACKAGE.rglob("*.py"))}
    core = {name: n for name, n in counts.items() if name not in TOOLING}
    tooling = {name: n for name, n in counts.items() if name in TOOLING}
    assert sum(core.values()) < 1500, core
    assert sum(tooling.values()) < 1300, tooling
