"""tools/serve_book.py (`make serve`): serves a built book on localhost, prints the address, and
gives Pyodide's files the types browsers insist on."""
import subprocess
import sys
import urllib.request

import pytest

from book import ROOT

SERVER = [sys.executable, str(ROOT / "tools" / "serve_book.py")]
# name, bytes, the Content-Type a browser needs
FILES = [
    ("index.html", b"<!doctype html><title>book</title>", "text/html"),
    ("pyodide/pyodide.asm.wasm", b"\0asm\1\0\0\0", "application/wasm"),
    ("pyodide/pyodide.mjs", b"export const v = 1;", "text/javascript"),
    ("pyodide/pyodide.js", b"var v = 1;", "text/javascript"),
    ("pyodide/numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl", b"PK\3\4", "application/zip"),
]


@pytest.fixture
def site(tmp_path):
    for name, data, _ in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return tmp_path


def test_it_prints_its_address_and_serves_wasm_modules_and_wheels_with_their_types(site):
    with subprocess.Popen([*SERVER, str(site), "--port", "0"], stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith(f"serving {site} at http://127.0.0.1:"), line
            url = line.split(" at ")[1].split()[0]
            for name, data, content_type in FILES:
                with urllib.request.urlopen(url + name, timeout=10) as response:
                    assert (response.headers.get_content_type(), response.read()) == (content_type, data), name
        finally:
            proc.terminate()


def test_without_a_built_book_it_says_to_run_make_book(tmp_path):
    proc = subprocess.run([*SERVER, str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"serve: no built book in {tmp_path}: run `make book` first"


def test_it_compresses_for_browsers_that_accept_gzip_and_lets_them_keep_the_runtime(site):
    import gzip

    with subprocess.Popen([*SERVER, str(site), "--port", "0"], stdout=subprocess.PIPE, text=True) as proc:
        try:
            url = proc.stdout.readline().split(" at ")[1].split()[0]
            for name, data, _ in FILES:
                request = urllib.request.Request(url + name, headers={"Accept-Encoding": "gzip"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    body, encoding = response.read(), response.headers.get("Content-Encoding")
                    cache = response.headers.get("Cache-Control")
                assert (gzip.decompress(body) if encoding == "gzip" else body) == data, name
                assert (encoding == "gzip") == (not name.endswith(".whl")), name  # wheels are zips
                runtime = name.startswith("pyodide/")
                assert cache == ("public, max-age=31536000, immutable" if runtime else "no-cache")
        finally:
            proc.terminate()
