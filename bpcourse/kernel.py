"""Jupyter kernels for the course machinery, all started one way: by a jupyter_client kernel
manager whose kernel listens on Unix sockets in a folder of its own (``PrivateSockets``).

- ``IPCKernelManager``: for the book build (jupyter-cache) and the notebook tests (nbclient).
- ``LimitedKernelManager`` under ``Kernel``: the grader's kernel, one per submission, in its own
  process session and temporary folder, behind a launcher that sets limits on memory and file
  size (and, with --sandbox, bubblewrap); ``Kernel`` adds time limits and kills everything the
  kernel started.

Why Unix sockets: jupyter_client picks free TCP ports, closes them, and the kernel binds them
later; any other process that takes one in between (another kernel starting, a browser) makes
the kernel die with "Kernel died before replying to kernel_info". A socket in a private folder
cannot be taken.
"""
import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import HasTraits, List, Unicode, default

OUTPUT_CAP = 10_000  # characters of printed output kept per kernel
MESSAGE_CAP = 300  # characters kept of an error message
MESSAGE_BYTES_CAP = 32 << 20  # bytes of one message from the kernel: a larger one is dropped
GRACE = 1.0  # seconds an interrupted cell gets to stop before the kernel is killed
MARKER = "BPLIB_GRADE_KERNEL"  # in the kernel's environment, inherited by all it starts
KILLED = "timeout: it ignored the interrupt, kernel killed"


def ipc_endpoint(folder):
    """The socket path prefix of a kernel listening in ``folder`` (the sockets are
    ``<prefix>-<port>``). Unix socket paths are limited to ~107 bytes: keep ``folder`` short."""
    return os.path.join(folder, "k")


# The kernel's launcher: set the limits (address space, data, file size), then become the kernel.
LAUNCH = """import os, resource, sys
limit = int(sys.argv[1]) << 20
for r in (resource.RLIMIT_AS, resource.RLIMIT_DATA, resource.RLIMIT_FSIZE):
    resource.setrlimit(r, (limit, limit))
os.execv(sys.executable, [sys.executable] + sys.argv[2:])
"""


def sandbox_command(folder):
    """bubblewrap: the kernel sees its folder (writable), Python, the venv, bplib and bpcourse and the system
    libraries (read-only); no network, no other processes, no other files."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SystemExit("--sandbox needs bubblewrap (Debian: apt-get install bubblewrap), "
                         "which is not installed; refusing to run unsandboxed")
    # No --new-session: bwrap and the kernel stay in the process group made for the kernel,
    # which has no terminal, so one killpg ends them all.
    cmd = [bwrap, "--unshare-all", "--die-with-parent", "--dev", "/dev", "--proc", "/proc",
           "--tmpfs", "/tmp"]
    for path in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(path):  # merged /usr: /lib -> usr/lib
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    import bplib  # the kernel imports both packages from where they are

    packages = {str(Path(bplib.__file__).parent), str(Path(__file__).parent)}
    for path in sorted({sys.prefix, sys.base_prefix, *packages}):
        cmd += ["--ro-bind", path, path]
    return cmd + ["--bind", str(folder), str(folder), "--chdir", str(folder), "--"]


def pids_marked(marker):
    """Processes whose environment holds the entry ``marker`` (b"NAME=value"), read from
    /proc; none where there is no /proc. A process that cleared its environment is not found:
    --sandbox, whose PID namespace dies with the kernel, is the answer to that."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:  # gone meanwhile, or not ours
                pass
    return found


