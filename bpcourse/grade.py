r"""Release student versions of the exercise notebooks, and grade what learners hand in.

    python -m bpcourse.grade release exercises/ --out student/ [--ipynb]
    python -m bpcourse.grade SUBMISSIONS... --out grades/ [--seed-file SEED] [--cases hidden.py]
        [--workers 2] [--timeout-cell 30] [--timeout-notebook 300] [--memory-mb 1024]
        [--procs 64] [--disk-mb 1024] [--sandbox] [--resume]
    python -m bpcourse.grade --self exercises/

**Release.** Every block between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers, so nbgrader takes the masters as they are) becomes ``raise NotImplementedError("fill in
f")`` at the block's indentation; everything else, hints included, stays.

**Grading.** Each submission runs in a kernel of its own (``kernel.Kernel``): a fresh process in a
temporary folder, with a clean environment, a time limit per cell and per notebook, and limits on
memory, processes and disk for all its processes together, optionally under bubblewrap. Cells
tagged ``check`` are skipped: the tasks of a notebook are the ``check("task", f)`` calls of its
master (matched by file name, else by first heading). For each task the grader draws inputs from
a secret seed, saves them as ``.npy`` files, has the kernel call the learner's function and
``np.save`` what it returns, reads that (``read_npy``, no pickles) and compares it with the
reference in its own process. Nothing from the kernel is unpickled or believed, so patching numpy
or ``check`` in the notebook changes nothing. A result is read only from a regular file with a
single link holding a ``.npy`` of a numeric dtype whose header, checked before anything is
allocated, declares at most ``RESULT_CAP`` bytes (64 MB, counted as float64) for all the values
of a call; a value that would broadcast past that against the reference is not compared.
Anything else scores the task 0 with the reason, and a failure of the grader itself scores the
submission 0 with the reason: the batch goes on. Measured: a submission returning results at the
cap costs the grader 4.2 x the cap (270 MB) at its peak, under the 5 x a test holds it to (per
worker).

- A kernel that dies in a task (it exits, crashes, ignores an interrupt, breaks a limit or sends a
  message over 32 MB, ``kernel.MESSAGE_BYTES_CAP``, which is then reported as "output over 32 MB")
  costs that task: a new kernel runs the notebook's cells again, silently, for the remaining
  tasks; at most one restart per task graded, all within the notebook's time limit.
- The learner must do the work: the kernel imports a copy of bplib (``library_copy``) in which
  the task's own implementations (``LIBRARY_ANSWERS``: ``linear_backward`` ->
  ``Linear.backward``, ...) have no code, only a raise of "not available while grading", and a
  ``bpcourse.check`` that does nothing (no ``check()`` or ``progress()`` text in a report). The
  copy comes first on the kernel's path; under --sandbox it also stands where the real packages
  are, which are nowhere else in sight, so reloading, re-importing or reading and running the
  files gives the copy. Without --sandbox a determined learner can still read the real files.
- Hidden cases (``--cases``, a Python file defining ``CASES = {"task": [args, ...]}``) run after
  the random cases of every task, for the tasks that passed them, and are told only as passed or
  failed; nothing a call of a learner's function prints is kept, and only the first kernel's
  output (before any call) goes into a report. The seed comes from ``--seed-file`` or
  ``BPLIB_GRADE_SEED`` (removed from the environment); ``hide_secrets`` blanks the grader's
  arguments and that variable in what /proc shows and makes the grader non-dumpable before any
  kernel starts, and kernels inherit nothing of its environment. What holds without --sandbox: a
  kernel runs as the grader's user, so it can read every file that user can (the seed file and
  the cases among them, if it finds them) and, for a root grader, its memory; with --sandbox it
  sees no file of the grader's and no process but its own.

**Names and reports.** A submission is named by its path below the folder holding all the
submissions given (``alice/hw1/02_loss.md``); its report is ``OUT/reports/<name>.json``, written
as soon as it is graded, and the tables are rewritten then: ``OUT/grades.csv``, a row per
submission, and ``OUT/learners.csv``, a row per learner (``learner``: the name's first
component), each task's best points, total, max and worst status (cells a spreadsheet would read
as a formula start with ``'``). Symbolic links below the submissions are refused with a reason,
never followed. A run never writes over reports: if ``OUT`` holds some, it stops, unless
``--resume`` is given, which grades only the submissions without a report (after a grader was
stopped midway, say), refuses a seed other than the one they were made with (each holds a hash
of it, never the seed), and makes the tables of all of them.
"""
import argparse
import ast
import contextlib
import csv
import ctypes
import hashlib
import inspect
import json
import math
import os
import re
import runpy
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import jupytext
import numpy as np
from numpy.lib import format as npformat

from .kernel import (
    KILLED,
    MESSAGE_BYTES_CAP,
    MESSAGE_CAP,
    Budget,
    Kernel,
    sandbox_command,
)

