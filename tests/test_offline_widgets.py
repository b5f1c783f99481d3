"""A saved ipywidgets slider renders in the static HTML with no kernel and no network: the widget
manager and MathJax come from the built site, and the MathJax-2 shim typesets its label under
MathJax 3 without console errors.

The book's own chapters get their labs in a later issue, so this builds a two-page book of its own
with the repository's _config.yml, tools/ and _vendor/.
"""
import pytest

from book import build_one_page_book, serve
from test_browser import browser, visit  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]

PAGE = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
# Widgets offline

The learning rate $\\eta$ scales every step.

```{code-cell} ipython3
import ipywidgets as widgets
widgets.FloatLogSlider(value=0.1, base=10, min=-3, max=0.5, description=r"\\(\\eta\\)")
```
"""


@pytest.fixture(scope="module")
def widget_site(tmp_path_factory):
    with serve(build_one_page_book(tmp_path_factory, "widgets", PAGE)) as url:
        yield url


def test_saved_widget_renders_offline_and_typesets_its_label(browser, widget_site):  # noqa: F811
    page, problems = visit(browser, f"{widget_site}/widgets.html")
    try:
        page.wait_for_selector(".widget-slider", timeout=20_000)
        page.wait_for_selector(".widget-label mjx-container", timeout=20_000)
        assert page.locator(".widget-readout").first.inner_text().strip() == "0.100"
        assert problems == {"console": [], "failed": [], "blocked": [], "http": []}, problems
    finally:
        page.context.close()
