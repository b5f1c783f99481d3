"""Jupyter kernels for the course machinery, all started one way: by a jupyter_client kernel
manager whose kernel listens on Unix sockets in a folder of its own (``PrivateSockets``).

- ``IPCKernelManager``: for the book build (jupyter-cache) and the notebook tests (nbclient).
- ``LimitedKernelManager`` under ``Kernel``: the grader's kernel, one per submission, in its own
  process session and temporary folder, behind a launcher that sets per-process limits (address
  space, file size) and, with --sandbox, bubblewrap; ``Kernel`` adds time limits, a watchdog over
  all the kernel's processes together (``Budget``) and kills everything the kernel started.

What holds for the processes of one kernel (``Budget``):

- memory: each process's address space (rlimit), and the sum of the proportional set sizes of
  all of them, looked at by a watchdog every ``Kernel.WATCH`` s while the grader waits on the
  kernel; with --sandbox the same, and a PID namespace ends them all with the kernel.
- processes: their number, by the watchdog (``RLIMIT_NPROC`` counts all of a user's processes,
  and none of root's: no use here); with --sandbox the same.
- disk: each file anywhere (rlimit), and all the files in the kernel's folder, by the watchdog;
  with --sandbox also ``/tmp`` and ``/dev/shm``, tmpfs of the limit each, and nothing else is
  writable.

The watchdog finds the kernel's processes by a marker in their environment: a process that wiped
its environment escapes it without --sandbox. Between two looks a fork bomb or an allocation can
overshoot; the kill that follows takes all of them, as often as needed.

Why Unix sockets: jupyter_client picks free TCP ports, closes them, and the kernel binds them
later; any other process that takes one in between (another kernel starting, a browser) makes
the kernel die with "Kernel died before replying to kernel_info". A socket in a private folder
cannot be taken.
"""
import contextlib
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


# The kernel's launcher: set the limits (address space and data per process, size of a file
# written), then become the kernel.
LAUNCH = """import os, resource, sys
memory, disk = (int(n) << 20 for n in sys.argv[1:3])
for r, limit in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_DATA, memory),
                 (resource.RLIMIT_FSIZE, disk)):
    resource.setrlimit(r, (limit, limit))
os.execv(sys.executable, [sys.executable] + sys.argv[3:])
"""
# Asked of the kernel's interpreter, in the kernel's environment: where it reads its modules.
PROBE = "import sys; print(sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path, sep='\\n')"