EXERCISES = Path(__file__).resolve().parents[1] / "exercises"
BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"  # found anywhere in a line, as nbgrader does
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")
STATUSES = ("ok", "error", "memory", "timeout", "kernel died")  # from best to worst
STOPS = {"dead": "kernel died", "killed": KILLED,
         "flood": f"output over {MESSAGE_BYTES_CAP >> 20} MB",
         "late": "timeout: notebook time limit"}  # why no further task can run in that kernel
RANDOM_CASES = 3
RESULT_CAP = 64 << 20  # bytes of float64 a call may return in all: more is refused, unread
MAX_VALUES = 16  # values in a returned tuple

# Runs in the learner's kernel: load the arguments, call the function, save what it returns.
# A task's ``call`` (check.Task), if it has one, is defined in the kernel and given the function.
CALL = """def _bplib_grade_call(name, folder, via=None):
    import os
    import numpy as np
    if not callable(globals().get(name)):
        raise NameError(f"function {name} not defined")
    args = [np.load(os.path.join(folder, f"arg{i}.npy")) for i in range(len(os.listdir(folder)))]
    args = [a.item() if a.ndim == 0 else a for a in args]
    result = globals()[name](*args) if via is None else via(globals()[name], *args)
    for i, value in (enumerate(result) if isinstance(result, tuple) else [("", result)]):
        if np.asarray(value).dtype.kind not in "biuf":
            raise TypeError(f"{name} returned {type(value).__name__}; expected numbers or arrays")
        with open(os.path.join(folder, f"out{i}.npy"), "xb") as f:  # not through a symlink
            np.save(f, np.asarray(value), allow_pickle=False)
"""


@dataclass
class Limits:
    """What one submission gets."""

    cell: float = 30.0  # seconds per cell and per call of a learner's function
    notebook: float = 300.0  # seconds for the whole notebook, kernel start included
    memory_mb: int = 1024  # address space of each process (the kernel's baseline is ~300 MB),
    # and memory of all the kernel's processes together
    sandbox: bool = False  # run the kernel under bubblewrap
    procs: int = 64  # processes of a kernel, itself included
    disk_mb: int = 1024  # what a kernel's files take in its folder; any one file anywhere
    python: str = sys.executable  # the kernels' interpreter

    def budget(self):
        return Budget(self.memory_mb, self.procs, self.disk_mb, self.sandbox, self.python)


# A task's own implementation in bplib, which a grading kernel does not offer (principle 9):
# module, then the functions, methods or table entries that compute the task's answer.
LIBRARY_ANSWERS = {
    "sigmoid_grad": ("layers", "Sigmoid.backward"),
    "tanh_grad": ("layers", "Tanh.backward"),
    "leaky_relu_grad": ("layers", "LeakyReLU.backward"),
    "softmax": ("losses", "softmax", "log_softmax"),
    "softmax_ce": ("losses", "softmax_cross_entropy", "masked_softmax_cross_entropy"),
    "tiny_backprop": ("engine", "Value.backward"),
    "engine_mul_rule": ("engine", "VJP_RULES['*']"),
    "engine_tanh_rule": ("engine", "VJP_RULES['tanh']"),
    "topo_order": ("engine", "topological_order"),
    "engine_backward": ("engine", "Value.backward", "topological_order"),
    "linear_backward": ("layers", "Linear.backward"),
    "mlp2_backward": ("layers", "Linear.backward", "Sigmoid.backward"),
    "mlp3_backward": ("layers", "Linear.backward", "ReLU.backward"),
    "numerical_grad": ("gradcheck", "numerical_gradient"),
    "relative_error": ("gradcheck", "rel_error"),
    "per_example_grads": ("layers", "Linear.backward"),
    "fit_line": ("train", "fit"),
    "train_classifier": ("layers", "Linear.backward", "ReLU.backward"),
    "momentum_step": ("optim", "SGD.step"),
    "he_init": ("init", "he_normal"),
    "deep_tanh_backward": ("layers", "Linear.backward", "Tanh.backward"),
    "batchnorm_backward": ("layers", "BatchNorm1d.backward"),
    "residual_backward": ("layers", "Linear.backward", "Tanh.backward", "Residual.backward"),
    "rnn_backward": ("rnn", "RNN.backward"),
    "clip_grad_norm": ("optim", "clip_grad_norm", "grad_norm"),
    "conv1d_weight_grad": ("conv", "Conv1d.backward"),
}
WITHHELD = "{} is not available while grading: write your own"
CHECK_STUB = '''"""The grading kernel's bpcourse.check: the grader checks every task itself."""


def check(name, fn):
    """Does nothing while grading."""


def passed(name):
    return False


def progress(notebook=None):
    """Does nothing while grading."""
'''


# CPython 3.11 builds ASTs unsafely in two threads at once ("AST constructor recursion depth
# mismatch"): withhold's ast.parse, jupytext's and numpy's ast.literal_eval take turns.
_AST = threading.Lock()


def withhold(source, names):
    """``source`` of a module with the code of ``names`` ("f", "Class.method", "TABLE['key']")
    taken out: each raises NotImplementedError instead, and no line of it is left to read."""
    with _AST:
        return _withhold(source, names)


