"""The learner in JupyterLab (`make lab`), as a person uses it: a chapter renders as a chapter
(admonitions, folded answers, glued values; no raw MyST), a lab's controls take clicks, drags and
keys there as they do in the book, and running a chapter or an exercise copy and saving it
leaves its .md as it was."""
import difflib
import os
import math
import re
import shutil

import jupytext
import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from book import ROOT
from bpcourse.grade import release
from test_browser import SCREENSHOTS, browser, visit  # noqa: F401  (fixture)
from test_lab import TOKEN, jupyter_lab, lab, lab_notebook, run_first_cell  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]


def test_lab_controls_take_clicks_drags_and_keys_in_jupyterlab(browser, lab):  # noqa: F811
    path = lab_notebook("lab_keys_test", [
        nbformat.v4.new_code_cell("from bpcourse.widgets import init_lab; init_lab()"),
        nbformat.v4.new_markdown_cell("A cell below.")])
    page, problems = visit(browser, f"{lab}/lab/tree/{path}?token={TOKEN}")
    try:
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        run_first_cell(page)
        box = page.locator(".jp-OutputArea .bplib-lab-box")
        box.locator("canvas").wait_for(timeout=60_000)
        depth = box.locator('[name="depth"]')  # 50 positions: depth 1 to 50, 30 at first
        position = lambda: int(depth.evaluate("e => e.value"))  # noqa: E731
        assert position() == 29
        page.locator(".jp-MarkdownCell").click()  # another cell is active, as after reading on
        bounds = depth.bounding_box()
        y = bounds["y"] + bounds["height"] / 2
        page.mouse.click(bounds["x"] + bounds["width"] * 0.1, y)
        assert position() < 10 and depth.evaluate("e => document.activeElement === e")
        page.mouse.move(bounds["x"] + bounds["width"] * 0.1, y)
        page.mouse.down()
        page.mouse.move(bounds["x"] + bounds["width"] * 0.6, y, steps=5)
        page.mouse.up()
        assert 20 < position() < 35
        for key, step in [("ArrowRight", 1), ("ArrowUp", 1), ("ArrowLeft", -1),
                          ("ArrowDown", -1)]:
            before = position()
            page.keyboard.press(key)
            assert position() == before + step, key
        page.keyboard.press("End")
        assert position() == 49
        page.wait_for_function(
            "() => document.querySelector('.bplib-lab-readout').textContent.includes('depth 50')",
            timeout=30_000)
        activation = box.locator('[name="activation"]')
        activation.focus()
        page.keyboard.press("ArrowUp")
        assert activation.evaluate("e => e.value") == "tanh"
        # The keys went to the controls alone: no cell was added, removed or selected.
        assert page.locator(".jp-Notebook .jp-Cell").count() == 2
        assert page.locator(".jp-Notebook .jp-Cell.jp-mod-active .bplib-lab-box").count() == 1
        assert problems["console"] == [], problems
    except BaseException:
        page.screenshot(path=str(SCREENSHOTS / "lab_keys_failure.png"))
        raise
    finally:
        page.context.close()
        (ROOT / path).unlink()


@pytest.fixture(scope="module")
def learner_lab(tmp_path_factory):
    """JupyterLab over a learner's checkout: chapters 1 and 2, and the exercise copies as
    `make exercises` makes them."""
    root = tmp_path_factory.mktemp("checkout")
    (root / "chapters").mkdir()
    for name in ("01_forward_pass.md", "02_loss.md"):
        shutil.copy(ROOT / "chapters" / name, root / "chapters")
    release(ROOT / "exercises", root / "my_exercises")
    with jupyter_lab(root, tmp_path_factory.mktemp("labhome")) as url:
        yield url, root


def kernel_idle(page):
    """Wait until the status bar says the notebook's kernel is connected and idle."""
    page.wait_for_function("""() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
        .some(item => / \\| Idle$/.test(item.textContent))""", timeout=60_000)


def kernel_status(page):
    """The status bar's kernel status ("Idle", "Starting", ...), or "" before it shows."""
    return page.evaluate("""() => { const item = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
        .find(i => i.textContent.includes(' | ')); return item ? item.textContent.split(' | ')[1] : ''; }""")


