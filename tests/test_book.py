"""The book builds from a clean folder with warnings as errors, and every page it promises is there."""
import re

import pytest

from book import ROOT, first_trouble, notebook_pages, toc_pages

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

MAX_PAGE_BYTES = 2 * 1024 * 1024


def test_build_passes_with_warnings_as_errors(built_book):
    returncode, output, html = built_book
    # Sphinx reports "<where>: WARNING: <what>" (the kernel's own log lines are not Sphinx's).
    warnings = [line for line in output.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL):", line)]
    assert returncode == 0, first_trouble(output)
    assert not warnings, "\n".join(warnings)
    assert (html / "index.html").exists()


@pytest.mark.parametrize("page", toc_pages())
def test_every_toc_page_is_built(built_book, page):
    html = built_book[2] / f"{page}.html"
    assert html.exists(), f"{page} is in _toc.yml but {html.name} was not built"
    text = html.read_text()
    assert re.search(r"<h1[^>]*>", text), f"{page}.html has no title"
    source = (ROOT / f"{page}.md").read_text()
    if "{code-cell}" in source:
        # The notebook was executed: its outputs are in the page.
        assert "cell_output" in text, f"{page}.html shows no cell output"
    assert "{glue" not in text, f"{page}.html has an unresolved glue role"


@pytest.mark.parametrize("page", toc_pages())
def test_pages_load_nothing_from_other_hosts(built_book, page):
    text = (built_book[2] / f"{page}.html").read_text()
    remote = re.findall(r"""<(?:script|link|img)[^>]+(?:src|href)=["'](https?://[^"']+)""", text)
    assert not remote, f"{page}.html loads {remote}"


def test_vendored_javascript_is_served_by_the_site(built_book):
    html = built_book[2]
    mathjax = html / "mathjax" / "tex-mml-chtml.js"
    widgets = html / "jupyter-widgets" / "embed.js"
    for path in (mathjax, widgets, html / "jupyter-widgets" / "mathjax2-shim.js"):
        assert path.exists(), path
    # A real bundle, not the CDN loader that fetch_vendor.sh writes when npm is missing.
    assert mathjax.stat().st_size > 500_000 and widgets.stat().st_size > 1_000_000
    # And it is not injected into every page from _static/.
    assert not list((html / "_static").rglob("embed.js"))


@pytest.mark.parametrize("page", toc_pages())
def test_page_size_budget(built_book, page):
    """HTML plus the images it references stays under 2 MB (vendored JavaScript not counted)."""
    html = built_book[2]
    page_file = html / f"{page}.html"
    total = page_file.stat().st_size
    for src in re.findall(r'<img[^>]+src="([^"]+)"', page_file.read_text()):
        if not src.startswith("data:"):
            total += (page_file.parent / src).resolve().stat().st_size
    assert total < MAX_PAGE_BYTES, f"{page}: {total / 1e6:.2f} MB"


def test_the_book_tests_share_one_worker(request):
    """The tests that need the built book are grouped (xdist_group "book") so that one worker
    builds it once; if the grouping stops working, each worker builds its own copy at the same
    time. pytest-xdist marks a grouped test by suffixing its node id with "@group"; with
    pytest 9.2 the suffix, and so the grouping, silently disappears (pytest-xdist#1386)."""
    if hasattr(request.config, "workerinput"):  # under xdist (the default: -n 2)
        assert request.config.option.loadgroup, "run with --dist loadgroup (pyproject addopts)"
        assert request.node.nodeid.endswith("@book"), request.node.nodeid
    else:  # a single process runs every test, grouped or not
        assert not getattr(request.config.option, "numprocesses", None)


def test_chapters_carry_the_numbers_the_text_cites_them_by(built_book):
    """The sidebar and each chapter's title say "3. The chain rule ...", since the text says
    "chapter 3"; the exercises stay unnumbered."""
    chapters = [p for p in notebook_pages() if p.startswith("chapters/")]
    sidebar = (built_book[2] / "intro.html").read_text()
    for number, page in enumerate(chapters, 1):
        html = (built_book[2] / f"{page}.html").read_text()
        title = re.search(r'<h1><span class="section-number">(\d+)\. </span>([^<]+)', html)
        assert title and int(title[1]) == number, page
        assert re.search(rf'href="{page}.html">{number}\. {re.escape(title[2].strip())}<', sidebar), page
    assert 'href="exercises/01_forward_pass.html">Exercises' in sidebar


