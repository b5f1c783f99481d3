"""`make bench`: how long one update of each lab takes, control moved to picture redrawn.

- Python (the live lab in a kernel): a control moves (``lab.set``), the frame is computed and
  serialised to JSON as the widget sends it. Median over 30 moves of one control, dragged
  across its range as a reader would.
- JavaScript: lab.js draws one frame into the lab's canvas (and the pixels are read back, so the
  drawing has really happened), in headless Chromium on the static element. Median over 30
  frames of the precomputed grid.

A live update costs the sum plus the kernel round trip. Target (issue): the learning-rate lab
under 50 ms.
"""
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bpcourse import labs
from bpcourse.widgets import Lab, static_html

MOVES = 30
DRAG = {"lr": ("lr", labs.LABS["lr"]["controls"][0]["grid"][3:]),   # 0.01 to 3, and back
        "init": ("depth", list(range(5, 51, 5))),
        "depth": ("depth", [2, 5, 10, 15, 20, 25, 30, 35, 40, 50])}


def python_update_ms(name):
    lab = Lab(name)
    control, values = DRAG[name]
    path = (values + values[::-1]) * MOVES
    times = []
    for value in path[:MOVES]:
        start = time.perf_counter()
        lab.set(**{control: value})
        json.dumps(lab.frame)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def js_render_ms():
    """Median ms per frame drawn by lab.js for each lab, or None without Chromium/Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    html = "<!doctype html><meta charset='utf-8'><body style='width:900px'>" + "".join(
        static_html(name) for name in labs.LABS) + "</body>"
    script = """([name, n]) => {
        const root = document.querySelector(`.bplib-lab[data-lab="${name}"]`);
        const {lab, data} = root.bplibLab, ctx = lab.canvas.getContext("2d"), times = [];
        for (let i = 0; i < n; i++) {
            const frame = data.frames[(i * 7) % data.frames.length];
            const start = performance.now();
            lab.show(frame);
            ctx.getImageData(0, 0, 1, 1);
            times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        return times[Math.floor(n / 2)];
    }"""
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        page_file = Path(folder) / "labs.html"
        page_file.write_text(html)
        try:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--headless=new", "--no-sandbox"])
        except Exception as err:  # no Debian chromium here
            print(f"(no JS timing: {err.__class__.__name__})", file=sys.stderr)
            return None
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(page_file.as_uri())
        result = {name: page.evaluate(script, [name, MOVES]) for name in labs.LABS}
        browser.close()
    return result


def main():
    for name in labs.LABS:  # warm up: data sets and caches loaded once per process
        labs.frame(name)
    js = js_render_ms()
    print(f"\n{'lab':<7} {'python ms':>10} {'JS draw ms':>11} {'sum ms':>8}  target")
    print("-" * 52)
    for name in labs.LABS:
        py = python_update_ms(name)
        draw = js[name] if js else float("nan")
        total = py + (draw if js else 0.0)
        target = ("< 50 ms: " + ("met" if total < 50 else "MISSED")) if name == "lr" else "-"
        print(f"{name:<7} {py:10.1f} {draw:11.1f} {total:8.1f}  {target}")
    print(f"(median of {MOVES} updates; the live lab adds the kernel round trip)")


if __name__ == "__main__":
    main()
