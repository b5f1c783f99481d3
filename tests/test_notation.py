"""One notation across the book (issue 11): every bare letter on the notation page has one
meaning, in the chapters, the exercises, bplib's docstrings and its figure labels. The tests
read the sources; each rule catches a use the book had before the notation was fixed."""
import re

import pytest
from book import ROOT

NOTATION = ROOT / "chapters" / "notation.md"
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.DOTALL)

# (what it catches, a pattern that finds it in a formula)
MISUSES = [
    ("B as the batch size (N)", r"^\s*B\s*$|\(B,|\bB\s*\\times|of \$B\$"),
    ("L as the depth (D): a subscript or power L, L - l, 1/L", r"_L\b|_\{L[-+}]|\^L\b|\^\{L|L\s*-\s*\\ell|\\dots,\s*L\b|1/L\b"),
    ("L as a sequence length (T)", r"L\s*-\s*K\s*\+\s*1|C_\\text\{in\},\s*L\)"),
    ("h for a layer's activation (A, a; h is a recurrent hidden state h_t)",
     r"\bh_(\\ell|\{\\ell|[1-9]|\{[1-9]|[inL]\b|\{[inL])|\\mathbf\s*h(?!_t|_\{t|_0|_T)|\[h\^2\]|\(h\)"),
    ("hidden widths as d and h ((n_0, n_1))", r"\((d|N|B), h\)|\(h,\s*\)|\(h, [CdN]\)|\(d, h_?1?\)"),
    ("delta for anything but dL/dZ (a Kronecker delta, or dL/dA)",
     r"\\delta\w*(\[[^]]*\])?\s*=\s*\\partial\s*L\s*/\s*\\partial(?:\s|\\,)*(?!\s|\\,|(\\mathbf\s*)?[Zz])"),
    ("lambda for weight decay (lambda is an eigenvalue; lambda_wd)", r"\\lambda\s*W\b|\\frac\{?\\lambda\}?\s*\{?2"),
    ("mu or sigma as batch statistics (mu_B, sigma_B)", r"\\mu\s*=\s*\\frac|-\s*\\mu\b(?!_)|\\sigma\s*=\s*\\sqrt\{\\frac"),
    ("sigma as the weights' scale (sigma_w)", r"\\sigma\s*=\s*[0-9g\\]|\\mathcal\s*N\(0,\s*\\sigma\^2\)|\\sigma\\sqrt"),
    ("epsilon for batch norm's constant (epsilon_BN)", r"\+\s*\\epsilon\b(?!_)\s*\}"),
    ("H for anything but the Hessian (H_t in recurrent nets)", r"H\(\\mathbf x\)|J_H|J_\{H|\\partial H\b|H\s*=\s*X\s*\+"),
    ("D for anything but the depth", r"D_\\ell|D_\{\\ell"),
    ("beta as momentum (mu)", r"\\beta\s*\\mathbf\s*v"),
    ("lr written in a formula (eta)", r"\\text\{lr\}"),
    ("an example index other than i", r"_\{nt\}|\[n, [a-z], |\\sum_\{?k=1\}?\^\{?N\}?"),
]


def formulas(text):
    """Every $...$ and $$...$$ of a page, code cells included (figure labels are formulas)."""
    return [m.group(1) or m.group(2) for m in MATH.finditer(text)]


def misuses(text):
    """(rule, formula) for every formula that breaks a rule; prose outside formulas is left
    alone, except the few phrases that give a letter another meaning."""
    found = [(rule, f) for f in formulas(text) for rule, pattern in MISUSES
             if re.search(pattern, f, flags=re.MULTILINE)]
    for rule, pattern in [("an example index other than i", r"every example \$n\$|example \$k\$"),
                          ("B as the batch size (N)", r"batch of \$B\$"),
                          ("delta for anything but dL/dZ (a Kronecker delta, or dL/dA)",
                           r"\$\\delta_\{?\w+\}?\$ (equal to|is) 1\b")]:
        found += [(rule, m.group(0)) for m in re.finditer(pattern, text)]
    return found


