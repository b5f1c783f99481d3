"""The prose defines its terms where a reader first meets them: for each term below, the first
paragraph of the chapters (in reading order, code left out) that uses it also defines it."""
import re

import pytest
from book import ROOT, toc_pages

# term (as found in the text) -> what its defining sentence says
DEFINED = {
    r"Jacobian": r"\*\*Jacobian\*\*.*matrix",
    r"VJP|vector-Jacobian": r"vector-Jacobian product",
    r"eigenvector": r"\*\*eigenvector\*\*.*only stretches",
    r"singular value": r"\*\*singular values\*\*.*stretches",
    r"Frobenius": r"\*\*Frobenius norm\*\*.*sum of the squares",
    r"momentum": r"[Mm]omentum\s+keeps a running sum of past gradients",
}


def prose(text):
    """The text without code: code cells and fenced code blocks go, the insides of directives
    (notes, admonitions) stay; inline code stays, so `VJP_RULES` counts as a use."""
    kept, fences = [], []  # fences: for each open fence, whether its content is code
    for line in text.splitlines():
        fence = re.match(r"\s*(`{3,}|:{3,})(\{?[\w-]*\}?)", line)
        if fence and fences and not fence[2] and fence[1] == fences[-1][0]:
            fences.pop()
        elif fence and (fence[2] or not fences or not fences[-1][1]):
            code = fence[2] in ("", "{code-cell}", "{code-block}", "{code}") or \
                fence[2].isalpha()  # ```python
            fences.append((fence[1], code or bool(fences and fences[-1][1])))
        elif not (fences and fences[-1][1]):
            kept.append(line)
    return "\n".join(kept)


def paragraphs():
    """The chapters' and exercises' prose paragraphs, in reading order."""
    for name in toc_pages():
        if name.startswith(("chapters/", "exercises/")):
            for paragraph in re.split(r"\n\s*\n", prose((ROOT / f"{name}.md").read_text())):
                yield name, paragraph


@pytest.mark.parametrize("term", DEFINED)
def test_a_term_is_defined_where_it_first_appears(term):
    name, first = next((n, p) for n, p in paragraphs() if re.search(term, p))
    assert re.search(DEFINED[term], first, flags=re.S), f"{name}: {term} first used here, " \
        f"undefined:\n{first}"
