"""`make lab`: in JupyterLab a double click on a chapter's .md file opens it as a notebook, because
the environment makes jupytext's "Jupytext Notebook" the default viewer for markdown."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from book import ROOT, notebook_sources
from test_browser import SCREENSHOTS, browser, visit  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]
TOKEN = "bplib-test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root, home):
    """JupyterLab serving the folder ``root`` as `make lab` starts it, with its settings,
    workspaces and log (jupyter.log) in ``home``; its URL."""
    overrides = Path(sys.prefix) / "share/jupyter/lab/settings/overrides.json"
    assert overrides.exists(), "the venv step of the Makefile installs the lab settings override"
    port = free_port()
    # As `make lab` runs it: tools/ on the path for the jupyter_nodelay server extension and the
    # pre-save hook that keeps a chapter's header (jupyter_keep_header), kernels
    # on Unix sockets (bpcourse/kernel.py says why). The kernels import this checkout's bplib
    # and bpcourse, whichever checkout the environment's editable install points at.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tools"), str(ROOT)]),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", "--allow-root", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}", "--ServerApp.jpserver_extensions={'jupyter_nodelay': True}",
         "--ContentsManager.pre_save_hook=jupyter_keep_header.keep_header",
         "--KernelManager.transport=ipc",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=(home / "jupyter.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("jupyter lab did not start within 30 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()



def lab_notebook(name, cells):
    """Write the nbformat ``cells`` as _build/<name>.ipynb with the kernel the chapters name;
    returns its path below the repository (what a lab URL takes)."""
    import nbformat

    notebook = ROOT / "_build" / f"{name}.ipynb"
    notebook.parent.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, notebook)
    return f"_build/{notebook.name}"


def run_first_cell(page):
    """Run the notebook's first cell; a run asked for while the kernel is still connecting can
    be dropped, so ask again until its prompt leaves [ ]."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = "() => !document.querySelector('.jp-CodeCell .jp-InputPrompt').textContent" \
              ".includes('[ ]')"
    for _ in range(3):
        page.locator(".jp-CodeCell .cm-content").first.click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(started, timeout=15_000)
            return
        except PlaywrightTimeout:
            continue

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with jupyter_lab(ROOT, tmp_path_factory.mktemp("labhome")) as url:
        yield url


def test_chapter_opens_as_a_notebook(browser, lab):  # noqa: F811
    chapter = notebook_sources()[0].relative_to(ROOT).as_posix()
    page, _ = visit(browser, f"{lab}/lab/tree/{chapter}?token={TOKEN}")
    try:
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=60_000)
        # The notebook renders its cells progressively; wait until several are on screen.
        page.wait_for_function(
            "() => document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length > 3", timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab.png"))
        assert page.locator(".jp-FileEditor:visible").count() == 0
        # The kernel starts by itself: no "Select Kernel" dialog, and no news question
        # (assets/jupyterlab-overrides.json).
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        assert page.locator(".jp-Dialog").count() == 0
        assert page.get_by_text("notified about official Jupyter news").count() == 0
    finally:
        page.context.close()


def test_nodelay_extension_turns_off_nagle_before_the_kernel_websocket_opens(monkeypatch):
    import asyncio
    import logging
    import threading
    import types

    sys.path.insert(0, str(ROOT / "tools"))
    import jupyter_nodelay
    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    calls = []

    async def fake_open(self, kernel_id):
        calls.append(("open", kernel_id))

    monkeypatch.setattr(KernelWebsocketHandler, "open", fake_open)
    jupyter_nodelay._load_jupyter_server_extension(types.SimpleNamespace(log=logging.getLogger()))
    handler = types.SimpleNamespace(set_nodelay=lambda on: calls.append(("nodelay", on)))
    # In a thread of its own: playwright may have an event loop running in this one.
    worker = threading.Thread(target=asyncio.run, args=(KernelWebsocketHandler.open(handler, "k1"),))
    worker.start()
    worker.join()
    assert calls == [("nodelay", True), ("open", "k1")]