def _withhold(source, names):
    tree, found = ast.parse(source), set()

    def raising(name):
        return ast.parse(f"raise NotImplementedError({WITHHELD.format(name)!r})").body

    for node in list(tree.body):
        items = node.body if isinstance(node, ast.ClassDef) else [node]
        for item in items:
            name = f"{node.name}.{getattr(item, 'name', '')}" if item is not node else \
                getattr(item, "name", None)
            if isinstance(item, ast.FunctionDef) and name in names:
                item.body, found = raising(name), found | {name}
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            table = node.targets[0].id
            for i, key in enumerate(node.value.keys):
                name = f"{table}[{ast.unparse(key)}]"
                if name in names:
                    lambda_ = ast.parse(f"lambda *args: {table}_withheld({name!r})").body[0].value
                    node.value.values[i], found = lambda_, found | {name}
                    helper = ast.parse(f"def {table}_withheld(name):\n    raise "
                                       f"NotImplementedError({WITHHELD!r}.format(name))").body
                    where = tree.body.index(node)
                    tree.body[where:where] = [] if found & {"helper"} else helper
                    found |= {"helper"}
    if set(names) - found:
        raise ValueError(f"withhold: {sorted(set(names) - found)} not found")
    return ast.unparse(tree)


def _bplib():
    import bplib

    return Path(bplib.__file__).resolve().parent


def library_sources(tasks):
    """{module: source} of the bplib modules without the implementations of ``tasks``
    (``LIBRARY_ANSWERS``)."""
    withheld = {}
    for task in tasks:
        module, *names = LIBRARY_ANSWERS.get(task, ("",))
        withheld.setdefault(module, set()).update(names)
    return {module: withhold((_bplib() / f"{module}.py").read_text(), names)
            for module, names in withheld.items() if names}


def library_copy(folder, sources):
    """bplib and bpcourse for a grading kernel, in ``folder``: bplib with the modules
    ``sources`` (``library_sources``) in place of its own, bpcourse with a ``check`` module that
    does nothing. Returns [(copy, real folder)] of both packages."""
    real = _bplib()
    shutil.copytree(real, folder / "bplib", ignore=shutil.ignore_patterns("__pycache__"))
    for module, source in sources.items():
        (folder / "bplib" / f"{module}.py").write_text(source)
    (folder / "bpcourse").mkdir()
    (folder / "bpcourse" / "__init__.py").write_text("")
    (folder / "bpcourse" / "check.py").write_text(CHECK_STUB)
    return [(folder / "bplib", real), (folder / "bpcourse", Path(__file__).resolve().parent)]


def strip_solutions(source, where="cell"):
    """Replace each solution block by ``raise NotImplementedError("fill in f")``, f the
    enclosing function; ``where`` names the cell in errors."""
    out, inside = [], False
    for number, line in enumerate(source.splitlines(), 1):
        if BEGIN in line or END in line:
            if (BEGIN in line) == inside:
                raise ValueError(f"{where}, line {number}: {line.strip()!r} out of order")
            inside = not inside
            if inside:
                indent = line[: len(line) - len(line.lstrip())]
                name = _enclosing(out, indent)
                out.append(f'{indent}raise NotImplementedError("fill in {name}")')
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out)


def _enclosing(lines, indent):
    """Name of the innermost ``def`` above, at a smaller indentation than ``indent``."""
    for line in reversed(lines):
        found = re.match(r"(\s*)(?:async\s+)?def\s+(\w+)", line)
        if found and len(found.group(1)) < len(indent):
            return found.group(2)
    return "the solution"


def notebook_files(paths, suffixes=(".md", ".ipynb")):
    """Notebooks in ``paths`` (folders searched recursively); of ``x.md`` and ``x.ipynb`` side by
    side, the one saved last."""
    found = {}
    for path in map(Path, paths):
        files = path.rglob("*") if path.is_dir() else [path]
        files = [f for f in files if f.suffix in suffixes and ".ipynb_checkpoints" not in f.parts]
        for f in sorted(files, key=lambda f: f.stat().st_mtime):
            found[f.with_suffix("")] = f
    return sorted(found.values())


def submissions(paths, suffixes=(".md", ".ipynb")):
    """{name: path} of the notebooks in ``paths`` (folders searched recursively), a name being
    the path below the folder that holds them all ("alice/hw1/02_loss.md"), so two learners'
    files never share one. Symbolic links below ``paths`` are listed, never followed: the
    grader refuses them. Of ``x.md`` and ``x.ipynb`` side by side, the one saved last."""
    paths = [Path(os.path.abspath(p)) for p in paths]
    root = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in paths]))
    found = {}
    for path in paths:
        if not path.is_dir():
            found[path.with_suffix("")] = path
            continue
        for folder, dirs, files in os.walk(path):  # does not enter linked folders
            if ".ipynb_checkpoints" in Path(folder).parts:
                continue
            links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            files = [Path(folder, f) for f in files + links]
            files = [f for f in files if f.suffix in suffixes or f.name in links]

            def saved(f):
                return f.lstat().st_mtime
            for f in sorted(files, key=saved):
                found[f.with_suffix("") if f.suffix in suffixes else f] = f
    return {f.relative_to(root).as_posix(): f for f in sorted(found.values())}