class Kernel:
    """An IPython kernel in its own process, session and temporary folder, with limits."""

    def __init__(self, memory_mb=1024, sandbox=False):
        self.folder = folder = Path(tempfile.mkdtemp(prefix="bplib-grade-"))
        # The sockets live in the kernel's folder, the one folder a sandboxed kernel can see.
        self.manager = LimitedKernelManager(socket_folder=str(folder),
                                            connection_file=str(folder / "kernel.json"))
        self.manager.launcher = [*(sandbox_command(folder) if sandbox else []),
                                 sys.executable, "-c", LAUNCH, str(memory_mb)]
        # A clean environment: nothing of the grader's (its seed, tokens) reaches the learner's
        # code. One malloc arena per thread would reserve ~450 MB of address space up front.
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(folder),
               "IPYTHONDIR": str(folder / ".ipython"), "MPLCONFIGDIR": str(folder / ".mpl"),
               "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "BPLIB_NO_PROGRESS": "1",
               MARKER: str(folder)}
        self.marker = f"{MARKER}={folder}".encode()
        # Not independent: the kernel exits if the grader dies. In the sandbox the grader's pid
        # means nothing (another PID namespace); there bwrap's --die-with-parent does it.
        self.manager.start_kernel(env=env, cwd=str(folder), independent=sandbox,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL,
                                  extra_arguments=["--HistoryManager.enabled=False"])
        self.process = self.manager.provisioner.process
        # A context of its own, whose sockets drop the connection to a kernel that sends a
        # message over MESSAGE_BYTES_CAP: the grader never holds one in memory.
        self.context = zmq.Context()
        self.context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_BYTES_CAP)
        self.client = self.manager.client(context=self.context)
        self.client.start_channels()
        self.output, self.dropped = "", 0

    def wait_ready(self, timeout):
        """True once the kernel answers on both channels (an iopub subscriber joins late)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self._wait(self.client.kernel_info(), 0.2)[0]
            if state in ("ok", "dead"):
                return state == "ok"
        return False

    def run(self, code, timeout):
        """Execute ``code``: (state, message), the state "ok" (message None), "error",
        "timeout" (interrupted), "killed" (it ignored the interrupt) or "dead"."""
        msg_id = self.client.execute(code, store_history=False, stop_on_error=False,
                                     allow_stdin=False)
        state, error = self._wait(msg_id, timeout)
        if state == "timeout":  # an interrupt request, not a signal: bwrap would die of SIGINT
            self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))
            if self._wait(msg_id, GRACE)[0] in ("ok", "error"):
                return "timeout", f"timed out after {timeout:.3g} s (interrupted)"
            self.kill()
            return "killed", KILLED
        if state == "dead":
            return state, f"kernel died (exit code {self.process.returncode})"
        return state, error

    def _wait(self, msg_id, timeout):
        end, error = time.monotonic() + timeout, None
        while time.monotonic() < end:
            if self.process.poll() is not None:
                return "dead", None
            try:
                msg = self.client.iopub_channel.get_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                kept = content["text"][: max(OUTPUT_CAP - len(self.output), 0)]
                self.output += kept
                self.dropped += len(content["text"]) - len(kept)
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"[:MESSAGE_CAP]
            elif kind == "status" and content["execution_state"] == "idle":
                return ("error" if error else "ok"), error
        return "timeout", error

    def kill(self):
        """Kill the kernel, whatever it started in its session, and whatever left the session
        (setsid, a double fork) but still carries the kernel's marker in its environment."""
        if self.process.returncode is None:  # not waited for yet, so the pid is still its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in pids_marked(self.marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def close(self):
        self.client.stop_channels()
        self.kill()
        self.context.destroy(linger=0)
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateSockets(HasTraits):
    """For a jupyter_client kernel manager: listen on Unix sockets in ``socket_folder``, a
    temporary folder made for this kernel (and removed when it ends) unless one is given."""

    socket_folder = Unicode(None, allow_none=True)

    @default("transport")
    def _transport_default(self):
        return "ipc"

    @default("ip")
    def _ip_default(self):
        if self.socket_folder is None:
            self.socket_folder = tempfile.mkdtemp(prefix="kipc-")  # short: paths are limited
            self._made_folder = True
        return ipc_endpoint(self.socket_folder)

    def _remove_socket_folder(self, restart):
        if getattr(self, "_made_folder", False) and not restart:
            shutil.rmtree(self.socket_folder, ignore_errors=True)


class IPCKernelManager(PrivateSockets, AsyncKernelManager):
    """The book build's and the notebook tests' kernel manager (nbclient, jupyter-cache)."""

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        self._remove_socket_folder(restart)

    cleanup_resources = _async_cleanup_resources


class LimitedKernelManager(PrivateSockets, KernelManager):
    """The grader's kernel manager: the kernel command runs behind ``launcher``, which sets the
    limits (and, with --sandbox, bubblewrap) and then becomes the kernel."""

    launcher = List(Unicode())

    def format_kernel_cmd(self, extra_arguments=None):
        _python, *rest = super().format_kernel_cmd(extra_arguments)
        return [*self.launcher, *rest]  # LAUNCH execs this interpreter with the rest


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