def run_all_and_save(page):
    """Run All from the Run menu, wait until every cell has run (or one has failed, which
    stops the run), then save with Ctrl+S, as autosave would."""
    kernel_idle(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function("""() => {
        const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
        return prompts.some(p => /\\[\\d+\\]/.test(p.textContent))
            && !prompts.some(p => p.textContent.includes('*'));
    }""", timeout=300_000)
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)


@pytest.mark.parametrize("path", ["chapters/01_forward_pass.md", "my_exercises/01_forward_pass.md"])
def test_running_a_notebook_does_not_rewrite_it(browser, learner_lab, path):  # noqa: F811
    url, root = learner_lab
    before = (root / path).read_text()
    page, problems = visit(browser, f"{url}/lab/tree/{path}?reset&token={TOKEN}")
    try:
        run_all_and_save(page)
        assert page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[1]").count() == 1
        after = (root / path).read_text()
        diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True)))
        assert after == before, diff[:3000]
    except BaseException:
        page.screenshot(path=str(SCREENSHOTS / f"lab_rewrite_failure_{path.split('/')[0]}.png"))
        raise
    finally:
        page.context.close()


GLUE = re.compile(r"\{glue(?::text)?\}`([^`]+)`")
RAW_MYST = re.compile(r"\{[a-z-]+(?::[a-z]+)?\}|^\s*(```|:::)|^:[a-z-]+:", re.M)


def rendered_markdown(page):
    """What every Markdown cell shows (its visible text: rendered Markdown, or its source when
    it is not rendered; folded content left out), scrolling through the notebook, since
    JupyterLab draws only the cells in view. {cell index: text}."""
    shown = {}
    scroller = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer")
    while True:
        page.wait_for_timeout(400)  # the cells that came into view render, then get their values
        for index, text in scroller.evaluate("""view => {
            const box = view.getBoundingClientRect();
            return [...view.querySelectorAll('.jp-MarkdownCell')]
                .filter(c => { const r = c.getBoundingClientRect();
                               return r.bottom > box.top && r.top < box.bottom; })
                .map(c => [c.dataset.windowedListIndex,
                           c.querySelector('.jp-Cell-inputWrapper').innerText]);
        }"""):
            shown[index] = max(shown.get(index, ""), text, key=len)
        at_end = scroller.evaluate("e => e.scrollTop + e.clientHeight >= e.scrollHeight - 2")
        if at_end:
            return shown
        scroller.evaluate("e => { e.scrollTop += e.clientHeight * 0.5; }")


def test_a_chapter_renders_as_a_chapter(browser, learner_lab):  # noqa: F811
    """After Run All, chapter 2 shows no raw MyST anywhere: every glued value as a value, the
    learning goals as an admonition, each answer folded away until opened."""
    url, root = learner_lab
    source = (root / "chapters" / "02_loss.md").read_text()
    markdown_cells = sum(c.cell_type == "markdown" for c in jupytext.reads(source, "md").cells)
    page, problems = visit(browser, f"{url}/lab/tree/chapters/02_loss.md?reset&token={TOKEN}")
    try:
        kernel_idle(page)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        page.wait_for_function("""() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.some(p => /\\[\\d+\\]/.test(p.textContent))
                && !prompts.some(p => p.textContent.includes('*'));
        }""", timeout=300_000)
        errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']")
        assert errors.count() == 0, errors.first.inner_text()[-2000:]
        page.locator(".jp-WindowedPanel-outer").evaluate("e => { e.scrollTop = 0; }")
        shown = rendered_markdown(page)
        assert len(shown) == markdown_cells, sorted(shown)
        text = "\n".join(shown.values())
        assert "Learning goals" in text
        raw = [m.group(0) for m in RAW_MYST.finditer(text)]
        roles = {m.group(1) for m in GLUE.finditer(source)}
        raw += [role for role in roles if role in text]
        raw += ["[not run yet]"] if "[not run yet]" in text else []
        assert not raw, raw
        # The answers are folded: opening the first shows log 10, as glued, to 4 places.
        answer = page.locator(".jp-MarkdownCell details", has_text="Answer").first
        answer.scroll_into_view_if_needed()
        assert answer.evaluate("d => !d.open") and "cross-entropy" in answer.locator(
            "xpath=ancestor::*[contains(@class, 'jp-MarkdownCell')]").inner_text()
        assert f"{math.log(10):.4f}" not in answer.inner_text()
        answer.locator("summary").click()
        assert f"{math.log(10):.4f}" in answer.inner_text()
        assert problems["console"] == [], problems
    except BaseException:
        page.screenshot(path=str(SCREENSHOTS / "lab_chapter_failure.png"))
        raise
    finally:
        page.context.close()


