"""The built book in Debian's Chromium, offline: math typeset, images loaded, no console errors,
no failed requests, and nothing asked of any host but localhost."""
import re
import shutil
from urllib.parse import urlparse

import pytest

from book import CHROMIUM, ROOT, serve, toc_pages
from book import CHROMIUM_ARGS as ARGS

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]

SCREENSHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def site(built_book):
    with serve(built_book[2]) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian chromium is missing: `make test` installs it (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def visit(browser, url):
    """Open url with every non-local request blocked; return the page and what went wrong."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems = {"console": [], "failed": [], "blocked": [], "http": []}

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            problems["blocked"].append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems["console"].append(m.text))
    page.on("pageerror", lambda e: problems["console"].append(str(e)))
    page.on("requestfailed", lambda r: problems["failed"].append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems["http"].append(f"{r.status} {r.url}"))
    page.goto(url, wait_until="networkidle")
    return page, problems


@pytest.mark.parametrize("name", toc_pages())
def test_page_in_browser(browser, site, name):
    page, problems = visit(browser, f"{site}/{name}.html")
    try:
        n_math = page.locator("div.math, span.math").count()
        if n_math:
            # MathJax 3 replaces each math element's TeX with an mjx-container.
            page.wait_for_function(
                "n => document.querySelectorAll('mjx-container').length >= n", arg=n_math, timeout=20_000
            )
            assert page.locator("mjx-container").count() >= n_math
            assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
        # The tab icon: declared, and served (without one the browser asks for /favicon.ico,
        # a 404 in the console, late enough to slip past the wait below).
        icon = page.evaluate("() => document.querySelector('link[rel=icon]')?.href")
        assert icon and page.request.get(icon).status == 200, f"page icon {icon!r} does not load"
        broken = page.evaluate(
            "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
        )
        assert not broken, f"images that did not load: {broken}"
        page.wait_for_timeout(300)  # let late scripts report
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name.replace('/', '__')}.png"), full_page=False)
        assert problems == {"console": [], "failed": [], "blocked": [], "http": []}, problems
    finally:
        page.context.close()


def test_blocking_works(browser, site):
    """The harness itself: a request to another host is blocked and reported."""
    page, problems = visit(browser, f"{site}/intro.html")
    page.evaluate("() => fetch('https://example.org/x').catch(() => null)")
    page.wait_for_timeout(500)
    page.context.close()
    assert any("example.org" in u for u in problems["blocked"])


@pytest.mark.parametrize("width", [390, 820])
def test_the_navigation_drawers_open_and_close_on_phones_and_tablets(browser, site, width):
    """Below 992 px the theme's ☰ opens the site navigation and "Contents" the page's sections,
    each as a drawer that Escape closes."""
    page, problems = visit(browser, f"{site}/chapters/03_chain_rule.html")
    try:
        page.set_viewport_size({"width": width, "height": 844})
        for button, dialog, link in [("primary", "#pst-primary-sidebar-modal", "04_backprop_matrix.html"),
                                     ("secondary", "#pst-secondary-sidebar-modal", "#the-chain-rule")]:
            visible = page.locator(f"button.{button}-toggle").locator("visible=true")
            assert visible.count() == 1, f"{button} toggle"
            visible.click()
            drawer = page.locator(dialog)
            page.wait_for_function("d => d.open", arg=drawer.element_handle(), timeout=5_000)
            assert drawer.locator(f'a[href$="{link}"]').first.is_visible()
            page.keyboard.press("Escape")
            page.wait_for_function("d => !d.open", arg=drawer.element_handle(), timeout=5_000)
        assert problems == {"console": [], "failed": [], "blocked": [], "http": []}, problems
    finally:
        page.context.close()


def test_the_menu_button_collapses_and_restores_the_sidebar_on_a_desktop(browser, site):
    page, problems = visit(browser, f"{site}/chapters/03_chain_rule.html")
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        sidebar = page.locator(".bd-sidebar-primary")
        menu = page.locator("button.primary-toggle").locator("visible=true")
        assert sidebar.is_visible()
        menu.click()
        page.wait_for_function("s => getComputedStyle(s).visibility === 'hidden'",
                               arg=sidebar.element_handle(), timeout=5_000)
        menu.click()
        page.wait_for_function("s => getComputedStyle(s).visibility === 'visible'",
                               arg=sidebar.element_handle(), timeout=5_000)
        assert problems == {"console": [], "failed": [], "blocked": [], "http": []}, problems
    finally:
        page.context.close()


def test_display_equations_fit_a_phone_or_scroll_with_a_cue(browser, site):
    """At 390 px no display equation is cut off: each fits the column (shrunk to no less than
    70% where that is enough), or scrolls sideways to its end and shows the shadow that says so."""
    page, problems = visit(browser, f"{site}/intro.html")
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        cut = {}
        for name in toc_pages():
            page.goto(f"{site}/{name}.html", wait_until="load")
            if page.locator("div.math").count() == 0:
                continue
            page.wait_for_function("() => [...document.querySelectorAll('mjx-container[display=\"true\"]')]"
                                   ".every((m) => m.dataset.bpSize !== undefined)", timeout=30_000)
            cut[name] = page.evaluate("""() => [...document.querySelectorAll('mjx-container[display="true"]')]
                .filter((m) => m.scrollWidth > m.clientWidth + 1)
                .filter((m) => {
                  const style = getComputedStyle(m);
                  m.scrollLeft = m.scrollWidth;
                  const reaches = m.scrollLeft + m.clientWidth >= m.scrollWidth - 1;
                  return !(m.classList.contains('bp-wide') && style.overflowX === 'auto' && reaches
                           && style.boxShadow !== 'none');
                }).length""")
            page.evaluate("() => document.fonts.ready.then(() => true)")  # before leaving the page
        assert len(cut) >= 10 and not any(cut.values()), cut
        problems["failed"] = [f for f in problems["failed"] if "ERR_ABORTED" not in f]  # left pages
        assert problems == {"console": [], "failed": [], "blocked": [], "http": []}, problems
    finally:
        page.context.close()


def smallest_text(svg):
    """The smallest text of a matplotlib SVG, in units of its viewBox, and the viewBox width.
    matplotlib draws text as glyph paths, each placed with scale(s -s) for a font of 100 s."""
    sizes = [100 * float(s) for s in re.findall(r"scale\(([\d.]+) -\1\)", svg)]
    width = float(re.search(r'viewBox="[\d.]+ [\d.]+ ([\d.]+) ', svg)[1])
    return (min(sizes) if sizes else None), width


def test_figure_text_stays_legible_on_a_phone(browser, site, built_book):
    """At 390 px the smallest text of every figure in the chapters and exercises is drawn at
    8 px or more (a figure too wide at that size scrolls sideways within its output)."""
    page, problems = visit(browser, f"{site}/intro.html")
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        smallest, unreachable = {}, []
        for name in toc_pages():
            page.goto(f"{site}/{name}.html", wait_until="load")
            figures = page.evaluate("""() => [...document.querySelectorAll('.cell_output > img[src$=".svg"]')]
                .map((img) => { const box = img.parentElement; box.scrollLeft = box.scrollWidth;
                  return {src: img.getAttribute('src'), width: img.getBoundingClientRect().width,
                          reaches: box.scrollLeft + box.clientWidth >= box.scrollWidth - 1}; })""")
            for figure in figures:
                svg = (built_book[2] / name).parent.joinpath(figure["src"]).resolve().read_text()
                size, view_width = smallest_text(svg)
                if size is not None:
                    px = size * figure["width"] / view_width
                    smallest[f"{name} {figure['src'][-12:]}"] = round(px, 1)
                unreachable += [] if figure["reaches"] else [figure["src"]]
        assert len(smallest) >= 20, smallest
        assert min(smallest.values()) >= 8, {k: v for k, v in smallest.items() if v < 8}
        assert unreachable == []
    finally:
        page.context.close()


CONTRAST = """root => {
  // WCAG contrast of every text of the lab's frame (not its plots) against what lies behind it.
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const ground = (e) => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
    if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return rgb(c); } return [255, 255, 255]; };
  return [...root.querySelectorAll('*')].filter((e) => e.tagName !== 'CANVAS' &&
      [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
    .map((e) => { const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(ground(e))];
      return [e.textContent.trim().slice(0, 30), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_book_follows_the_system_theme_and_the_labs_stay_readable(browser, site, scheme):
    """With the reader's system set to dark the book is dark; in either mode every text of a
    lab's frame has a contrast of at least 4.5:1 with what lies behind it (WCAG AA)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{site}/chapters/05_training.html", wait_until="networkidle")
        page.wait_for_function("() => document.documentElement.dataset.theme !== 'auto'")
        assert page.evaluate("() => document.documentElement.dataset.theme") == scheme
        texts = page.locator(".bplib-lab").first.evaluate(CONTRAST)
        assert len(texts) >= 5
        assert min(ratio for _, ratio in texts) >= 4.5, [t for t in texts if t[1] < 4.5]
    finally:
        context.close()


def test_search_ranks_a_chapter_above_pages_that_mention_its_title(browser, site):
    """Searching a chapter's title finds that chapter first (its exercises next); the theme's
    button labels are not in the index."""
    page, problems = visit(browser, f"{site}/intro.html")
    try:
        def results(query):
            page.goto(f"{site}/search.html?q={query}", wait_until="networkidle")
            page.wait_for_function("() => document.querySelector('.search-summary')", timeout=20_000)
            return page.evaluate("() => [...document.querySelectorAll('#search-results li > a')]"
                                 ".map((a) => a.getAttribute('href').split('#')[0])")
        queries = ["forward pass", "loss functions", "chain rule", "backpropagation matrix",
                   "training", "vanishing gradients", "residual connections", "beyond"]
        chapters = [p for p in toc_pages() if p.startswith("chapters/")]
        for query, name in zip(queries, chapters):
            found = results(query)
            assert found and found[0].endswith(f"{name}.html"), (query, found[:3])
        assert results("training")[1].endswith("exercises/05_training.html")
        for label in ["Download this page", "Toggle primary sidebar", "Fullscreen mode"]:
            assert results(label) == [], label
        assert problems["console"] == [] and problems["blocked"] == []
    finally:
        page.context.close()


TITLES = """() => {
  window.bpTitles = [];
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, x, y, maxWidth) {
    if (this.font.startsWith('bold')) {
      const width = Math.min(this.measureText(text).width, maxWidth ?? Infinity);
      const dpr = this.getTransform().a;  // the lab scales its context by the pixel ratio
      window.bpTitles.push({text, right: x + width, canvas: this.canvas.width / dpr,
                            size: parseFloat(this.font.split(' ')[1])});
    }
    return fill.apply(this, arguments);
  };
}"""


def test_the_labs_titles_fit_their_panels_on_a_phone(browser, site):
    """At 390 px every panel title a lab draws ends inside its canvas, at 9 px or more."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    try:
        page = context.new_page()
        page.add_init_script(f"({TITLES})()")
        for name in ["05_training", "06_vanishing_gradients", "07_resnet_skips"]:
            page.goto(f"{site}/chapters/{name}.html", wait_until="networkidle")
            titles = page.evaluate("() => window.bpTitles")
            assert len(titles) >= 2, name
            assert all(t["right"] <= t["canvas"] and t["size"] >= 9 for t in titles), \
                [t for t in titles if t["right"] > t["canvas"] or t["size"] < 9]
    finally:
        context.close()