def interpreter_paths(python, env):
    """What ``python`` needs to run: its prefixes, the folders on its path and the folder of
    its executable (a venv's ``python`` may link elsewhere); nothing if it does not run."""
    try:
        probe = subprocess.run([python, "-c", PROBE], env=env, capture_output=True, text=True,
                               timeout=30, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return []
    found = [line for line in probe.stdout.splitlines() if line.startswith("/")]
    return sorted({*found, str(Path(os.path.realpath(python)).parent)} - {"/"})


def sandbox_command(folder, python=sys.executable, env=None, lib=None, packages=(), disk_mb=1024):
    """bubblewrap: the kernel sees its folder (writable), a /tmp and a /dev/shm of ``disk_mb``
    each in memory, the system libraries and what ``python`` needs (read-only), nothing else
    writable; ``packages``, (copy, real folder)
    pairs, put each copy where the real package is, so that the real one is nowhere to be read.
    No network, no other processes, no other files."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SystemExit("--sandbox needs bubblewrap (Debian: apt-get install bubblewrap), "
                         "which is not installed; refusing to run unsandboxed")
    # No --new-session: bwrap and the kernel stay in the process group made for the kernel,
    # which has no terminal, so one killpg ends them all.
    size = str(disk_mb << 20)
    cmd = [bwrap, "--unshare-all", "--die-with-parent", "--dev", "/dev", "--remount-ro", "/dev",
           "--size", size, "--tmpfs", "/dev/shm", "--proc", "/proc", "--size", size, "--tmpfs",
           "/tmp"]
    for path in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/alternatives"):
        if os.path.islink(path):  # merged /usr: /lib -> usr/lib
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    hidden = {str(Path(real).parent) for _, real in packages}  # a repository: its masters too
    for path in interpreter_paths(python, env):
        if os.path.exists(path) and path not in hidden and not path.startswith(str(folder)):
            cmd += ["--ro-bind", path, path]
    for copy, real in [(lib, lib)] * bool(lib) + list(packages):
        cmd += ["--ro-bind", str(copy), str(real)]
    return cmd + ["--bind", str(folder), str(folder), "--remount-ro", "/", "--chdir", str(folder),
                  "--"]


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


def memory_bytes(pid):
    """Proportional set size of a process (its share of the pages it shares): these add up
    over a forked family without counting the pages they share once per process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            found = re.search(rb"^Pss:\s+(\d+) kB", f.read(), re.MULTILINE)
        return int(found.group(1)) << 10 if found else 0
    except OSError:  # gone meanwhile
        return 0


def disk_bytes(folder, most=10_000):
    """Bytes of the files below ``folder`` (not following links); a folder of more than
    ``most`` entries counts as infinitely large."""
    total, seen = 0, 0
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            seen += 1
            if seen > most:
                return math.inf
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_blocks * 512
    return total


@dataclass
class Budget:
    """What the processes of one kernel may use together."""

    memory_mb: int = 1024  # address space of each process, and memory of all of them together
    procs: int = 64  # processes, the kernel included
    disk_mb: int = 1024  # bytes written in the kernel's folder, and any one file anywhere
    sandbox: bool = False  # under bubblewrap
    python: str = sys.executable  # the kernel's interpreter


class Kernel:
    """An IPython kernel in its own process, session and temporary folder, with limits: each
    process's address space and file size by rlimits, and the memory, number and disk use of all
    the kernel's processes together by a watchdog that looks at them every ``WATCH`` seconds
    while the grader waits, and kills them all, the kernel with them, at the first excess.

    - ``lib``: a folder put first on the kernel's path; with ``packages``, (copy, real folder)
      pairs, the sandbox shows each copy in place of the real package.
    - ``env``: more of the kernel's environment.
    """

    WATCH = 0.25  # seconds between the watchdog's looks

    def __init__(self, budget=None, lib=None, packages=()):
        self.budget = budget = budget or Budget()
        self.folder = folder = Path(tempfile.mkdtemp(prefix="bplib-grade-"))
        # The sockets live in the kernel's folder, the one folder a sandboxed kernel can see.
        self.manager = LimitedKernelManager(socket_folder=str(folder),
                                            connection_file=str(folder / "kernel.json"))
        # A clean environment: nothing of the grader's (its seed, tokens) reaches the learner's
        # code. One malloc arena per thread would reserve ~450 MB of address space up front.
        python = budget.python
        env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": str(folder),
               "TMPDIR": str(folder), "IPYTHONDIR": str(folder / ".ipython"),
               "MPLCONFIGDIR": str(folder / ".mpl"), "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
               "BPLIB_NO_PROGRESS": "1", MARKER: str(folder)}
        if lib is not None:
            env["PYTHONPATH"] = str(lib)
        sandbox = sandbox_command(folder, python, env, lib, packages, budget.disk_mb) \
            if budget.sandbox else []
        self.manager.launcher = [*sandbox, python, "-c", LAUNCH, str(budget.memory_mb),
                                 str(budget.disk_mb)]
        self.marker = f"{MARKER}={folder}".encode()
        # The kernel's errors go to a file of the grader's, unnamed: shown if it fails to start.
        self.stderr = tempfile.TemporaryFile()
        # Not independent: the kernel exits if the grader dies. In the sandbox the grader's pid
        # means nothing (another PID namespace); there bwrap's --die-with-parent does it.
        try:
            self.manager.start_kernel(env=env, cwd=str(folder), independent=budget.sandbox,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=self.stderr,
                                      extra_arguments=["--HistoryManager.enabled=False"])
        except OSError:  # no such interpreter, say: nothing is left behind
            self.stderr.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.process = self.manager.provisioner.process
        # A context of its own, whose sockets drop the connection to a kernel that sends a
        # message over MESSAGE_BYTES_CAP: the grader never holds one in memory. A monitor
        # tells when the connection for output is dropped.
        self.context = zmq.Context()
        self.context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_BYTES_CAP)
        self.client = self.manager.client(context=self.context)
        self.client.start_channels()
        self.monitor = self.client.iopub_channel.socket.get_monitor_socket(
            zmq.EVENT_DISCONNECTED)
        self.output, self.dropped, self.violation, self.watched = "", 0, None, 0.0

    def errors(self, most=2000):
        """The last ``most`` characters the kernel wrote to its stderr."""
        self.stderr.seek(max(self.stderr.seek(0, os.SEEK_END) - most, 0))
        return self.stderr.read().decode(errors="replace")

    def wait_ready(self, timeout):
        """True once the kernel answers on both channels (an iopub subscriber joins late)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self._wait(self.client.kernel_info(), 0.2)[0]
            if state in ("ok", "dead"):
                return state == "ok"
        return False

    def run(self, code, timeout, record=True):
        """Execute ``code``: (state, message), the state "ok" (message None), "error",
        "timeout" (interrupted), "killed" (it ignored the interrupt), "flood" (it sent a message
        over MESSAGE_BYTES_CAP: killed) or "dead" (it died, or the watchdog killed it). Printed
        output is kept (up to
        OUTPUT_CAP characters) if ``record``."""
        msg_id = self.client.execute(code, store_history=False, stop_on_error=False,
                                     allow_stdin=False)
        state, error = self._wait(msg_id, timeout, record)
        if state == "timeout":  # an interrupt request, not a signal: bwrap would die of SIGINT
            self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))
            if self._wait(msg_id, GRACE, record)[0] in ("ok", "error"):
                return "timeout", f"timed out after {timeout:.3g} s (interrupted)"
            self.kill()
            return "killed", KILLED
        if state == "flood":
            self.kill()
            return "flood", (f"output over {MESSAGE_BYTES_CAP >> 20} MB in one message: "
                              "kernel killed")
        if state == "dead":
            why = self.violation or f"exit code {self.process.returncode}"
            return state, f"kernel died ({why})"
        return state, error

    def over_budget(self):
        """Why the kernel's processes together exceed the budget (then all are killed), or
        None."""
        pids, budget = pids_marked(self.marker), self.budget
        why = None
        if len(pids) > budget.procs:
            why = f"{len(pids)} processes; the limit is {budget.procs}"
        elif sum(map(memory_bytes, pids)) > budget.memory_mb << 20:
            why = f"its processes use over {budget.memory_mb} MB together"
        elif disk_bytes(self.folder) > budget.disk_mb << 20:
            why = f"its files take over {budget.disk_mb} MB"
        if why:
            self.violation = why
            self.kill()
        return why

    def _wait(self, msg_id, timeout, record=True):
        end, error = time.monotonic() + timeout, None
        while time.monotonic() < end:
            if self.process.poll() is not None:
                return "dead", None
            if time.monotonic() > self.watched + self.WATCH:
                self.watched = time.monotonic()
                if self.over_budget():
                    return "dead", None
            if self.monitor.poll(0) and self.process.poll() is None:
                self.monitor.recv_multipart()
                time.sleep(0.2)  # a kernel that exits disconnects too
                if self.process.poll() is None:
                    return "flood", None
            try:
                msg = self.client.iopub_channel.get_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and record:
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
        (setsid, a double fork) but still carries the kernel's marker in its environment; again
        while any is left (a fork bomb forks between a look and a kill)."""
        if self.process.returncode is None:  # not waited for yet, so the pid is still its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for _ in range(100):
            pids = pids_marked(self.marker)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def close(self):
        self.client.stop_channels()
        self.monitor.close(linger=0)
        self.kill()
        self.context.destroy(linger=0)
        self.stderr.close()
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
