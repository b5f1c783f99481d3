"""The learner in JupyterLab (`make lab`), as a person uses it: a lab's controls take clicks,
drags and keys there as they do in the book."""
import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from book import ROOT
from test_browser import SCREENSHOTS, browser, visit  # noqa: F401  (fixture)
from test_lab import TOKEN, lab  # noqa: F401  (fixture: JupyterLab serving the repository)

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
