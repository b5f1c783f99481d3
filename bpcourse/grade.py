r"""Release student versions of the exercise notebooks, and grade what learners hand in.

    python -m bpcourse.grade release exercises/ --out student/ [--ipynb]
    python -m bpcourse.grade SUBMISSIONS... --out grades/ [--seed SECRET] [--cases hidden.py]
        [--workers 2] [--timeout-cell 30] [--timeout-notebook 300] [--memory-mb 1024] [--sandbox]
        [--resume]
    python -m bpcourse.grade --self exercises/

**Release.** Every block between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers, so nbgrader takes the masters as they are) becomes ``raise NotImplementedError("fill in
f")`` at the block's indentation; everything else, hints included, stays.

**Grading.** Each submission runs in a kernel of its own: a fresh process in a temporary folder,
with a clean environment, a time limit per cell and per notebook and a memory limit, optionally
under bubblewrap. Cells tagged ``check`` are skipped: the tasks of a notebook are the
``check("task", f)`` calls of its master (matched by file name, else by first heading). For each
task the grader draws inputs from a secret seed (plus hidden cases from ``--cases``, a Python file
defining ``CASES = {"task": [args, ...]}``), saves them as ``.npy`` files, has the kernel call the
learner's function and ``np.save`` what it returns, reads that (``read_npy``, no pickles) and
compares it with the reference in its own process. Nothing from the kernel is unpickled or
believed, so patching numpy or ``check`` in the notebook changes nothing. A result is read only
from a regular file with a single link holding a ``.npy`` of a numeric dtype whose header, checked
before anything is allocated, declares at most ``RESULT_CAP`` bytes (64 MB, counted as float64)
for all the values of a call; a value that would broadcast past that against the reference is not
compared. Anything else scores the task 0 with the reason, and a failure of the grader itself
scores the submission 0 with the reason: the batch goes on. A message from the kernel over 32 MB
(``kernel.MESSAGE_BYTES_CAP``) is dropped unread with the connection, so that submission goes
mute and times out. Measured: a submission returning results at the cap costs the grader
4.2 x the cap (270 MB) at its peak, under the 5 x a test holds it to (per worker).

**Names and reports.** A submission is named by its path below the folder holding all the
submissions given (``alice/hw1/02_loss.md``); its report is ``OUT/reports/<name>.json``, written
as soon as it is graded, and ``OUT/grades.csv`` is rewritten then (cells a spreadsheet would read
as a formula start with ``'``). Symbolic links below the submissions are refused with a reason,
never followed. A run never writes over reports: if ``OUT`` holds some, it stops, unless
``--resume`` is given, which grades only the submissions without a report (after a grader was
stopped midway, say) and makes the table of all of them.
"""
import argparse
import csv
import hashlib
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
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import jupytext
import numpy as np
from numpy.lib import format as npformat

from .kernel import KILLED, MESSAGE_CAP, Kernel, sandbox_command

EXERCISES = Path(__file__).resolve().parents[1] / "exercises"
BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"  # found anywhere in a line, as nbgrader does
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")
STATUSES = ("ok", "error", "memory", "timeout", "kernel died")  # from best to worst
STOPS = {"dead": "kernel died", "killed": KILLED,
         "late": "timeout: notebook time limit"}  # why no further task can run
RANDOM_CASES = 3
RESULT_CAP = 64 << 20  # bytes of float64 a call may return in all: more is refused, unread
MAX_VALUES = 16  # values in a returned tuple