NOTEBOOK_CAP = 16 << 20  # bytes: a larger notebook is refused


def read_notebook(path):
    """The notebook at ``path``, read once without following a symbolic link: (text, nb)."""
    with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("not a regular file")
        data = f.read(NOTEBOOK_CAP + 1)
    if len(data) > NOTEBOOK_CAP:
        raise ValueError(f"over {NOTEBOOK_CAP >> 20} MB")
    text = data.decode("utf-8")
    with _AST:
        return text, jupytext.reads(text, fmt=path.suffix[1:])


def tagged(cell, tag):
    return tag in cell.metadata.get("tags", [])


def task_names(nb):
    """Task names of the ``check("task", f)`` calls in the cells tagged ``check``."""
    return [name for cell in nb.cells if cell.cell_type == "code" and tagged(cell, "check")
            for name in CHECK_CALL.findall(cell.source)]


def heading(nb):
    lines = [line for cell in nb.cells if cell.cell_type == "markdown"
             for line in cell.source.splitlines() if line.startswith("# ")]
    return lines[0][2:].strip() if lines else None


def masters_in(folder):
    """The master notebooks in ``folder``: MyST files with a kernel (not plain pages)."""
    for path in notebook_files([folder], (".md",)) if Path(folder).is_dir() else []:
        nb = jupytext.read(path)
        if "kernelspec" in nb.metadata:
            yield path, nb


def unfold(cell):
    """A master's solution cell is folded away in the book ("Show the reference solution");
    the learner's copy of it is the cell to fill in, so it is shown, with no such prompt."""
    tags = cell.metadata.get("tags", [])
    if "hide-input" in tags:
        cell.metadata["tags"] = [t for t in tags if t != "hide-input"]
    mystnb = cell.metadata.get("mystnb", {})
    for key in ("code_prompt_show", "code_prompt_hide"):
        mystnb.pop(key, None)
    if "mystnb" in cell.metadata and not mystnb:
        del cell.metadata["mystnb"]


def release(masters, out, ipynb=False):
    """Write the student version of every master notebook in ``masters`` to ``out``."""
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in masters_in(masters):
        for number, cell in enumerate(nb.cells, 1):
            if cell.cell_type == "code":
                stub = strip_solutions(cell.source, f"{path.name}, cell {number}")
                if stub != cell.source:
                    unfold(cell)
                cell.source = stub
        written.append(Path(out) / path.name)
        jupytext.write(nb, written[-1], fmt="md:myst")
        if ipynb:
            written.append(written[-1].with_suffix(".ipynb"))
            jupytext.write(nb, written[-1])
    return written


def call(kernel, function, args, timeout, via=None):
    """Call the learner's ``function(*args)`` in the kernel, or ``via(function, *args)`` (a
    task's ``call``, its source run there first), exchanging ``.npy`` files through a folder made
    for the call: (state, message, result). The folder is used through a file descriptor, so
    links the kernel plants lead the grader nowhere."""
    folder, fd = kernel.folder / "grader-io", None
    try:
        folder.mkdir()
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        for i, arg in enumerate(args):
            new = os.open(f"arg{i}.npy", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
            with open(new, "wb") as f:
                np.save(f, np.asarray(arg), allow_pickle=False)
        how = f"{inspect.getsource(via)}\n" if via else ""
        state, message = kernel.run(f"{CALL}{how}_bplib_grade_call({function!r}, "
                                    f"{str(folder)!r}{', ' + via.__name__ if via else ''})",
                                    timeout, record=False)  # what a call prints is not kept
        return state, message, (load_result(fd) if state == "ok" else None)
    except Exception as err:  # whatever the kernel left: the task fails, the grader goes on
        return "error", f"{function}: unusable result ({type(err).__name__}: {err})", None
    finally:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)  # the hidden cases leave nothing behind


def load_result(fd):
    """What the kernel saved in the folder ``fd``: ``out.npy``, else ``out0.npy``, ``out1.npy``,
    ... (a tuple), all together at most ``RESULT_CAP`` bytes counted as float64."""
    budget = [RESULT_CAP]
    if _exists(fd, "out.npy"):
        return read_npy(fd, "out.npy", budget)
    values = []
    while _exists(fd, f"out{len(values)}.npy"):
        if len(values) == MAX_VALUES:
            raise ValueError(f"more than {MAX_VALUES} values returned")
        values.append(read_npy(fd, f"out{len(values)}.npy", budget))
    return tuple(values)