@pytest.mark.parametrize("page", notebook_pages())
def test_each_notebook_page_offers_its_notebook(built_book, page):
    """The page's download menu links its executed notebook, beside the .md source."""
    import nbformat

    html = (built_book[2] / f"{page}.html").read_text()
    link = re.search(r'href="([^"]*_sources/' + re.escape(page) + r'\.ipynb)"', html)
    assert link, f"{page}: no .ipynb in the download menu"
    nb = nbformat.read((built_book[2] / page).parent / link[1], as_version=4)
    nbformat.validate(nb)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_the_exercises_download_as_one_archive_without_solutions(built_book):
    import io
    import zipfile

    import nbformat

    exercises = [p for p in toc_pages() if p.startswith("exercises/")]
    with zipfile.ZipFile(built_book[2] / "downloads" / "exercises.zip") as z:
        names = sorted(z.namelist())
        assert names == sorted(f"{p}.ipynb" for p in exercises)
        for name in names:
            nb = nbformat.read(io.StringIO(z.read(name).decode()), as_version=4)
            source = "\n".join(c.source for c in nb.cells)
            assert "BEGIN SOLUTION" not in source and 'raise NotImplementedError("fill in' in source
    for page in exercises:
        html = (built_book[2] / f"{page}.html").read_text()
        assert 'href="../downloads/exercises.zip"' in html, page


def test_figures_have_alt_text_that_says_what_they_show(built_book):
    """No figure is described by its file name: each says what it shows (titles, axes, legend,
    a graph's labels), without tick values."""
    alts = []
    for page in toc_pages():
        html = (built_book[2] / f"{page}.html").read_text()
        alts += [(page, a) for a in re.findall(r'<img alt="([^"]*)"[^>]*src="[^"]*_images/', html)]
    assert len(alts) >= 40
    assert all(re.match(r"(Figure|Graph): \S", a) and "_images" not in a and ".svg" not in a
               for _, a in alts), [a for a in alts if not a[1].startswith(("Figure: ", "Graph: "))]
    by_page = {}
    for page, alt in alts:
        by_page.setdefault(page, []).append(alt)
    assert any("30 steps of gradient descent on the bowl" in a and "lr 0.5" in a
               and "0.5;" not in a.replace("lr 0.5;", "") for a in by_page["chapters/05_training"])
    assert any(a.startswith("Graph: ") and "grad 7.0000" in a for a in by_page["chapters/03_chain_rule"])


def test_the_index_lists_the_concepts_and_leads_to_where_they_are_taught(built_book):
    """The index page is not empty: the concepts the chapters teach, each linked to its section."""
    html = (built_book[2] / "genindex.html").read_text()
    links = re.findall(r'<a href="(chapters/[^"#]+\.html#[^"]+)">', html)
    entries = re.findall(r'<li><a href="chapters/[^"]+">([^<]+)</a>', html)
    assert len(links) >= 60 and len(set(entries)) >= 60, len(links)
    for term in ["Jacobian", "chain rule", "gradient checking", "batch normalisation",
                 "He initialisation", "residual connection", "gradient checkpointing"]:
        assert term in entries, term
    for link in links:
        page, anchor = link.split("#")
        assert f'id="{anchor}"' in (built_book[2] / page).read_text(), link


def test_no_visible_code_cell_holds_build_plumbing(built_book):
    """glue(...) and the figure set-up run in cells the page does not show (tag remove-cell):
    the code a reader sees is the lesson. Pygments splits a call into a name and its
    parenthesis, so that is what a visible call looks like in the HTML."""
    plumbing = re.compile(r'<span class="n">(glue|setup)</span><span class="p">\(|'
                          r'<span class="nn">myst_nb</span>|<span class="n">rcParams</span>|'
                          r'<span class="n">savefig</span>')
    seen = {}
    for page in toc_pages():
        html = (built_book[2] / f"{page}.html").read_text()
        inputs = re.findall(r'<div class="cell_input[^"]*">(.*?)</div>\s*</div>', html, flags=re.S)
        seen[page] = len(inputs)
        found = [m.group(0) for text in inputs for m in plumbing.finditer(text)]
        assert found == [], f"{page}: {found}"
    assert seen["chapters/06_vanishing_gradients"] >= 15  # the cells were found at all
