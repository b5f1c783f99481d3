"""Kernels started by the book build and by the notebook tests listen on Unix sockets, so no
other process can take their ports between the choice and the bind (bpcourse/kernel.py)."""
import os
import types

import nbclient
import nbformat
import pytest

from bpcourse.kernel import IPCKernelManager

pytestmark = pytest.mark.jupyter  # kernels: not in the numpy 2.0.2 run

ASK_TRANSPORT = (
    "import json, ipykernel.connect\n"
    "info = json.loads(ipykernel.connect.get_connection_info())\n"
    "print(info['transport'], info['ip'])"
)


def notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(ASK_TRANSPORT)]
    return nb


def printed(nb):
    return "".join(o.get("text", "") for o in nb.cells[0].outputs)


def test_ipc_kernel_runs_a_notebook_over_unix_sockets_and_cleans_up():
    nb = notebook()
    nbclient.NotebookClient(nb, timeout=60, kernel_manager_class=IPCKernelManager).execute()
    transport, ip = printed(nb).split()
    assert transport == "ipc"
    folder = os.path.dirname(ip)
    assert os.path.basename(folder).startswith("kipc-"), ip
    assert not os.path.exists(folder), "the kernel's socket folder outlived the kernel"


def test_the_book_extension_makes_jupyter_cache_start_ipc_kernels():
    """myst-nb executes the book through jupyter_cache's single_nb_execution; after the local
    extension's setup, the kernel it starts reports the ipc transport."""
    import book_offline
    from jupyter_cache.executors import utils

    saved = utils.executenb
    try:
        book_offline.setup(types.SimpleNamespace(connect=lambda *args: None))
        book_offline.setup(types.SimpleNamespace(connect=lambda *args: None))  # idempotent
        nb = notebook()
        result = utils.single_nb_execution(nb, cwd=None, timeout=60, allow_errors=False)
        assert result.err is None, result.exc_string
        assert printed(nb).split()[0] == "ipc"
    finally:
        utils.executenb = saved


def test_without_the_extension_jupyter_cache_would_use_tcp():
    """The control: the same execution without the wrapper goes over TCP ports (the race)."""
    from jupyter_cache.executors import utils

    if getattr(utils.executenb, "ipc_kernels", False):  # another test in this process wrapped it
        utils.executenb = nbclient.execute
    nb = notebook()
    result = utils.single_nb_execution(nb, cwd=None, timeout=60, allow_errors=False)
    assert result.err is None, result.exc_string
    assert printed(nb).split()[0] == "tcp"