def _exists(fd, name):
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def read_npy(fd, name, budget):
    """The array in the file ``name`` of the folder ``fd``, a number if 0-d. Refused (ValueError)
    unless it is a regular file with one link holding a .npy of a numeric dtype whose data, as
    float64, fits in ``budget[0]`` bytes (then reduced by it): the header is checked before
    anything is allocated, and the data must fill the file exactly."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO must not block the grader
    with open(os.open(name, flags, dir_fd=fd), "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise ValueError(f"{name} is not a regular file with a single link")
        version = npformat.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{name}: .npy format version {version}; expected 1.0 or 2.0")
        read_header = (npformat.read_array_header_1_0 if version == (1, 0)
                       else npformat.read_array_header_2_0)
        with _AST:  # numpy reads the header with ast.literal_eval
            shape, fortran, dtype = read_header(f, max_header_size=1024)
        if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"{name} has dtype {dtype}; expected a numeric dtype")
        count = math.prod(shape)
        if count * max(dtype.itemsize, 8) > budget[0]:
            raise ValueError(f"{name} has shape {shape}: over the cap of {RESULT_CAP >> 20} MB")
        if info.st_size != f.tell() + count * dtype.itemsize:
            raise ValueError(f"{name} holds {info.st_size} bytes; its header says "
                             f"{f.tell() + count * dtype.itemsize}")
        budget[0] -= count * max(dtype.itemsize, 8)
        array = np.empty(count, dtype)
        if f.readinto(array) != array.nbytes:
            raise ValueError(f"{name} changed while it was read")
    array = array.reshape(shape, order="F" if fortran else "C")
    return array.item() if array.ndim == 0 else array


def comparable(expected, got):
    """Why ``got`` cannot be given to a task's comparison, or None: a value that would
    broadcast against its expected (or the transpose) past ``RESULT_CAP`` bytes of float64."""
    pairs = zip(expected, got) if isinstance(expected, tuple) and isinstance(got, tuple) else \
        [(expected, got)]
    for want, have in pairs:
        for shape in (np.shape(want), np.shape(want)[::-1]):
            try:
                size = math.prod(np.broadcast_shapes(shape, np.shape(have)))
            except ValueError:  # not broadcastable: nothing is expanded
                continue
            if size * 8 > RESULT_CAP:
                return f"shape {np.shape(have)}; expected {np.shape(want)}"
    return None


def status_of(state, message):
    """The notebook status a kernel state stands for."""
    if message and message.startswith("MemoryError"):
        return "memory"
    statuses = {"ok": "ok", "error": "error", "flood": "error", "dead": "kernel died"}
    return statuses.get(state, "timeout")


def outcome(task, passed, message, cause=None):
    return {"points": task.points if passed else 0, "max": task.points, "passed": passed,
            "message": message[:MESSAGE_CAP], "cause": cause}


def grade_task(kernel, task, cases, timeout, hidden=False):
    """Run a task's cases up to the first failure: (result, the kernel's state after the last
    call). A failed hidden case is told by its number alone: no value, no message of the
    kernel's."""
    for number, args in enumerate(cases, 1):
        if not timeout():
            return outcome(task, False, STOPS["late"]), "late"
        via = getattr(task, "call", None)  # optional: how the function is called
        state, message, got = call(kernel, task.function, args, timeout(), via)
        passed, cause = False, None
        expected = task.expected(*args)
        refused = comparable(expected, got) if state == "ok" else None
        if refused:
            state, message = "error", f"{task.function}: unusable result ({refused})"
        if state == "ok":
            try:
                result = task.compare(args, expected, got)
                passed, message, cause = bool(result.passed), str(result.message), result.cause
            except Exception as err:  # e.g. a result the comparison cannot handle
                message = f"could not compare the result: {err}"
        if not passed and hidden:
            why = "" if state in ("ok", "error") else f": {message}"  # the grader's own words
            return outcome(task, False, f"failed hidden case {number}{why}"), state
        if not passed:
            return outcome(task, False, message, cause), state
    return outcome(task, True, f"passed {len(cases)} cases"), "ok"


