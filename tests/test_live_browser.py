"""The book's code runs in the reader's browser (Pyodide served by the site, in a Web Worker):
in Debian's Chromium with every non-local request blocked, no console errors. Every chapter runs
its first cell and a figure cell; an edited cell runs as edited and survives a reload; an
exercise shows ❌ with its diagnosis for a wrong answer and ✅ for a right one; a lab computes a
setting that was not precomputed; a page opened as a file names `make serve`."""
import contextlib
import re
from urllib.parse import urlparse

import pytest
from book import notebook_pages
from test_browser import browser  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]

RUN_TIMEOUT = 240_000  # ms: a chapter's cells up to its first figure, on a busy machine
CHAPTERS = [name for name in notebook_pages() if name.startswith("chapters/")]


@pytest.fixture(scope="module")
def site(built_book):
    from book import serve

    with serve(built_book[2]) as url:
        yield url


@pytest.fixture(scope="module")
def context(browser):  # noqa: F811
    """One browser profile for the module, so the runtime is cached between pages, as for a
    reader; every request that is not to localhost is blocked and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.blocked = []

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:", "file:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            context.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    yield context
    context.close()


@contextlib.contextmanager
def opened(context, url, init_script=None):
    """The page at url; when the test is done with it, no console error, no failed response
    and no request that left localhost."""
    page = context.new_page()
    if init_script:
        page.add_init_script(init_script)
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    try:
        page.goto(url, wait_until="networkidle")
        yield page
        assert problems == [] and context.blocked == []
    finally:
        page.close()


def run(page, cell):
    """Click the cell's Run button and wait until its output is final ("done" or "error")."""
    cell.locator(".bp-run").click()
    output = cell.locator(".bp-output")
    page.wait_for_function("el => ['done', 'error'].includes(el.dataset.state)",
                           arg=output.element_handle(), timeout=RUN_TIMEOUT)
    return output


def first_figure_cell(page):
    """The first cell with a Run button whose output in the book is a picture."""
    index = page.evaluate("""() => [...document.querySelectorAll('.cell')]
        .filter((c) => c.querySelector('.bp-run'))
        .findIndex((c) => c.querySelector('.cell_output img'))""")
    assert index >= 0, "no figure cell"
    return page.locator(".cell:has(.bp-run)").nth(index)


@pytest.mark.parametrize("name", CHAPTERS)
def test_a_chapter_runs_its_first_cell_a_figure_cell_and_then_every_cell(context, site, name):
    with opened(context, f"{site}/{name}.html") as page:
        figure = first_figure_cell(page)
        output = run(page, figure)
        first = page.locator(".cell:has(.bp-run)").nth(0).locator(".bp-output")
        assert not first.is_hidden(), "the first cell did not run first"
        assert first.locator(".bp-out-error").count() == 0, first.inner_text()
        assert output.locator(".bp-out-error").count() == 0, output.inner_text()
        assert output.locator("svg").count() >= 1, output.inner_html()[:500]
        # then every other cell, hidden ones included: each runs, and errors come only from
        # cells that show one on purpose
        page.evaluate("() => window.bpLive.runAll()")
        cells = page.evaluate("""() => window.bpLive.cells.map((c) => ({index: c.index, ran: c.ran,
            tags: c.tags, state: c.out ? c.out.dataset.state : null}))""")
        assert [c["index"] for c in cells if not c["ran"]] == []
        failed = {c["index"] for c in cells if c["state"] == "error"}
        assert failed <= {c["index"] for c in cells if "raises-exception" in c["tags"]}, failed


def test_an_edited_cell_runs_as_edited_and_survives_a_reload(context, site):
    url = f"{site}/chapters/01_forward_pass.html"
    with opened(context, url) as page:
        cell = page.locator(".cell:has(.bp-run)").filter(has_text="y_pred = ").first
        editor = cell.locator(".bp-editor")
        edited = editor.inner_text().replace("x = 3.0", "x = -2.0")
        assert edited != editor.inner_text(), "the cell to edit changed: update this test"
        editor.fill(edited)
        output = run(page, cell)
        assert "z1 = -5.0" in output.inner_text(), output.inner_text()
        page.reload(wait_until="networkidle")
        cell = page.locator(".cell:has(.bp-run)").filter(has_text="y_pred = ").first
        assert "x = -2.0" in cell.locator(".bp-editor").inner_text()
        cell.locator(".bp-reset").click()
        assert "x = 3.0" in cell.locator(".bp-editor").inner_text()


WRONG = """def softmax(logits):
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)
"""
RIGHT = """def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
"""


def test_an_exercise_checks_the_learners_answer_in_the_page(context, site):
    with opened(context, f"{site}/exercises/02_loss.html") as page:
        answer = page.locator(".bp-answer").first
        assert 'raise NotImplementedError("fill in softmax")' in answer.inner_text()
        solution = answer.locator("xpath=following-sibling::div[contains(@class,'cell')][1]")
        assert solution.locator("details").count() == 1, "the reference solution is not folded"
        assert not solution.locator("details").get_attribute("open")
        check = page.locator(".cell.tag_check:has(.bp-run)").first
        answer.locator(".bp-editor").fill(WRONG)
        verdict = run(page, check).inner_text()
        assert "❌ failed" in verdict and "softmax" in verdict, verdict
        assert re.search(r"overflow|inf|nan", verdict), verdict
        answer.locator(".bp-editor").fill(RIGHT)
        run(page, answer)
        verdict = run(page, check).inner_text()
        assert "✅ passed" in verdict, verdict


