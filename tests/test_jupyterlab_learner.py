"""The learner in JupyterLab (`make lab`), as a person uses it: a lab's controls take clicks,
drags and keys there as they do in the book; running a chapter or an exercise copy and saving
it leaves its .md as it was."""
import difflib
import shutil

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from book import ROOT
from bpcourse.grade import release
from test_browser import SCREENSHOTS, browser, visit  # noqa: F401  (fixture)
from test_lab import TOKEN, jupyter_lab, lab  # noqa: F401  (fixture: JupyterLab serving the repository)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]


def run_first_cell(page):
    """Run the notebook's first cell; a run asked for while the kernel is still connecting can
    be dropped, so ask again until its prompt leaves [ ]."""
    started = "() => !document.querySelector('.jp-CodeCell .jp-InputPrompt').textContent" \
              ".includes('[ ]')"
    for _ in range(3):
        page.locator(".jp-CodeCell .cm-content").first.click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(started, timeout=15_000)
            return
        except PlaywrightTimeout:
            continue


def test_lab_controls_take_clicks_drags_and_keys_in_jupyterlab(browser, lab):  # noqa: F811
    notebook = ROOT / "_build" / "lab_keys_test.ipynb"
    notebook.parent.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from bpcourse.widgets import init_lab; init_lab()"),
        nbformat.v4.new_markdown_cell("A cell below.")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, notebook)
    page, problems = visit(browser, f"{lab}/lab/tree/_build/{notebook.name}?token={TOKEN}")
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
        notebook.unlink()


@pytest.fixture(scope="module")
def learner_lab(tmp_path_factory):
    """JupyterLab over a learner's checkout: the repository's pyproject.toml (the jupytext
    settings), chapter 1, and the exercise copies as `make exercises` makes them."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copy(ROOT / "pyproject.toml", root)
    (root / "chapters").mkdir()
    shutil.copy(ROOT / "chapters" / "01_forward_pass.md", root / "chapters")
    release(ROOT / "exercises", root / "my_exercises")
    with jupyter_lab(root, tmp_path_factory.mktemp("labhome")) as url:
        yield url, root


def kernel_idle(page):
    """Wait until the status bar says the notebook's kernel is connected and idle."""
    page.wait_for_function("""() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
        .some(item => / \\| Idle$/.test(item.textContent))""", timeout=60_000)


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
