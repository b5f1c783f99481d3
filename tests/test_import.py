"""The shape of the two packages: bplib is small, loads with numpy alone and never reaches into
the course machinery (bpcourse); neither package has an import cycle."""
import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).parents[1]
LIBRARY, COURSE = ROOT / "bplib", ROOT / "bpcourse"
JUPYTER = {"IPython", "ipykernel", "ipywidgets", "anywidget", "traitlets", "jupyter_client",
           "jupytext", "nbformat", "myst_nb", "tqdm"}
BUDGET = 1500


def code_lines(source):
    """Lines holding code: not blank, not only a comment, not part of a docstring. Counted from
    Python's own tokens (as teenygrad's sz.py does), so a multi-line string that is code counts
    and a docstring of a module, class or function does not."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def test_code_lines_counts_what_it_should():
    source = '"""Module\ndoc."""\nimport os  # comment\n\n# only a comment\n' \
             'def f(x):\n    """Doc."""\n    s = """two\nlines"""\n    return x\n'
    assert code_lines(source) == 5  # import, def, s = (2 lines), return


def test_the_library_stays_small():
    """bplib, what a learner reads, stays in the league of micrograd, minitorch and CS231n."""
    counts = {p.name: code_lines(p.read_text()) for p in sorted(LIBRARY.glob("*.py"))}
    assert sum(counts.values()) <= BUDGET, (sum(counts.values()), counts)


def imports_of(path):
    """(module, line) of every import in a file, function-level ones included; relative imports
    resolved against the file's package."""
    package = path.parent.name
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (package + ("." + node.module if node.module else "")) if node.level \
                else node.module
            found.append((base, node.lineno))
            if node.level and not node.module:  # from . import a, b: each is a module
                found += [(f"{package}.{alias.name}", node.lineno) for alias in node.names]
    return found


def test_the_library_imports_numpy_and_no_course_or_jupyter_code():
    """matplotlib only in viz; nothing from Jupyter or bpcourse anywhere."""
    for path in sorted(LIBRARY.glob("*.py")):
        for module, line in imports_of(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            assert top != "bpcourse", where
            assert top not in JUPYTER, where
            if top == "matplotlib":
                assert path.name == "viz.py", where


def import_graph(package):
    graph = {}
    for path in sorted(package.glob("*.py")):
        name = f"{package.name}.{path.stem}" if path.stem != "__init__" else package.name
        graph[name] = {m for m, _ in imports_of(path)
                       if m.startswith(package.name + ".") and m != name}
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    for package in (LIBRARY, COURSE):
        assert find_cycle(import_graph(package)) is None, package.name


def test_import_stays_light():
    """Importing every numerical module loads numpy and nothing heavy, nothing from Jupyter."""
    modules = sorted(p.stem for p in LIBRARY.glob("*.py") if p.stem not in ("__init__", "viz"))
    code = (f"import sys, bplib; import {', '.join('bplib.' + m for m in modules)}; "
            "print(sorted({n.split('.')[0] for n in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    loaded = set(ast.literal_eval(result.stdout))
    heavy = {"matplotlib", "sklearn", "torch", "scipy", "bpcourse"} | JUPYTER
    assert not loaded & heavy, loaded & heavy