class Grader:
    """Grades submissions against the tasks of their master notebooks.

    - tasks: the registry, {name: Task} (``bpcourse.check.TASKS``).
    - masters: the folder of master notebooks.
    - seed: the secret the inputs are drawn from (default: new for each run); reports record only
      its hash.
    - hidden: {task name: [args, ...]}, instructor-only cases run after the random ones.
    """

    def __init__(self, tasks, masters=EXERCISES, limits=None, seed=None, hidden=None):
        self.tasks, self.limits, self.hidden = tasks, limits or Limits(), hidden or {}
        self.seed = secrets.token_hex(16) if seed is None else str(seed)
        self.masters = {path.stem: (heading(nb), task_names(nb))
                        for path, nb in masters_in(masters)}
        unknown = {n for _, names in self.masters.values() for n in names if n not in tasks}
        if unknown:
            raise SystemExit(f"{masters}: check() calls name unknown tasks: {sorted(unknown)}")
        self.sources = {}
        for _, names in self.masters.values():
            self.library_sources(names)

    def library_sources(self, names):
        """``library_sources`` of the tasks ``names``, made once (for each master's, when the
        grader is made: in one thread, see ``_AST``)."""
        key = frozenset(name for name in names if name in LIBRARY_ANSWERS)
        if key not in self.sources:
            self.sources[key] = library_sources(key)
        return self.sources[key]

    def tasks_for(self, path, nb):
        """The master's name and its tasks; a notebook without master brings its own checks."""
        names = sorted((stem for stem in self.masters if stem in path.stem), key=len)
        names = names or [stem for stem, (title, _) in self.masters.items() if title == heading(nb)]
        if names:
            return names[-1], self.masters[names[-1]][1]
        return None, [name for name in task_names(nb) if name in self.tasks]

    def cases(self, submission, name, hidden=False):
        """A task's random cases for a submission, or its hidden ones."""
        if hidden:
            return [tuple(args) for args in self.hidden.get(name, [])]
        digest = hashlib.sha256(f"{self.seed}/{submission}/{name}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "big"))
        return list(self.tasks[name].draw(rng, RANDOM_CASES))

    def run_cells(self, kernel, nb, event, timeout, record=True):
        """Run the code cells but those tagged ``check``: why grading must stop, or None."""
        if not kernel.wait_ready(max(timeout(), 10)):
            errors = " ".join(kernel.errors().split())[-200:]
            event("kernel died", f"kernel died: it did not start: {errors}")
            return "kernel died: it did not start"
        for number, cell in enumerate(nb.cells, 1):
            if cell.cell_type != "code" or tagged(cell, "check"):
                continue
            left = timeout()
            state, message = kernel.run(cell.source, left, record) if left else \
                ("late", STOPS["late"])
            if state != "ok" and not (state == "error" and tagged(cell, "raises-exception")):
                event(status_of(state, message), f"cell {number}: {message}")
            if state in STOPS:
                return STOPS[state]
        return None

    def start(self, path, text, nb, lib, event, timeout, first=True):
        """With ``lib``, (folder, packages) made by ``library_copy``: a kernel (None if it could
        not be made) that ran the notebook's cells, and why
        grading must stop, or None. Only the first kernel's output and events are kept: a
        restarted kernel may have seen hidden cases."""
        try:
            kernel = Kernel(self.limits.budget(), *lib)
        except OSError as err:  # e.g. no such interpreter
            event("kernel died", f"kernel died: it did not start: {err}")
            return None, "kernel died: it did not start"
        (kernel.folder / path.name).write_text(text)
        quiet = lambda status, text: None
        return kernel, self.run_cells(kernel, nb, event if first else quiet, timeout, first)

    @property
    def seed_hash(self):
        return hashlib.sha256(self.seed.encode()).hexdigest()[:16]

    def empty_report(self, path, submission):
        return {"submission": submission, "file": str(path), "master": None, "status": "ok",
                "total": 0, "max": 0, "elapsed": 0.0, "tasks": {}, "events": [], "output": "",
                "seed_sha256": self.seed_hash}

    def grade_one(self, path, submission):
        """Run one notebook in a fresh kernel and grade its tasks, the random cases of all of
        them first, then the hidden ones; a kernel that dies in a task is replaced by a new one
        that runs the cells again (as often as there are tasks, within the notebook's time
        limit). The report, a dict."""
        start, report = time.monotonic(), self.empty_report(path, submission)

        def event(status, text):
            report["events"].append(text[:MESSAGE_CAP])
            report["status"] = max(report["status"], status, key=STATUSES.index)

        def timeout():
            return max(min(self.limits.cell, start + self.limits.notebook - time.monotonic()), 0)

        if path.is_symlink():
            event("error", "a symbolic link: refused, not followed")
            return report
        try:
            text, nb = read_notebook(path)
            report["master"], names = self.tasks_for(path, nb)
        except Exception as err:  # not a notebook jupytext can read
            event("error", f"cannot read the notebook: {err}")
            return report
        if report["master"] is None:
            event("error", "no master notebook matches its name or heading: graded on its checks")
        results, folder = report["tasks"], Path(tempfile.mkdtemp(prefix="bplib-lib-"))
        first = kernel = None
        try:
            lib = (folder, library_copy(folder, self.library_sources(names)))
            kernel, stop = self.start(path, text, nb, lib, event, timeout)
            first = kernel
            for hidden in (False, True):
                for name in names:
                    task, cases = self.tasks[name], self.cases(submission, name, hidden)
                    if hidden and not (cases and results[name]["passed"]):
                        continue
                    if kernel is None and stop is None:  # the last task killed it: restart
                        kernel, stop = self.start(path, text, nb, lib, event, timeout, False)
                    if stop:
                        results[name] = outcome(task, False, stop)
                        continue
                    result, state = grade_task(kernel, task, cases, timeout, hidden)
                    status = status_of(state, result["message"])
                    if status not in ("ok", "error") or state == "flood":
                        event(status, f"{name}: {result['message']}")
                    if hidden and result["passed"]:
                        result["message"] = f"{results[name]['message']} and {len(cases)} hidden"
                    results[name] = result
                    if state == "late":
                        stop = STOPS["late"]
                    elif state in STOPS:
                        kernel.close()
                        kernel = None
        finally:
            if kernel is not None:
                kernel.close()
            shutil.rmtree(folder, ignore_errors=True)
        if first is not None:
            dropped = f"\n[... {first.dropped} more characters]" if first.dropped else ""
            report["output"] = first.output + dropped
        report["total"] = sum(t["points"] for t in report["tasks"].values())
        report["max"] = sum(t["max"] for t in report["tasks"].values())
        report["elapsed"] = round(time.monotonic() - start, 2)
        return report

    def grade_safely(self, path, submission):
        """``grade_one``, and a report of the failure should the grader itself fail."""
        try:
            return self.grade_one(path, submission)
        except Exception as err:
            text = f"grader error: {type(err).__name__}: {err}"[:MESSAGE_CAP]
            return {**self.empty_report(path, submission), "status": "error", "events": [text]}

    def grade(self, paths, workers=1, skip=()):
        """Grade every notebook in ``paths`` (files or folders; see ``submissions`` for their
        names) but those named in ``skip``, ``workers`` kernels at a time; yields each report as
        its submission ends."""
        todo = {name: path for name, path in submissions(paths).items() if name not in skip}
        pool = ThreadPoolExecutor(max(workers, 1))
        try:
            futures = [pool.submit(self.grade_safely, path, name) for name, path in todo.items()]
            for future in as_completed(futures):
                yield future.result()
        finally:  # on Ctrl-C, the notebooks not started yet are not started
            pool.shutdown(cancel_futures=True)


def report_path(out, submission):
    return out / "reports" / f"{submission}.json"


def save_report(report, out):
    """Write one submission's JSON report in ``out/reports``, atomically and never over an
    existing one (FileExistsError). Where its name cannot be a path there (too long, or a
    folder "x.md.json" beside "x.md"), the report is named by the name's hash."""
    path, text = report_path(out, report["submission"]), json.dumps(report, indent=1) + "\n"
    try:
        _write_new(path, text)
    except OSError as err:
        if isinstance(err, FileExistsError) and path.is_file():
            raise
        digest = hashlib.sha256(report["submission"].encode()).hexdigest()[:32]
        _write_new(out / "reports" / f"{digest}.json", text)


def _write_new(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".report-")
    try:
        with open(fd, "w") as f:
            f.write(text)
        os.link(temporary, path)  # fails if the report exists
    finally:
        os.unlink(temporary)


def saved_reports(out):
    """{submission: report} of the reports in ``out/reports``."""
    reports = [json.loads(path.read_text()) for path in sorted(out.glob("reports/**/*.json"))]
    return {report["submission"]: report for report in reports}


def cell(value):
    """A CSV cell no spreadsheet reads as a formula."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") \
        else value


def _write_csv(path, rows):
    """Write ``rows`` to ``path`` at once (a reader never sees half a table)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".grades-")
    with open(fd, "w", newline="") as f:
        csv.writer(f).writerows([map(cell, row) for row in rows])
    os.replace(temporary, path)