def pages():
    return sorted(p for p in [*(ROOT / "chapters").glob("*.md"), *(ROOT / "exercises").glob("*.md"),
                              ROOT / "intro.md"] if p != NOTATION)


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_uses_each_letter_with_its_one_meaning(path):
    assert misuses(path.read_text()) == [], str(path.relative_to(ROOT))


def test_bplib_docstrings_and_figure_labels_use_the_notation():
    found = {p.name: misuses(p.read_text()) for p in sorted((ROOT / "bplib").glob("*.py"))}
    assert {name: m for name, m in found.items() if m} == {}


def test_the_rules_catch_what_the_book_used_to_write():
    """Each rule fires on a sentence the book had before the notation (so none is dead)."""
    before = {
        "B as the batch size (N)": "the rows of a matrix $X$ of shape $(B, d)$.",
        "L as the depth (D): a subscript or power L, L - l, 1/L": r"$\ell = 1, \dots, L$",
        "L as a sequence length (T)": r"$T = L - K + 1$ positions",
        "h for a layer's activation (A, a; h is a recurrent hidden state h_t)":
            r"$\mathbf h_\ell = \phi(\mathbf z_\ell)$",
        "hidden widths as d and h ((n_0, n_1))": r"with $W_1$ of shape $(d, h)$",
        "delta for anything but dL/dZ (a Kronecker delta, or dL/dA)":
            r"with $\delta_{kj}$ equal to 1 when $k = j$",
        "lambda for weight decay (lambda is an eigenvalue; lambda_wd)": r"adds $\lambda W$ to",
        "mu or sigma as batch statistics (mu_B, sigma_B)": r"$\mu = \frac1N \sum_{i=1}^N x_i$",
        "sigma as the weights' scale (sigma_w)": r"with $\sigma = 0.05$",
        "epsilon for batch norm's constant (epsilon_BN)": r"$\sqrt{v + \epsilon}$",
        "H for anything but the Hessian (H_t in recurrent nets)": r"$H(\mathbf x) = \mathbf x + F(\mathbf x)$",
        "D for anything but the depth": r"$J_\ell = D_\ell W_\ell^\top$",
        "beta as momentum (mu)": r"$\mathbf v \leftarrow \beta \mathbf v + \mathbf g$",
        "lr written in a formula (eta)": r"$\text{lr}\cdot\partial L/\partial W_\ell$",
        "an example index other than i": r"a mask $m_{nt}$",
    }
    assert set(before) == {rule for rule, _ in MISUSES}
    for rule, sentence in before.items():
        assert rule in {r for r, _ in misuses(sentence)}, rule
    assert misuses(r"$\boldsymbol\delta = \partial L/\partial \mathbf a_\ell$")  # dL/dA is not delta
    assert misuses(r"$\delta_\ell = \partial L/\partial Z_\ell$, $\mathbf h_t$, $\lambda_\text{max}$") == []