def test_a_lab_computes_a_setting_that_was_not_precomputed(context, site):
    with opened(context, f"{site}/chapters/05_training.html") as page:
        lab = page.locator(".bplib-lab").first
        grid = page.evaluate("el => el.bplibLab.data.controls[0].grid", lab.element_handle())
        before = lab.locator("canvas").evaluate("c => c.toDataURL()")
        page.locator(".bp-live-bar button").click()
        page.wait_for_function("el => el.dataset.live === 'ready'", arg=lab.element_handle(),
                               timeout=RUN_TIMEOUT)
        slider = lab.locator("input.bplib-lab-control").first
        choices = page.evaluate("el => window.bplibLab.liveChoices(el.bplibLab.data.controls[0])",
                                lab.element_handle())
        position = next(i for i, v in enumerate(choices) if v not in grid and 0.05 < v < 1.0)
        slider.evaluate("(s, i) => { s.value = i; s.dispatchEvent(new Event('input')); }",
                        position)
        page.wait_for_function(
            "([el, v]) => el.dataset.live === 'ready' && el.dataset.values"
            " && JSON.parse(el.dataset.values).lr === v",
            arg=[lab.element_handle(), choices[position]], timeout=RUN_TIMEOUT)
        after = lab.locator("canvas").evaluate("c => c.toDataURL()")
        assert after != before
        assert "Python, running in this page," in lab.inner_text()


def test_a_lab_cell_run_in_the_page_makes_a_live_lab(context, site):
    with opened(context, f"{site}/chapters/05_training.html") as page:
        cell = page.locator(".cell:has(.bp-run)").filter(has_text="lr_lab(").first
        output = run(page, cell)
        assert output.get_attribute("data-state") == "done", output.inner_text()
        lab = output.locator(".bplib-lab")
        page.wait_for_function("el => el.dataset.live === 'ready'", arg=lab.element_handle(),
                               timeout=RUN_TIMEOUT)
        assert "Python, running in this page," in lab.inner_text()
        assert lab.locator("canvas").count() == 1


def test_a_page_opened_as_a_file_names_make_serve(context, built_book):
    path = built_book[2] / "chapters" / "01_forward_pass.html"
    with opened(context, path.as_uri()) as page:
        bar = page.locator(".bp-live-bar")
        assert "make serve" in bar.inner_text()
        page.locator(".cell .bp-run").first.click()
        assert "make serve" in page.locator(".bp-output").first.inner_text()


def first_cell_runs(page, source):
    """Run ``source`` in place of the page's first cell; its output text (the edit is reset)."""
    cell = page.locator(".cell:has(.bp-run)").first
    cell.locator(".bp-editor").fill(source)
    output = run(page, cell)
    text, state = output.inner_text(), output.get_attribute("data-state")
    cell.locator(".bp-reset").click()
    assert state == "done", text
    return text


def test_the_next_page_finds_python_running_in_a_state_of_its_own(context, site):
    with opened(context, f"{site}/chapters/01_forward_pass.html") as page:
        first_cell_runs(page, "import bplib.layers\nbplib.layers.Linear.forward = None\n"
                              "left_behind = 1\nprint('changed')")
    with opened(context, f"{site}/chapters/02_loss.html") as page:
        text = first_cell_runs(page, "import bplib.layers\n"
                                     "print(bplib.layers.Linear.forward is None, "
                                     "'left_behind' in globals())")
        assert "False False" in text, text
        assert page.evaluate("() => window.bpLive.phases") == {"reused": True}


def test_a_busy_python_does_not_hold_up_the_next_page(context, site):
    with opened(context, f"{site}/chapters/01_forward_pass.html") as page:
        first_cell_runs(page, "print('up')")  # Python running, then a long cell left running
        cell = page.locator(".cell:has(.bp-run)").nth(1)
        cell.locator(".bp-editor").fill("import time\nt = time.time()\n"
                                        "while time.time() - t < 25:\n    pass")
        cell.locator(".bp-run").click()
        page.wait_for_function("el => el.dataset.state === 'running' && "
                               "el.innerText.includes('running…')",
                               arg=cell.locator(".bp-output").element_handle())
        cell.locator(".bp-reset").click()
    with opened(context, f"{site}/chapters/02_loss.html") as page:
        assert "2 + 2 = 4" in first_cell_runs(page, "print('2 + 2 =', 2 + 2)")
        assert "ready" in page.evaluate("() => window.bpLive.phases"), "it waited for the busy one"


def test_a_browser_without_shared_workers_runs_python_in_each_page(context, site):
    with opened(context, f"{site}/chapters/02_loss.html", "delete window.SharedWorker") as page:
        assert "2 + 2 = 4" in first_cell_runs(page, "print('2 + 2 =', 2 + 2)")
        assert "ready" in page.evaluate("() => window.bpLive.phases")


def test_cells_that_need_pytorch_say_they_do_not_run_in_the_page(context, site):
    with opened(context, f"{site}/chapters/03_chain_rule.html") as page:
        torch_cells = page.locator(".cell.tag_not-in-page")
        assert torch_cells.count() >= 4
        for i in range(torch_cells.count()):
            cell = torch_cells.nth(i)
            assert cell.locator(".bp-run").count() == 0
            assert "needs PyTorch" in cell.locator(".bp-not-in-page").inner_text()
            assert cell.locator(".cell_output").count() == 1  # the build's output stays