def learner(submission):
    """Who handed ``submission`` in: the first component of its name ("alice" for
    "alice/hw1/02_loss.md"; a notebook at the top of the submissions is a learner alone)."""
    return submission.split("/")[0]


def write_table(reports, out):
    """``out/grades.csv``, a row per submission: a column per task, total, max, status; and
    ``out/learners.csv``, a row per learner (``learner``): the points of each task (the best of
    their submissions), total, the max of all the tasks, status (the worst of theirs)."""
    reports = sorted(reports, key=lambda r: r["submission"])
    tasks = {name: t["max"] for report in reports for name, t in report["tasks"].items()}
    rows = [["submission", *tasks, "total", "max", "status"]]
    for r in reports:
        points = [r["tasks"][name]["points"] if name in r["tasks"] else "" for name in tasks]
        rows.append([r["submission"], *points, r["total"], r["max"], r["status"]])
    _write_csv(out / "grades.csv", rows)
    rows = [["learner", *tasks, "total", "max", "status"]]
    for who in dict.fromkeys(learner(r["submission"]) for r in reports):
        theirs = [r for r in reports if learner(r["submission"]) == who]
        best = {name: max(r["tasks"][name]["points"] for r in theirs if name in r["tasks"])
                for name in tasks if any(name in r["tasks"] for r in theirs)}
        status = max((r["status"] for r in theirs), key=STATUSES.index)
        rows.append([who, *(best.get(name, "") for name in tasks), sum(best.values()),
                     sum(tasks.values()), status])
    _write_csv(out / "learners.csv", rows)


def write_reports(reports, out):
    """A JSON report per submission and one table, ``grades.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    for report in reports:
        save_report(report, out)
    write_table(reports, out)


def summary(report, details=False):
    lines = [f"{report['submission']}: {report['total']}/{report['max']} points, "
             f"{report['status']} ({report['elapsed']:.1f} s)"]
    if details:
        lines += [f"  {'✅ passed' if t['passed'] else '❌ failed'} {name}: {t['message']}"
                  for name, t in report["tasks"].items()]
        lines += [f"  ! {text}" for text in report["events"]]
    return "\n".join(lines)


SEED_VARIABLE = "BPLIB_GRADE_SEED"  # read, then removed from the environment


def hide_secrets():
    """Take the grader's arguments and ``SEED_VARIABLE`` out of what /proc shows of it
    (``cmdline``, ``environ``: readable by every process of the machine) and make it
    non-dumpable, so that no process of another user, or of its own without the right to trace
    it (a root kernel has it), reads its memory, environment or open files."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        arg_start, arg_end, env_start, env_end = (int(n) for n in fields[45:49])
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(arg_start)
            program = mem.read(arg_end - arg_start).split(b"\0")[0]
            mem.seek(arg_start + len(program) + 1)
            mem.write(bytes(arg_end - arg_start - len(program) - 1))
            mem.seek(env_start)
            env = mem.read(env_end - env_start)
            found = env.find(f"{SEED_VARIABLE}=".encode())
            if found >= 0:
                mem.seek(env_start + found)
                mem.write(bytes(env.index(b"\0", found) - found))
    except (OSError, ValueError, IndexError):  # no /proc: nothing there to hide
        pass
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def read_seed(args):
    """The seed: from --seed-file, else the environment variable, else --seed (visible to
    every process while the grader starts), else None (a new one)."""
    from_env = os.environ.pop(SEED_VARIABLE, None)
    if args.seed_file:
        return args.seed_file.read_text().strip()
    return from_env if from_env is not None else args.seed