# Runs in the learner's kernel: load the arguments, call the function, save what it returns.
CALL = """def _bplib_grade_call(name, folder):
    import os
    import numpy as np
    if not callable(globals().get(name)):
        raise NameError(f"function {name} not defined")
    args = [np.load(os.path.join(folder, f"arg{i}.npy")) for i in range(len(os.listdir(folder)))]
    result = globals()[name](*[a.item() if a.ndim == 0 else a for a in args])
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
    memory_mb: int = 1024  # address space of the kernel, whose baseline is ~300 MB
    sandbox: bool = False  # run the kernel under bubblewrap


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


def call(kernel, function, args, timeout):
    """Call the learner's ``function(*args)`` in the kernel, exchanging ``.npy`` files through a
    folder made for the call: (state, message, result). The folder is used through a file
    descriptor, so links the kernel plants lead the grader nowhere."""
    folder, fd = kernel.folder / "grader-io", None
    try:
        folder.mkdir()
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        for i, arg in enumerate(args):
            new = os.open(f"arg{i}.npy", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
            with open(new, "wb") as f:
                np.save(f, np.asarray(arg), allow_pickle=False)
        state, message = kernel.run(f"{CALL}_bplib_grade_call({function!r}, {str(folder)!r})",
                                    timeout)
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
    return {"ok": "ok", "error": "error", "dead": "kernel died"}.get(state, "timeout")


def outcome(task, passed, message, cause=None):
    return {"points": task.points if passed else 0, "max": task.points, "passed": passed,
            "message": message[:MESSAGE_CAP], "cause": cause}


def grade_task(kernel, task, cases, timeout):
    """Run a task's cases, (args, hidden), up to the first failure: (result, the kernel's state
    after the last call)."""
    shown = sum(not hidden for _, hidden in cases)
    for number, (args, hidden) in enumerate(cases, 1):
        if not timeout():
            return outcome(task, False, STOPS["late"]), "late"
        state, message, got = call(kernel, task.function, args, timeout())
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
        if not passed and hidden and state in ("ok", "error"):  # pass/fail only, no values
            return outcome(task, False, f"failed hidden case {number - shown}"), state
        if not passed:
            return outcome(task, False, message, cause), state
    hidden = f" and {len(cases) - shown} hidden" if len(cases) > shown else ""
    return outcome(task, True, f"passed {shown} cases{hidden}"), "ok"


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

    def tasks_for(self, path, nb):
        """The master's name and its tasks; a notebook without master brings its own checks."""
        names = sorted((stem for stem in self.masters if stem in path.stem), key=len)
        names = names or [stem for stem, (title, _) in self.masters.items() if title == heading(nb)]
        if names:
            return names[-1], self.masters[names[-1]][1]
        return None, [name for name in task_names(nb) if name in self.tasks]

    def cases(self, submission, name):
        digest = hashlib.sha256(f"{self.seed}/{submission}/{name}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "big"))
        drawn = [(args, False) for args in self.tasks[name].draw(rng, RANDOM_CASES)]
        return drawn + [(tuple(args), True) for args in self.hidden.get(name, [])]

    def run_cells(self, kernel, nb, event, timeout):
        """Run the code cells but those tagged ``check``: why grading must stop, or None."""
        if not kernel.wait_ready(max(timeout(), 10)):
            event("kernel died", "kernel died: it did not start")
            return "kernel died: it did not start"
        for number, cell in enumerate(nb.cells, 1):
            if cell.cell_type != "code" or tagged(cell, "check"):
                continue
            left = timeout()
            state, message = kernel.run(cell.source, left) if left else ("late", STOPS["late"])
            if state != "ok" and not (state == "error" and tagged(cell, "raises-exception")):
                event(status_of(state, message), f"cell {number}: {message}")
            if state in STOPS:
                return STOPS[state]
        return None

    def empty_report(self, path, submission):
        return {"submission": submission, "file": str(path), "master": None, "status": "ok",
                "total": 0, "max": 0, "elapsed": 0.0, "tasks": {}, "events": [], "output": "",
                "seed_sha256": hashlib.sha256(self.seed.encode()).hexdigest()[:16]}

    def grade_one(self, path, submission):
        """Run one notebook in a fresh kernel and grade its tasks: the report, a dict."""
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
        kernel = Kernel(self.limits.memory_mb, self.limits.sandbox)
        try:
            (kernel.folder / path.name).write_text(text)
            stop = self.run_cells(kernel, nb, event, timeout)
            for name in names:
                task = self.tasks[name]
                if stop:
                    report["tasks"][name] = outcome(task, False, stop)
                    continue
                result, state = grade_task(kernel, task, self.cases(submission, name), timeout)
                status = status_of(state, result["message"])
                if status not in ("ok", "error"):  # a function that raises just fails its task
                    event(status, f"{name}: {result['message']}")
                report["tasks"][name], stop = result, STOPS.get(state)
        finally:
            kernel.close()
        dropped = f"\n[... {kernel.dropped} more characters]" if kernel.dropped else ""
        report["output"] = kernel.output + dropped
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


def write_table(reports, out):
    """``out/grades.csv``: a row per submission, a column per task, total, max, status."""
    reports = sorted(reports, key=lambda r: r["submission"])
    tasks = list(dict.fromkeys(name for report in reports for name in report["tasks"]))
    fd, temporary = tempfile.mkstemp(dir=out, prefix=".grades-")
    with open(fd, "w", newline="") as f:
        table = csv.writer(f)
        table.writerow(["submission", *tasks, "total", "max", "status"])
        for r in reports:
            points = [r["tasks"][name]["points"] if name in r["tasks"] else "" for name in tasks]
            table.writerow(map(cell, [r["submission"], *points, r["total"], r["max"], r["status"]]))
    os.replace(temporary, out / "grades.csv")


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
        lines += [f"  {'✅' if t['passed'] else '❌'} {name}: {t['message']}"
                  for name, t in report["tasks"].items()]
        lines += [f"  ! {text}" for text in report["events"]]
    return "\n".join(lines)


def main(argv=None, tasks=None):
    """The command line (see the module's docstring); ``tasks`` replaces bpcourse.check.TASKS."""
    parser = argparse.ArgumentParser("python -m bpcourse.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path,
                        help="submissions (notebooks or folders), or: release MASTERS")
    parser.add_argument("--out", type=Path, help="folder for the results")
    parser.add_argument("--ipynb", action="store_true", help="release .ipynb copies too")
    parser.add_argument("--self", action="store_true", dest="self_check",
                        help="check your own notebooks: show which tasks pass")
    parser.add_argument("--masters", type=Path, default=EXERCISES)
    parser.add_argument("--seed", help="the secret inputs are drawn from (default: random)")
    parser.add_argument("--cases", type=Path, help="Python file defining hidden CASES")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--timeout-cell", type=float, default=Limits.cell)
    parser.add_argument("--timeout-notebook", type=float, default=Limits.notebook)
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb)
    parser.add_argument("--sandbox", action="store_true", help="run kernels under bubblewrap")
    parser.add_argument("--resume", action="store_true",
                        help="grade only the submissions without a report in --out")
    args = parser.parse_args(argv)
    if args.out is None and not args.self_check:
        parser.error("--out is required (or --self, to only print the results)")
    if args.paths[0] == Path("release"):
        print(*release(args.paths[1], args.out, args.ipynb), sep="\n")
        return 0
    if args.sandbox:
        sandbox_command(".")  # exits now if bubblewrap is missing
    if tasks is None:
        from bpcourse.check import TASKS as tasks
    hidden = runpy.run_path(str(args.cases))["CASES"] if args.cases else None
    limits = Limits(args.timeout_cell, args.timeout_notebook, args.memory_mb, args.sandbox)
    reports = saved_reports(args.out) if args.out else {}
    if reports and not args.resume:
        parser.error(f"{args.out} holds the reports of an earlier run: add --resume to grade "
                     "only the submissions without a report, or choose another --out")
    grader = Grader(tasks, args.masters, limits, args.seed, hidden)
    for report in grader.grade(args.paths, args.workers, skip=reports):
        print(summary(report, details=args.self_check), flush=True)
        if args.out:  # as each submission ends: a batch stopped midway keeps what it did
            save_report(report, args.out)
            reports[report["submission"]] = report
            write_table(reports.values(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
