"""Jupyter kernels that talk over Unix sockets in a private folder instead of TCP ports.

jupyter_client starts a kernel by finding five free TCP ports, closing them, and writing them
into the kernel's connection file; the kernel then binds them. If any other process on the
machine takes one of those ports in between (another kernel starting, a browser opening a
connection), the new kernel dies with "Kernel died before replying to kernel_info". The test
suite starts many kernels side by side while the book builds, so on a busy machine it happens.
A Unix socket in a folder made for one kernel cannot be taken by anybody else.

Used by the book build (tools/book_offline.py) and by the tests that execute notebooks;
bplib.grade starts its kernels over IPC sockets of its own.
"""
import os
import shutil
import tempfile

from jupyter_client.manager import AsyncKernelManager
from traitlets import default


class IPCKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel listens on Unix sockets in its own temporary folder."""

    @default("transport")
    def _transport_default(self):
        return "ipc"

    @default("ip")
    def _ip_default(self):
        # Unix socket paths are limited to ~107 bytes: a short folder under the temp root.
        self._ipc_folder = tempfile.mkdtemp(prefix="kipc-")
        return os.path.join(self._ipc_folder, "k")

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        folder = getattr(self, "_ipc_folder", None)
        if folder and not restart:
            shutil.rmtree(folder, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources


def use_ipc_kernels_in_jupyter_cache():
    """Make jupyter-cache (which myst-nb uses to execute the book's notebooks) start every
    kernel with IPCKernelManager. jupyter-cache calls nbclient's ``execute`` through the name
    ``executenb`` in ``jupyter_cache.executors.utils``; that name is wrapped. Idempotent."""
    from jupyter_cache.executors import utils

    if getattr(utils.executenb, "ipc_kernels", False):
        return
    execute = utils.executenb

    def executenb(nb, cwd=None, km=None, **kwargs):
        kwargs.setdefault("kernel_manager_class", IPCKernelManager)
        return execute(nb, cwd=cwd, km=km, **kwargs)

    executenb.ipc_kernels = True
    utils.executenb = executenb