def parser(release=False):
    """The command line: ``release``, or grading (the default)."""
    if release:
        p = argparse.ArgumentParser("python -m bpcourse.grade release",
                                    description="Write the student version of every master "
                                                "notebook: each solution block becomes a stub.")
        p.add_argument("masters", type=Path, help="the folder of master notebooks")
        p.add_argument("--out", type=Path, required=True,
                       help="the folder for the student versions")
        p.add_argument("--ipynb", action="store_true",
                       help="write an .ipynb copy beside each .md one")
        return p
    p = argparse.ArgumentParser("python -m bpcourse.grade", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("paths", nargs="+", type=Path,
        help="submissions: notebooks, or folders searched recursively (to release the student "
             "versions instead: release MASTERS --out FOLDER, see release --help)")
    add("--out", type=Path, help="folder for the reports, grades.csv and learners.csv")
    add("--self", action="store_true", dest="self_check",
        help="check your own notebooks: print which tasks pass, write nothing")
    add("--masters", type=Path, default=EXERCISES,
        help="the folder of master notebooks (default: the course's exercises)")
    add("--seed-file", type=Path,
        help=f"a file holding the secret the inputs are drawn from (or set {SEED_VARIABLE}); "
             "default: a new one for this run")
    add("--seed", help="the secret on the command line, where every process sees it: "
                       "prefer --seed-file")
    add("--cases", type=Path, help="a Python file defining the hidden CASES = {task: [args]}")
    add("--workers", type=int, default=os.cpu_count(),
        help="submissions graded at a time (default: one per core)")
    add("--timeout-cell", type=float, default=Limits.cell,
        help="seconds per cell and per call of a learner's function (default %(default)s)")
    add("--timeout-notebook", type=float, default=Limits.notebook,
        help="seconds per notebook, restarts included (default %(default)s)")
    add("--memory-mb", type=int, default=Limits.memory_mb,
        help="MB of address space per process, and of memory for all of a kernel's processes "
             "together (default %(default)s)")
    add("--procs", type=int, default=Limits.procs,
        help="processes a kernel may have, itself included (default %(default)s)")
    add("--disk-mb", type=int, default=Limits.disk_mb,
        help="MB a kernel's files may take (default %(default)s)")
    add("--sandbox", action="store_true",
        help="run the kernels under bubblewrap: no network, no files but their own")
    add("--resume", action="store_true",
        help="grade only the submissions without a report in --out (with the same seed)")
    return p


def main(argv=None, tasks=None):
    """The command line (see the module's docstring); ``tasks`` replaces bpcourse.check.TASKS."""
    hide_secrets()  # out of sight before any kernel starts
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["release"]:
        args = parser(release=True).parse_args(argv[1:])
        print(*release(args.masters, args.out, args.ipynb), sep="\n")
        return 0
    command = parser()
    args = command.parse_args(argv)
    if args.out is None and not args.self_check:
        command.error("--out is required (or --self, to only print the results)")
    if args.sandbox:
        sandbox_command(".")  # exits now if bubblewrap is missing
    if tasks is None:
        from bpcourse.check import TASKS as tasks
    hidden = runpy.run_path(str(args.cases))["CASES"] if args.cases else None
    limits = Limits(args.timeout_cell, args.timeout_notebook, args.memory_mb, args.sandbox,
                    args.procs, args.disk_mb)
    reports = saved_reports(args.out) if args.out else {}
    if reports and not args.resume:
        command.error(f"{args.out} holds the reports of an earlier run: add --resume to grade "
                      "only the submissions without a report, or choose another --out")
    grader = Grader(tasks, args.masters, limits, read_seed(args), hidden)
    if {r["seed_sha256"] for r in reports.values()} - {grader.seed_hash}:
        command.error(f"{args.out} holds reports made with another seed: --resume needs the "
                      "seed of the run it resumes (--seed-file)")
    for report in grader.grade(args.paths, args.workers, skip=reports):
        print(summary(report, details=args.self_check), flush=True)
        if args.out:  # as each submission ends: a batch stopped midway keeps what it did
            save_report(report, args.out)
            reports[report["submission"]] = report
            write_table(reports.values(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
