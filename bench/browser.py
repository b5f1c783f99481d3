"""`make bench`: the book's code run in the reader's browser (Pyodide in headless Chromium, every
request local), against the same cells run natively.

- Cold: a fresh browser profile opens chapter 1 and runs its first cell: bytes transferred and
  seconds until the output shows. Targets: <= 30 MB and <= 8 s.
- Warm: the same profile opens chapter 2 and runs its first cell (Python is still running in the
  worker the book's pages share; where it is not, the runtime comes from the browser's cache).
  Target: <= 1.5 s.
- Every chapter: all its cells in the page (the worker's own time per cell, summed) against the
  same cells run natively by the same code (bpcourse.browser.run_cell, numpy on one thread).
  Target: <= 4x.
- The learning-rate lab, live in the page: median time per update. Target: <= 100 ms.

Needs the built book (`make book`).
"""
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from book import CHROMIUM, serve, toc_pages  # noqa: E402
from book import CHROMIUM_ARGS as ARGS  # noqa: E402

HTML = ROOT / "_build" / "html"
CHAPTERS = [name for name in toc_pages() if name.startswith("chapters/")]
TIMEOUT = 600_000

NATIVE = """
import json, sys, time
from threadpoolctl import threadpool_limits
from bpcourse import browser
browser.install(sys.argv[1])
cells = json.loads(sys.stdin.read())
times = []
with threadpool_limits(1):
    for i, source in enumerate(cells):
        start = time.perf_counter()
        outputs = json.loads(browser.run_cell(source, f"<cell {i + 1}>"))
        times.append((time.perf_counter() - start) * 1e3)
print(json.dumps(times))
"""


def new_context(browser):
    context = browser.new_context()

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    return context


# In the page: when the reader clicked, and when the first output was final.
WATCH = """() => {
  window.bpTimes = {};
  document.addEventListener("click", () => { bpTimes.click = bpTimes.click || performance.now(); }, true);
  new MutationObserver(() => {
    const out = document.querySelector(".bp-output[data-state]");
    if (out && ["done", "error"].includes(out.dataset.state)) bpTimes.output = bpTimes.output || performance.now();
  }).observe(document.body, { subtree: true, attributes: true, childList: true });
}"""


def first_output_seconds(context, url, shared=True):
    """Seconds from a click on the page's first Run to its output, by the page's clock;
    ``shared=False``: as in a browser without shared workers, where each page starts its own
    Python."""
    page = context.new_page()
    if not shared:
        page.add_init_script("delete window.SharedWorker")
    page.goto(url, wait_until="networkidle")
    page.evaluate(WATCH)
    page.locator(".bp-run").first.click()
    page.wait_for_function("() => window.bpTimes.output", timeout=TIMEOUT)
    seconds = page.evaluate("() => (bpTimes.output - bpTimes.click) / 1000")
    context.phases = page.evaluate("() => window.bpLive.phases")
    page.close()
    return seconds


def browser_cell_times(context, url):
    """Run every cell of the page (Run on the last one runs all above it): each cell's ms."""
    page = context.new_page()
    page.goto(url, wait_until="networkidle")
    page.evaluate("() => window.bpLive.runAll()")
    cells = page.evaluate("() => window.bpLive.cells.map((c) => ({source: c.source, ms: c.ms, "
                          "ran: c.ran}))")
    errors = page.evaluate("() => window.bpLive.cells.filter((c) => c.out && "
                           "c.out.dataset.state === 'error' && !c.tags.includes('raises-exception'))"
                           ".map((c) => c.out.innerText.slice(-200))")
    page.close()
    return cells, errors


def native_cell_times(sources):
    digits = HTML / "live" / "digits.npz"
    result = subprocess.run([sys.executable, "-c", NATIVE, str(digits)], input=json.dumps(sources),
                            capture_output=True, text=True, check=True,
                            env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                 "MPLBACKEND": "Agg", "HOME": "/tmp"})
    return json.loads(result.stdout.splitlines()[-1])


def lab_update_ms(context, url, updates=20):
    page = context.new_page()
    page.goto(url, wait_until="networkidle")
    lab = page.locator(".bplib-lab").first
    page.locator(".bp-live-bar button").click()
    page.wait_for_function("el => el.dataset.live === 'ready'", arg=lab.element_handle(),
                           timeout=TIMEOUT)
    slider = lab.locator("input.bplib-lab-control").first
    n = int(slider.get_attribute("max"))
    times = []
    for i in range(updates):
        position = (7 * i + 3) % (n + 1)
        start = time.perf_counter()
        slider.evaluate("(s, i) => { s.value = i; s.dispatchEvent(new Event('input')); }", position)
        page.wait_for_function("([el, i]) => el.dataset.live === 'ready' && el.dataset.values && "
                               "JSON.parse(el.dataset.values).lr === window.bplibLab.liveChoices("
                               "el.bplibLab.data.controls[0])[i]",
                               arg=[lab.element_handle(), position], timeout=TIMEOUT)
        times.append((time.perf_counter() - start) * 1e3)
    page.close()
    return statistics.median(times)


def verdict(ok):
    return "met" if ok else "MISSED"


def main():
    if not (HTML / "live" / "live.js").exists():
        sys.exit("build the book first: make book")
    from playwright.sync_api import sync_playwright

    all_ok = True
    with serve(HTML) as site, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = new_context(browser)
        cold = first_output_seconds(context, f"{site}/{CHAPTERS[0]}.html")
        mb, cold_phases = sum(n for _, n in site.sent) / 1e6, context.phases  # all the server sent
        warm = first_output_seconds(context, f"{site}/{CHAPTERS[1]}.html")
        warm_phases = context.phases
        unshared = first_output_seconds(context, f"{site}/{CHAPTERS[2]}.html", shared=False)
        print(f"start-up, ms from the first Run to Python, numpy and matplotlib, the library: "
              f"cold {cold_phases}, next page {warm_phases}, a page of its own "
              f"{context.phases}")
        ok = mb <= 30 and cold <= 8 and warm <= 1.5
        all_ok &= ok
        print(f"in-page Python, cold: {mb:.1f} MB transferred, first output after {cold:.2f} s "
              f"(targets 30 MB, 8 s); next page: {warm:.2f} s (target 1.5 s): {verdict(ok)}")
        print(f"  (a browser without shared workers starts Python again on the next page, from "
              f"its cache: {unshared:.2f} s)")
        lab = lab_update_ms(context, f"{site}/chapters/05_training.html")
        all_ok &= lab <= 100
        print(f"learning-rate lab in the page: median update {lab:.0f} ms (target 100 ms): "
              f"{verdict(lab <= 100)}\n")
        print(f"{'chapter':<32} {'native s':>9} {'browser s':>10} {'ratio':>6}  target 4x")
        for name in CHAPTERS:
            cells, errors = browser_cell_times(context, f"{site}/{name}.html")
            native = native_cell_times([c["source"] for c in cells])
            in_page = sum(c["ms"] or 0 for c in cells) / 1e3
            ratio = in_page / (sum(native) / 1e3)
            ok = ratio <= 4 and not errors and all(c["ran"] for c in cells)
            all_ok &= ok
            note = f"  errors: {errors}" if errors else ""
            print(f"{name:<32} {sum(native) / 1e3:9.2f} {in_page:10.2f} {ratio:6.2f}  "
                  f"{verdict(ok)}{note}")
        browser.close()
    print("\nall targets met" if all_ok else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
