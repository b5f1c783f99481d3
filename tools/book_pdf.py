"""`make pdf`: the whole book as one PDF.

    python tools/book_pdf.py _build/singlehtml _build/pdf/backpropagation.pdf

The book built as one HTML page (``jupyter-book build --builder singlehtml``, which reuses the
executed notebooks) is served on 127.0.0.1 and printed by Debian's Chromium once every formula is
typeset and every figure has loaded, with the headings as the PDF's outline. Nothing is asked of
any other host.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serve_book import served  # noqa: E402

CHROMIUM = "/usr/bin/chromium"  # Debian's
# Headless, quiet, and unable to reach any host but this one, whatever in the page asks (a
# worker shared by pages too, whose requests a browser context's routes do not see). The
# browser tests and the bench launch it the same way.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
TYPESET = "() => document.querySelectorAll('mjx-container').length >= document.querySelectorAll('.math').length"
LOADED = "() => [...document.images].every((i) => i.complete && i.naturalWidth > 0)"


def print_book(html, out, timeout_s=600):
    """Print ``html``/intro.html (the single-page book) to the PDF ``out``; returns ``out``."""
    from playwright.sync_api import sync_playwright

    with served(html) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/intro.html",
                  wait_until="networkidle", timeout=timeout_s * 1000)
        page.wait_for_function(TYPESET, timeout=timeout_s * 1000)
        page.wait_for_function(LOADED, timeout=timeout_s * 1000)
        page.evaluate("() => document.fonts.ready.then(() => true)")
        page.emulate_media(media="print")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        page.pdf(path=str(out), format="A4", print_background=True, outline=True, tagged=True,
                 margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"})
        browser.close()
    return Path(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the singlehtml build (holds intro.html)")
    parser.add_argument("out", type=Path, help="the PDF to write")
    args = parser.parse_args(argv)
    if not (args.html / "intro.html").is_file():
        sys.exit(f"pdf: no single-page book in {args.html}: run `make pdf`")
    print(f"The book as one PDF: {print_book(args.html, args.out)}")


if __name__ == "__main__":
    main()