def symbols():
    """The first column of the notation page's tables: one entry per symbol."""
    rows = [line.split("|")[1].strip() for line in NOTATION.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| symbol")]
    return [s.strip() for row in rows for s in re.split(r",\s*(?=\$)", row)]


def test_the_notation_page_lists_each_symbol_once():
    listed = symbols()
    assert len(listed) >= 40, listed
    assert sorted(s for s in set(listed) if listed.count(s) > 1) == []


def test_the_notation_page_is_in_the_table_of_contents_and_linked_from_the_introduction():
    toc = (ROOT / "_toc.yml").read_text()
    assert re.search(r"caption: Reference\n\s+chapters:\n\s+- file: chapters/notation\n", toc)
    assert toc.index("exercises/07_resnet_skips") < toc.index("chapters/notation")
    box = re.search(r"The maths you will meet(.*?)\n```", (ROOT / "intro.md").read_text(), re.DOTALL)
    assert box and "(chapters/notation.md)" in box[1]


def test_each_symbol_on_the_page_is_used_in_the_chapters():
    """A symbol the page lists appears in the chapters' formulas (so the page describes the book,
    not an intention). Compared without spaces and bold markup."""
    def norm(s):
        return re.sub(r"\\mathbf\s*|\\boldsymbol|\s+|[{}]", "", s)

    text = norm(" ".join(f for p in sorted((ROOT / "chapters").glob("0*.md"))
                         for f in formulas(p.read_text())))
    pending = {"$\\mathbf h_t$", "$H_t$"}  # recurrent nets: the BPTT section, merged separately
    missing = [s for s in symbols() if s.startswith("$") and s not in pending
               and norm(s.strip("$")) not in text]
    assert missing == []


CELL = re.compile(r"```\{code-cell\} ipython3\n(.*?)```\n", re.DOTALL)
PLUMBING = re.compile(r"\bglue\(|\bsetup\(\)|from myst_nb import|savefig|rcParams|plt\.(subplots|close)\(")


def visible_plumbing(text):
    """Lines of build plumbing in the code cells a page shows (all but those tagged remove-cell;
    the page still runs those, unseen, in order)."""
    found = []
    for cell in CELL.finditer(text):
        head = cell[1].split("\n\n", 1)[0] if cell[1].startswith((":", "---")) else ""
        if "remove-cell" not in head:
            found += [line for line in cell[1].splitlines() if PLUMBING.search(line)]
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "chapters").glob("0*.md")), ids=lambda p: p.stem)
def test_glue_and_figure_set_up_stay_out_of_the_visible_cells(path):
    text = path.read_text()
    assert visible_plumbing(text) == []
    assert "glue(" in text  # the numbers are still glued, from cells the page does not show


def test_the_plumbing_rule_catches_a_visible_glue_call():
    visible = "```{code-cell} ipython3\nx = 1\nglue(\"x\", x, display=False)\n```\n"
    hidden = "```{code-cell} ipython3\n:tags: [remove-cell]\n\nglue(\"x\", x, display=False)\n```\n"
    assert visible_plumbing(visible) == ['glue("x", x, display=False)']
    assert visible_plumbing(hidden) == []


def names_only_off_page(text):
    """Names that cells of the page read but only cells tagged not-in-page define (those need
    PyTorch and do not run in the reader's browser, where every other cell runs, hidden ones
    included): a cell that reads one fails in the page."""
    import ast

    defined_on, defined_off, problems = set(), set(), []
    for cell in CELL.finditer(text):
        head = cell[1].split("\n\n", 1)[0] if cell[1].startswith((":", "---")) else ""
        source = cell[1][len(head):] if head else cell[1]
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.startswith("%")))
        stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        stored |= {a.asname or a.name.split(".")[0] for n in ast.walk(tree)
                   if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        stored |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        if "not-in-page" in head:
            defined_off |= stored
            continue
        read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        problems += sorted((read & defined_off) - defined_on - stored)
        defined_on |= stored
    return problems


@pytest.mark.parametrize("path", sorted((ROOT / "chapters").glob("0*.md")), ids=lambda p: p.stem)
def test_a_cell_the_page_runs_reads_no_name_that_only_pytorch_cells_define(path):
    assert names_only_off_page(path.read_text()) == []


def test_the_off_page_rule_catches_a_hidden_glue_of_a_pytorch_result():
    text = ("```{code-cell} ipython3\n:tags: [not-in-page]\n\ntorch_diff = 1.0\n```\n"
            "```{code-cell} ipython3\n:tags: [remove-cell]\n\nglue(\"d\", torch_diff)\n```\n")
    assert names_only_off_page(text) == ["torch_diff"]
    assert names_only_off_page(text.replace("[remove-cell]", "[remove-cell, not-in-page]")) == []