GLUE_SPECS = sorted({m.group(1).partition(":")[2] for path in ROOT.glob("chapters/*.md")
                     for m in GLUE.finditer(path.read_text())})
GLUE_VALUES = [0.0, 1.0, -2.5, 0.125, 0.375, 2.5, 3.14159265, 1e-7, 1.5e-12, 12345.678, 1234567.0,
               100.0, 0.000123, 99999.5, 6.02e23, -0.0049, 7, -42, 1234567, 0, True, "text",
               float("inf"), float("-inf"), float("nan")]


def test_glued_values_are_formatted_as_the_book_formats_them(browser):  # noqa: F811
    """The extension's format, for every spec the chapters use and a few more, on numbers of
    all sizes, ties included, against myst-nb's own (format_plain_text) on the same repr."""
    from myst_nb.core.variables import format_plain_text

    page = browser.new_page()
    try:
        page.add_script_tag(path=str(ROOT / "assets/jupyterlab-glue/static/remoteEntry.js"))
        cases = []
        for spec in GLUE_SPECS + [".3g", "+.2f", ">10.2f", "<8d", "^9.1e", "08.3f", ".1%", "G"]:
            for value in GLUE_VALUES:
                try:
                    expected = format_plain_text(repr(value), spec)
                except ValueError:  # a string with a number's format: myst-nb fails, so skip
                    continue
                cases.append((repr(value), spec, expected))
        got = page.evaluate("cases => cases.map(([t, s]) => bpcourseGlue.formatGlued(t, s))",
                            cases)
        wrong = [(t, s, e, g) for (t, s, e), g in zip(cases, got) if e != g]
        assert len(cases) > 400 and not wrong, wrong[:20]
    finally:
        page.close()


COLD_STARTS = int(os.environ.get("BPLIB_COLD_STARTS", "3"))


def test_run_all_at_once_after_opening_shows_the_lab(browser, lab):  # noqa: F811
    """Run All pressed as soon as a notebook opens, while its kernel is still starting, ends
    with the lab drawn, not with "model not found": over COLD_STARTS fresh kernels
    (BPLIB_COLD_STARTS sets how many)."""
    outcomes, statuses = [], []
    for k in range(COLD_STARTS):
        path = lab_notebook(f"lab_cold_start_{k}", [
            nbformat.v4.new_code_cell("import numpy as np"),
            nbformat.v4.new_code_cell("from bpcourse.widgets import depth_lab; depth_lab()")])
        page, problems = visit(browser, f"{lab}/lab/tree/{path}?reset&token={TOKEN}")
        try:
            # As soon as the notebook shows (its kernel still starting), Run All.
            page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell .cm-content", timeout=60_000)
            statuses.append(kernel_status(page))
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_function("""() => {
                const out = document.querySelector('.jp-CodeCell:nth-child(2) .jp-OutputArea');
                return out && (out.querySelector('.bplib-lab-box canvas')
                               || /not found|Error/.test(out.textContent));
            }""", timeout=90_000)
            outcomes.append(page.locator(".jp-OutputArea").last.inner_text()[:200]
                            if page.locator(".bplib-lab-box canvas").count() == 0 else "drawn")
        except PlaywrightTimeout:
            outcomes.append("timeout: " + page.locator(".jp-Notebook").inner_text()[-300:])
            page.screenshot(path=str(SCREENSHOTS / f"lab_cold_start_failure_{k}.png"))
        finally:
            page.context.close()
            (ROOT / path).unlink()
    print("cold starts:", outcomes, "kernel status when Run All was pressed:", statuses)
    assert outcomes == ["drawn"] * COLD_STARTS, outcomes
