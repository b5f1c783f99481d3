import importlib.metadata
import os
import sys
from pathlib import Path

import pytest
from book import ROOT, build_book, glued

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


def pytest_configure(config):
    """`make test-pyodide-numpy` sets BPLIB_EXPECT_VERSIONS="numpy==2.0.2 ...": the run stops at
    once unless those are the versions installed (a resolver that quietly picked another numpy
    would prove nothing)."""
    for pin in os.environ.get("BPLIB_EXPECT_VERSIONS", "").split():
        name, version = pin.split("==")
        if importlib.metadata.version(name) != version:
            pytest.exit(f"expected {pin}, found {name} {importlib.metadata.version(name)}", 2)


def pytest_report_header(config):
    return "numpy " + importlib.metadata.version("numpy") + ", matplotlib " + \
        importlib.metadata.version("matplotlib")


def glued_values(chapter):
    """A fixture: ``values(name)``, what the executed chapter glued under ``name``."""
    @pytest.fixture(scope="session")
    def values(built_book):
        return lambda name: glued(built_book[2], chapter, name)
    return values


ch1, ch2, ch3, ch4, ch5, ch6, ch7, ch8 = map(glued_values, [
    "01_forward_pass", "02_loss", "03_chain_rule", "04_backprop_matrix", "05_training",
    "06_vanishing_gradients", "07_resnet_skips", "08_beyond"])
