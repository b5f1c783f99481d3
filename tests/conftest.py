import os
import sys
from pathlib import Path

import pytest

from book import ROOT, build_book

# tools/ holds the book's local Sphinx extension, which the tests load too.
sys.path.insert(0, str(ROOT / "tools"))

# Kernels started by the tests (and by the book builds they run) inherit this: no progress bars.
os.environ["BPLIB_NO_PROGRESS"] = "1"


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built once per test session from a clean folder, every notebook executed.

    BPLIB_BUILT_BOOK=<folder holding _build/html> reuses a build (for iterating on the browser
    tests only); CI never sets it.
    """
    reuse = os.environ.get("BPLIB_BUILT_BOOK")
    if reuse:
        html = Path(reuse) / "_build" / "html"
        return 0, f"(reused {html})", html
    return build_book(tmp_path_factory.mktemp("book"))
