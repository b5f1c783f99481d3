"""`make pdf`: the whole book as one PDF, every chapter and exercise in it, its formulas typeset
(no TeX left raw), its figures drawn, its headings as the PDF's outline."""
import subprocess
import sys

import pytest
from book import JUPYTER_BOOK, ROOT, first_trouble, toc_pages

pytestmark = [pytest.mark.book, pytest.mark.browser, pytest.mark.xdist_group("book")]

sys.path.insert(0, str(ROOT / "tools"))


@pytest.fixture(scope="module")
def pdf(built_book, tmp_path_factory):
    """The PDF of the tested build: its single-page HTML made next to it (so the executed
    notebooks come from its cache), then printed as `make pdf` does."""
    from book_pdf import print_book

    out_dir = built_book[2].parent.parent
    proc = subprocess.run([str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out_dir),
                           "--builder", "singlehtml", "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, first_trouble(proc.stdout + proc.stderr)
    html = out_dir / "_build" / "singlehtml"
    return html, print_book(html, tmp_path_factory.mktemp("pdf") / "book.pdf")


def test_the_pdf_holds_every_chapter_and_exercise_with_math_typeset(pdf, built_book):
    import re

    import pypdf

    html, path = pdf
    reader = pypdf.PdfReader(path)
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    titles = []
    for page in toc_pages()[1:]:
        title = re.search(r"<h1>(?:<span[^>]*>([^<]*)</span>)?([^<]+)",
                          (built_book[2] / f"{page}.html").read_text())
        titles.append(((title[1] or "") + title[2]).strip())
    missing = [t for t in titles if " ".join(t.split()) not in " ".join(text.split())]
    assert missing == [] and len(titles) == 17  # 8 chapters, 8 exercise pages, the notation page
    assert not re.search(r"\\begin\{|\$\$|\{glue", text)  # (code cells hold TeX in strings)
    assert "ϕ′(z) ≈ ϕ(z +ϵ) −ϕ(z −ϵ)" in text  # chapter 1's formula (1.6), typeset
    outline = [item for item in reader.outline if not isinstance(item, list)]
    nested = sum(len(item) for item in reader.outline if isinstance(item, list))
    assert len(outline) + nested >= len(titles)
    figures = len(re.findall(r'<img [^>]*src="_images/', (html / "intro.html").read_text()))
    drawn = sum(len((p.get("/Resources") or {}).get("/XObject", {}).get_object() or {})
                for p in reader.pages if (p.get("/Resources") or {}).get("/XObject"))
    assert figures >= 40 and drawn >= figures, (figures, drawn)
