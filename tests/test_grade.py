"""The grader: student versions leak no solution, and every submission, however it misbehaves,
scores what it earned, with the reason, while the batch goes on.

tests/fixtures/grade holds a toy master (01_toy.md, tasks in tasks.py), hidden cases, and one
submission per misbehaviour; the instructor's flow runs on the real exercises/.
"""
import csv
import hashlib
import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import pytest

from bpcourse import grade, kernel
from bplib.measure import peak_memory

pytestmark = [pytest.mark.jupyter,
              pytest.mark.xdist_group("grade")]  # kernels: keep these on one worker

FIXTURES = Path(__file__).parent / "fixtures" / "grade"
TOY = runpy.run_path(str(FIXTURES / "tasks.py"))["TASKS"]
HIDDEN = runpy.run_path(str(FIXTURES / "hidden_cases.py"))["CASES"]
LIMITS = grade.Limits(cell=2, notebook=30, memory_mb=600)
FULL = {"toy_relu": 1, "toy_affine": 2, "toy_pair": 3}

# submission: (points per task, status, {task or "events": words in its message})
EXPECTED = {
    "correct": (FULL, "ok", {"toy_relu": "passed 3 cases and 2 hidden"}),
    "raises": ({**FULL, "toy_affine": 0}, "error",
               {"toy_affine": "ValueError: no affine today", "events": "boom at import"}),
    "hangs": ({**FULL, "toy_affine": 0}, "timeout",
              {"toy_affine": "timed out after 2 s (interrupted)", "events": "cell 4: timed out"}),
    "swallows_signal": ({"toy_relu": 1, "toy_affine": 0, "toy_pair": 3}, "timeout",
                        {"toy_affine": "ignored the interrupt, kernel killed",
                         "toy_pair": "passed 3 cases"}),  # in a new kernel
    "swallows_interrupt": ({"toy_relu": 0, "toy_affine": 0, "toy_pair": 0}, "timeout",
                           {"toy_relu": "ignored the interrupt", "events": "cell 6"}),
    # A dead kernel costs only the task that killed it: the rest are graded in a new one.
    "exits": ({"toy_relu": 1, "toy_affine": 0, "toy_pair": 3}, "kernel died",
              {"toy_affine": "kernel died (exit code 0)", "toy_pair": "passed 3 cases"}),
    "segfaults": ({"toy_relu": 0, "toy_affine": 2, "toy_pair": 3}, "kernel died",
                  {"toy_relu": "kernel died (exit code -11)", "events": "toy_relu: kernel died"}),
    "memory": ({**FULL, "toy_affine": 0}, "memory",
               {"toy_affine": "MemoryError", "events": "cell 4: MemoryError"}),
    "prints": (FULL, "ok", {}),
    "progress": (FULL, "ok", {}),
    "no_checks": (FULL, "ok", {}),
    "cheats": ({"toy_relu": 0, "toy_affine": 0, "toy_pair": 0}, "ok",
               {"toy_relu": "expected [0."}),
    "misnamed": ({**FULL, "toy_relu": 0}, "ok", {"toy_relu": "function relu not defined"}),
    "plants_links": ({"toy_relu": 0, "toy_affine": 0, "toy_pair": 0}, "ok",
                     {"toy_relu": "unusable result", "toy_affine": "is not a regular file",
                      "toy_pair": "FileExistsError"}),
    "hostile_results": ({"toy_relu": 0, "toy_affine": 0, "toy_pair": 0}, "ok",
                        {"toy_relu": "over the cap", "toy_affine": "single link",
                         "toy_pair": "expected a numeric dtype"}),
    "sneaky": ({**FULL, "toy_relu": 0, "toy_affine": 2}, "ok",
               {"toy_relu": "failed hidden case 1", "toy_affine": "and 1 hidden"}),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every fixture submission graded once, two at a time, with hidden cases; kernels' folders
    made under a temporary root of their own, to check what is left behind."""
    root = tmp_path_factory.mktemp("kernels")
    saved, tempfile.tempdir = tempfile.tempdir, str(root)
    try:
        grader = grade.Grader(TOY, FIXTURES / "masters", LIMITS, seed="s3cret", hidden=HIDDEN)
        reports = list(grader.grade([FIXTURES / "submissions"], workers=2))
    finally:
        tempfile.tempdir = saved
    out = tmp_path_factory.mktemp("grades")
    grade.write_reports(reports, out)
    return {Path(r["submission"]).stem: r for r in reports}, root, out


def test_every_fixture_is_graded(batch):
    reports, _, _ = batch
    assert sorted(reports) == sorted(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_each_misbehaviour_scores_what_it_earned_with_the_reason(batch, name):
    report = batch[0][name]
    points, status, words = EXPECTED[name]
    assert {task: r["points"] for task, r in report["tasks"].items()} == points, report
    assert (report["status"], report["total"], report["max"]) == (status, sum(points.values()), 6)
    assert report["master"] == "01_toy"  # found by the heading: the file names differ
    for task, word in words.items():
        if task == "events":
            assert word in " | ".join(report["events"]), report
        else:
            assert word in report["tasks"][task]["message"], report
    assert report["elapsed"] < 15


def test_megabytes_of_output_are_cut_and_still_graded(batch):
    report = batch[0]["prints"]
    assert len(report["output"]) < kernel.OUTPUT_CAP + 100
    assert re.search(r"\[\.\.\. \d{7} more characters\]$", report["output"])


def test_reports_carry_no_check_or_progress_text(batch):
    output = batch[0]["progress"]["output"]
    assert output == "the learner's own line\n", output


def test_hidden_cases_and_seed_stay_out_of_reports_and_kernel_folders(batch):
    reports, root, out = batch
    assert list(root.iterdir()) == []  # every kernel's folder, with the stolen inputs, is gone
    text = "".join(path.read_text() for path in out.glob("reports/*.json"))
    assert text.count("seed_sha256") == len(EXPECTED)
    assert "271.8" not in text and "s3cret" not in text
    assert reports["sneaky"]["tasks"]["toy_relu"]["cause"] is None
    assert reports["correct"]["seed_sha256"] == hashlib.sha256(b"s3cret").hexdigest()[:16]


def test_reports_and_table(batch):
    reports, _, out = batch
    with open(out / "grades.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["submission", "toy_relu", "toy_affine", "toy_pair", "total", "max", "status"]
    table = {Path(row[0]).stem: row[1:] for row in rows[1:]}
    assert table["exits"] == ["1", "0", "3", "4", "6", "kernel died"]
    assert table["correct"] == ["1", "2", "3", "6", "6", "ok"]
    saved = json.loads((out / "reports" / "hangs.md.json").read_text())
    assert saved["tasks"]["toy_affine"] == reports["hangs"]["tasks"]["toy_affine"]
    assert set(saved["tasks"]["toy_relu"]) == {"points", "max", "passed", "message", "cause"}


def solution_blocks(master_text):
    """The code between the markers, block by block, with its indentation."""
    return re.findall(r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION\n", master_text,
                      re.M | re.S)


def fill(student_text, blocks):
    """Put ``blocks`` in place of the stubs, in order."""
    blocks = iter(blocks)
    return re.sub(r'^[ \t]*raise NotImplementedError\("fill in \w+"\)\n',
                  lambda stub: next(blocks), student_text, flags=re.M)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert grade.main(["release", str(grade.EXERCISES), "--out", str(out), "--ipynb"]) == 0
    grade.release(FIXTURES / "masters", out)
    return out


def masters():
    return sorted(grade.EXERCISES.glob("*.md")) + [FIXTURES / "masters" / "01_toy.md"]


@pytest.mark.parametrize("master", masters(), ids=lambda p: p.stem)
def test_student_versions_keep_everything_but_the_solutions(released, master):
    text, student = master.read_text(), (released / master.name).read_text()
    blocks = solution_blocks(text)
    assert blocks, f"{master.name} has no solution block"
    outside = re.sub(r"### BEGIN SOLUTION\n.*?### END SOLUTION\n", "", text, flags=re.S)
    leaked = [line for block in blocks for line in block.splitlines()
              if line.strip() and line not in outside.splitlines() and line in student]
    assert not leaked and "SOLUTION" not in student
    stubs = re.findall(r'^([ \t]*)raise NotImplementedError\("fill in (\w+)"\)$', student, re.M)
    indents = [re.match(r"[ \t]*", block).group() for block in blocks]
    assert [indent for indent, _ in stubs] == indents
    assert all(f"def {name}(" in student for _, name in stubs)
    source, copy = jupytext.read(master), jupytext.read(released / master.name)
    # The same cells and tags, but the cells to fill in are no longer folded away.
    def shown(tags):
        return [t for t in tags or [] if t != "hide-input"] or None
    assert [(c.cell_type, shown(c.metadata.get("tags"))) for c in source.cells] == \
           [(c.cell_type, c.metadata.get("tags")) for c in copy.cells]
    for cell in copy.cells:
        if "NotImplementedError(\"fill in" in cell.source:
            assert "hide-input" not in cell.metadata.get("tags", []), cell.source
            assert "code_prompt_show" not in cell.metadata.get("mystnb", {}), cell.source
    assert "reference solution" not in student
    assert [c.source for c in source.cells if c.cell_type == "markdown"] == \
           [c.source for c in copy.cells if c.cell_type == "markdown"]  # statements, hints
    if master.parent == grade.EXERCISES:
        assert [c.source for c in jupytext.read(released / f"{master.stem}.ipynb").cells] == \
               [c.source for c in copy.cells]


def test_unbalanced_markers_are_refused():
    with pytest.raises(ValueError, match="without"):
        grade.strip_solutions("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(ValueError, match="out of order"):
        grade.strip_solutions("### END SOLUTION\n")
    assert grade.strip_solutions("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION") == \
           'x = 1\nraise NotImplementedError("fill in the solution")'


def test_instructor_flow_end_to_end(released, tmp_path):
    """Student versions filled with the reference solutions and with wrong ones, graded from
    the command line with two workers, a seed and hidden cases."""
    for kind in ("reference", "wrong"):
        (tmp_path / kind).mkdir()
        for master in grade.EXERCISES.glob("*.md"):
            student = (released / master.name).read_text()
            blocks = solution_blocks(master.read_text())
            if kind == "wrong":  # an answer of the wrong kind, then the right code
                blocks = [re.match(r"[ \t]*", block).group() + "return None\n" + block
                          for block in blocks]
            (tmp_path / kind / master.name).write_text(fill(student, blocks))
    (tmp_path / "cases.py").write_text(
        "import numpy as np\nCASES = {'softmax': [(np.array([[1000.0, 0.0], [0.0, -1000.0]]),)]}\n")
    out = tmp_path / "grades"
    command = [sys.executable, "-m", "bpcourse.grade", str(tmp_path / "reference"),
               str(tmp_path / "wrong"), "--out", str(out), "--workers", "2", "--seed", "x",
               "--cases", str(tmp_path / "cases.py"), "--timeout-cell", "20"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    troubles = {r["submission"]: r["events"] for r in grade.saved_reports(out).values()
                if r["status"] != "ok"}
    assert not troubles, troubles
    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    tasks = [name for master in sorted(grade.EXERCISES.glob("*.md"))
             for name in grade.task_names(jupytext.read(master))]
    assert list(rows[0]) == ["submission", *tasks, "total", "max", "status"]
    assert len(rows) == 2 * len(list(grade.EXERCISES.glob("*.md")))
    for row in rows:
        kind = row["submission"].split("/")[0]
        earned = int(row["total"])
        assert (earned == int(row["max"]) > 0) if kind == "reference" else earned == 0, row
        assert row["status"] == "ok", row
    report = json.loads((out / "reports" / "reference" / "02_loss.md.json").read_text())
    assert report["tasks"]["softmax"]["message"] == "passed 3 cases and 1 hidden"
    wrong = json.loads((out / "reports" / "wrong" / "02_loss.md.json").read_text())
    assert "returned NoneType" in wrong["tasks"]["softmax"]["message"]


def test_partly_done_notebook_scores_its_finished_task(released, tmp_path):
    """The toy master's first block filled in, the others left as released."""
    blocks = solution_blocks((FIXTURES / "masters" / "01_toy.md").read_text())
    student = (released / "01_toy.md").read_text()
    first = re.sub(r'^[ \t]*raise NotImplementedError\("fill in relu"\)\n', blocks[0], student,
                   flags=re.M)
    (tmp_path / "01_toy_alice.md").write_text(first)
    grader = grade.Grader(TOY, FIXTURES / "masters", LIMITS)
    (report,) = grader.grade([tmp_path / "01_toy_alice.md"])
    assert report["master"] == "01_toy" and report["total"] == 1, report
    assert report["tasks"]["toy_affine"]["message"] == "NotImplementedError: fill in affine"


def test_notebook_time_limit_stops_a_notebook_stuck_before_its_checks():
    """The exploration loop runs into the notebook limit (well under the cell limit): no task
    can be graded after it, whatever the machine's speed."""
    grader = grade.Grader(TOY, FIXTURES / "masters", grade.Limits(cell=30, notebook=2.5))
    (report,) = grader.grade([FIXTURES / "submissions" / "hangs.md"])
    assert (report["status"], report["total"]) == ("timeout", 0), report
    for task in FULL:
        assert report["tasks"][task]["message"] == "timeout: notebook time limit", report
    assert report["elapsed"] < 6


def test_tasks_graded_before_the_notebook_limit_keep_their_points(tmp_path):
    """Without the exploration loop, relu is graded (1 point); affine hangs until the notebook
    limit, and product_grads, not yet graded, fails for the notebook limit."""
    source = (FIXTURES / "submissions" / "hangs.md").read_text()
    loop = "```{code-cell} ipython3\nwhile True:  # an exploration left running\n    pass\n```\n"
    assert loop in source
    (tmp_path / "late.md").write_text(source.replace(loop, ""))
    grader = grade.Grader(TOY, FIXTURES / "masters", grade.Limits(cell=60, notebook=8))
    (report,) = grader.grade([tmp_path / "late.md"])
    points = {task: r["points"] for task, r in report["tasks"].items()}
    assert points == {"toy_relu": 1, "toy_affine": 0, "toy_pair": 0}, report
    assert report["status"] == "timeout", report
    assert "timed out" in report["tasks"]["toy_affine"]["message"], report
    assert report["tasks"]["toy_pair"]["message"] == "timeout: notebook time limit", report
    assert 8 <= report["elapsed"] < 12, report


ESCAPES = """\
# Toy exercises

```{{code-cell}} ipython3
import os, subprocess, sys, time
import numpy as np

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)", "{tag}"]
subprocess.Popen(SLEEP, start_new_session=True)  # a session of its own: out of the killpg
if os.fork() == 0:  # and a daemon, double-forked: not even a child of the kernel
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, SLEEP)
    os._exit(0)
time.sleep(0.5)


def relu(x):
    return np.maximum(x, 0)
```
"""


def test_processes_that_leave_the_kernels_session_are_killed_too(tmp_path):
    tag = f"escapee-{os.getpid()}-{time.monotonic_ns()}"
    (tmp_path / "escapes.md").write_text(ESCAPES.format(tag=tag))
    (report,) = grade.Grader(TOY, FIXTURES / "masters", LIMITS).grade([tmp_path / "escapes.md"])
    assert report["tasks"]["toy_relu"]["points"] == 1, report  # it ran, escapees and all
    assert surviving(tag.encode()) == []


def test_a_notebook_without_master_is_flagged(tmp_path):
    (tmp_path / "other.md").write_text("# Something else\n\n```{code-cell} ipython3\nx = 1\n```\n")
    (report,) = grade.Grader(TOY, FIXTURES / "masters", LIMITS).grade([tmp_path / "other.md"])
    assert (report["master"], report["tasks"], report["status"]) == (None, {}, "error")
    assert "no master notebook" in report["events"][0]


def test_self_check_prints_a_table_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = grade.main(["--self", str(FIXTURES / "submissions" / "misnamed.md"), "--masters",
                       str(FIXTURES / "masters"), "--timeout-cell", "5"], tasks=TOY)
    printed = capsys.readouterr().out
    assert code == 0 and list(tmp_path.iterdir()) == []
    assert "misnamed.md: 5/6 points, ok" in printed
    assert "❌ failed toy_relu: NameError: function relu not defined" in printed
    assert "✅ passed toy_pair: passed 3 cases" in printed


def test_sandbox_without_bubblewrap_refuses_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr(kernel.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="bubblewrap.*refusing to run unsandboxed"):
        grade.main([str(FIXTURES / "submissions"), "--out", str(tmp_path), "--sandbox"],
                   tasks=TOY)
    assert list(tmp_path.iterdir()) == []


PROBES = """\
# Toy exercises

```{{code-cell}} ipython3
import os, socket
import numpy as np


def escaped(probe):
    try:
        probe()
        return True
    except OSError:
        return False


def relu(x):  # right only if the instructor's file is out of sight
    return x if escaped(lambda: open({marker!r}).read()) else np.maximum(x, 0)


def affine(X, W, b):  # right only without a network
    return X if escaped(lambda: socket.create_connection(("127.0.0.1", {port}), 1)) else X @ W + b


def product_grads(x, y):  # right only if the masters are out of sight
    return (x, y) if os.path.exists({masters!r}) else (y, x)
```
"""


def test_sandbox_hides_files_and_network(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "marker.txt").write_text("the instructor's")
    with socket.create_server(("127.0.0.1", 0)) as server:
        probes = PROBES.format(marker=str(tmp_path / "marker.txt"),
                               port=server.getsockname()[1], masters=str(FIXTURES / "masters"))
        (tmp_path / "probes.md").write_text(probes)
        shutil.copy(FIXTURES / "submissions" / "swallows_signal.md", tmp_path)
        paths = [tmp_path / "probes.md", tmp_path / "swallows_signal.md"]
        graded = {}
        for sandbox in (False, True):  # unsandboxed, the probes do see everything
            limits = grade.Limits(cell=2, notebook=30, memory_mb=600, sandbox=sandbox)
            grader = grade.Grader(TOY, FIXTURES / "masters", limits)
            batch = grader.grade(paths if sandbox else paths[:1], workers=2)
            graded[sandbox] = {Path(r["submission"]).stem: r for r in batch}
    assert graded[False]["probes"]["total"] == 0
    assert graded[True]["probes"]["total"] == 6, graded[True]["probes"]
    swallowed = graded[True]["swallows_signal"]
    assert (swallowed["total"], swallowed["status"]) == (4, "timeout")  # pair: in a new kernel
    assert surviving(b"bplib-grade-") == []


def surviving(needle, wait=5.0):
    """Command lines of the processes whose command line holds ``needle``, after giving killed
    processes up to ``wait`` seconds to go."""
    end = time.monotonic() + wait
    while True:
        alive = [cmd for cmd in map(_cmdline, os.listdir("/proc")) if needle in cmd]
        if not alive or time.monotonic() > end:
            return alive
        time.sleep(0.1)


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


BIG = """\
# Big results

```{code-cell} ipython3
import numpy as np


def big(n):
    return np.zeros(n)


def too_big(n):
    return np.zeros(n + 1)


def many(n):
    return (np.zeros(n // 2), np.zeros(n // 2), np.zeros(1))
```

```{code-cell} ipython3
:tags: [check]

check("toy_big", big)
check("toy_too_big", too_big)
check("toy_many", many)
```
"""


def test_grader_memory_stays_bounded_at_the_result_cap(tmp_path):
    """Results of exactly the cap are read and compared; one element more, alone or spread over
    a tuple, is refused unread; the grader's own peak stays under 5 x the cap."""
    import numpy as np

    task = runpy.run_path(str(FIXTURES / "tasks.py"))["Task"]
    n = grade.RESULT_CAP // 8
    tasks = {"toy_big": task("toy_big", "big", lambda rng: (n,), np.zeros),
             "toy_too_big": task("toy_too_big", "too_big", lambda rng: (n,),
                                 lambda n: np.zeros(n + 1)),
             "toy_many": task("toy_many", "many", lambda rng: (n,),
                              lambda n: (np.zeros(n // 2), np.zeros(n // 2), np.zeros(1)))}
    (tmp_path / "big.md").write_text(BIG)
    (tmp_path / "masters").mkdir()
    grader = grade.Grader(tasks, tmp_path / "masters", grade.Limits(cell=20, notebook=60,
                                                                    memory_mb=1200))
    (report,), peak = peak_memory(lambda: list(grader.grade([tmp_path / "big.md"])))
    points = {name: r["points"] for name, r in report["tasks"].items()}
    assert points == {"toy_big": 1, "toy_too_big": 0, "toy_many": 0}, report
    assert "over the cap" in report["tasks"]["toy_too_big"]["message"], report
    assert "over the cap" in report["tasks"]["toy_many"]["message"], report
    assert peak < 5 * grade.RESULT_CAP, peak / grade.RESULT_CAP


def test_names_are_paths_links_are_refused_and_cells_are_no_formulas(tmp_path):
    """Two learners' files of one name are two submissions; links (to a full-marks notebook,
    to nowhere, to a folder) are refused, not followed; a name that is a formula is quoted; a
    second run into the same --out refuses to write over the first's reports."""
    root, out = tmp_path / "submissions", tmp_path / "grades"
    for learner, fixture in [("alice", "misnamed.md"), ("bob", "cheats.md")]:
        (root / learner / "hw1").mkdir(parents=True)
        shutil.copy(FIXTURES / "submissions" / fixture, root / learner / "hw1" / "toy.md")
    (root / "carol").mkdir()
    (root / "carol" / "toy.ipynb").symlink_to(FIXTURES / "submissions" / "correct.ipynb")
    (root / "dave.md").symlink_to(tmp_path / "nowhere.md")
    (root / "eve").symlink_to(FIXTURES / "submissions", target_is_directory=True)
    shutil.copy(FIXTURES / "submissions" / "misnamed.md", root / "=HYPERLINK(1).md")
    long = "x" * 250 + ".md"  # its report's name, long.json, is too long for a file name
    (root / "frank.md.json").mkdir()  # frank.md's report's name, as a folder
    for path in (root / long, root / "frank.md", root / "frank.md.json" / "toy.md"):
        shutil.copy(FIXTURES / "submissions" / "misnamed.md", path)
    command = [str(root), "--out", str(out), "--masters", str(FIXTURES / "masters"),
               "--workers", "2", "--timeout-cell", "5"]
    assert grade.main(command, tasks=TOY) == 0
    with open(out / "grades.csv") as f:
        table = {row["submission"]: row for row in csv.DictReader(f)}
    totals = {name: (row["total"], row["status"]) for name, row in table.items()}
    assert totals == {"'=HYPERLINK(1).md": ("5", "ok"), "alice/hw1/toy.md": ("5", "ok"),
                      "bob/hw1/toy.md": ("0", "ok"), "carol/toy.ipynb": ("0", "error"),
                      "dave.md": ("0", "error"), "eve": ("0", "error"), long: ("5", "ok"),
                      "frank.md": ("5", "ok"), "frank.md.json/toy.md": ("5", "ok")}
    assert len(list(out.glob("reports/**/*.json"))) == len(totals)
    with open(out / "learners.csv") as f:  # a learner: the first component of a name
        learners = {row["learner"]: (row["total"], row["max"], row["status"])
                    for row in csv.DictReader(f)}
    assert learners == {"'=HYPERLINK(1).md": ("5", "6", "ok"), "alice": ("5", "6", "ok"),
                        "bob": ("0", "6", "ok"), "carol": ("0", "6", "error"),
                        "dave.md": ("0", "6", "error"), "eve": ("0", "6", "error"),
                        long: ("5", "6", "ok"), "frank.md": ("5", "6", "ok"),
                        "frank.md.json": ("5", "6", "ok")}
    for name in ("carol/toy.ipynb", "dave.md", "eve"):
        report = json.loads(grade.report_path(out, name).read_text())
        assert report["events"] == ["a symbolic link: refused, not followed"], report
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    with pytest.raises(SystemExit):
        grade.main(command, tasks=TOY)
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


SLOW = """\
# Toy exercises

```{code-cell} ipython3
import time
time.sleep(60)
```
"""


def test_a_killed_batch_keeps_its_reports_and_resume_grades_the_rest(tmp_path):
    root, out = tmp_path / "submissions", tmp_path / "grades"
    root.mkdir()
    shutil.copy(FIXTURES / "submissions" / "correct.ipynb", root / "a.ipynb")
    (root / "b.md").write_text(SLOW)
    (root / "c.md").write_text(SLOW)
    toy = (f"import runpy, sys; from bpcourse import grade; sys.exit(grade.main(sys.argv[1:], "
           f"tasks=runpy.run_path({str(FIXTURES / 'tasks.py')!r})['TASKS']))")
    (tmp_path / "seed").write_text("s3cret\n")
    command = [sys.executable, "-c", toy, str(root), "--out", str(out),
               "--workers", "1", "--timeout-cell", "90", "--timeout-notebook", "90",
               "--masters", str(FIXTURES / "masters"), "--seed-file", str(tmp_path / "seed")]
    first = out / "reports" / "a.ipynb.json"
    run = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while not first.exists() and time.monotonic() < end and run.poll() is None:
            time.sleep(0.2)
        time.sleep(1)  # into b's sleep
    finally:
        if run.poll() is None:
            os.killpg(run.pid, 9)
        run.wait()
    assert first.exists() and run.returncode == -9
    kept = first.read_bytes()
    assert json.loads(kept)["total"] == 6
    with open(out / "grades.csv") as f:
        assert [row["submission"] for row in csv.DictReader(f)] == ["a.ipynb"]
    (root / "b.md").write_text(SLOW.replace("time.sleep(60)", "time.sleep(0)"))
    (root / "c.md").write_text(SLOW.replace("time.sleep(60)", "time.sleep(0)"))
    (tmp_path / "other").write_text("another")
    for other in (command[:-2], command + ["--seed-file", str(tmp_path / "other")]):
        refused = subprocess.run(other + ["--resume"], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "made with another seed" in refused.stderr
        assert first.read_bytes() == kept and not (out / "reports" / "b.md.json").exists()
    again = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("points") == 2 and "a.ipynb" not in again.stdout, again.stdout
    assert first.read_bytes() == kept
    with open(out / "grades.csv") as f:
        rows = {row["submission"]: row["total"] for row in csv.DictReader(f)}
    assert rows == {"a.ipynb": "6", "b.md": "0", "c.md": "0"}


def test_a_failure_of_the_grader_costs_one_submission_not_the_batch(monkeypatch, tmp_path):
    for name in ("a", "b"):
        shutil.copy(FIXTURES / "submissions" / "misnamed.md", tmp_path / f"{name}.md")
    real = grade.Grader.grade_one

    def fails_on_a(self, path, submission):
        if submission == "a.md":
            raise RuntimeError("a bug of the grader's")
        return real(self, path, submission)

    monkeypatch.setattr(grade.Grader, "grade_one", fails_on_a)
    reports = {r["submission"]: r for r in grade.Grader(TOY, FIXTURES / "masters",
                                                        LIMITS).grade([tmp_path])}
    assert (reports["a.md"]["status"], reports["a.md"]["total"]) == ("error", 0)
    assert reports["a.md"]["events"] == ["grader error: RuntimeError: a bug of the grader's"]
    assert reports["b.md"]["total"] == 5, reports["b.md"]


FLOOD = """\
# Toy exercises

```{code-cell} ipython3
print("x" * 200_000_000)  # one message of 200 MB
```
"""


def test_a_message_over_the_cap_is_not_taken_into_the_graders_memory(tmp_path):
    """The kernel's connection is dropped, the kernel killed and the submission told why (not
    a timeout), and the grader's peak stays far below the 200 MB message (it held ~3 copies of
    it before)."""
    (tmp_path / "flood.md").write_text(FLOOD)
    grader = grade.Grader(TOY, FIXTURES / "masters", grade.Limits(cell=30, notebook=60,
                                                                  memory_mb=1500))
    (report,), peak = peak_memory(lambda: list(grader.grade([tmp_path / "flood.md"])))
    assert (report["status"], report["total"]) == ("error", 0), report
    assert report["events"] == ["cell 2: output over 32 MB in one message: kernel killed"]
    assert report["tasks"]["toy_relu"]["message"] == "output over 32 MB", report
    assert peak < 2 * kernel.MESSAGE_BYTES_CAP, peak


def test_a_result_that_would_broadcast_past_the_cap_is_not_compared():
    import numpy as np

    column = np.zeros((grade.RESULT_CAP // 16, 1))  # half the cap; against a row of 10, 5 x
    assert grade.comparable(np.zeros(10), column) == f"shape {column.shape}; expected (10,)"
    assert grade.comparable((np.zeros(3), np.zeros(10)), (np.zeros(3), column)) is not None
    assert grade.comparable(np.zeros((10, 1)), np.zeros((10, 1))) is None
    assert grade.comparable(np.zeros(10), np.zeros(7)) is None  # no broadcast: compare says why


def toy_notebook(source, heading="# Toy exercises"):
    """A submission for the toy master: ``source`` as its one code cell."""
    return f"{heading}\n\n```{{code-cell}} ipython3\n{source}\n```\n"


HOG = '''\
import os, sys, time
import numpy as np


def children(count, work):
    """Fork ``count`` children that each do ``work()`` and then wait; back after 3 s."""
    for _ in range(count):
        if os.fork() == 0:
            work()
            time.sleep(30)
            os._exit(0)
    time.sleep(3)


def relu(x):  # 8 children of 100 MB each: each under the limit, not all together
    children(8, lambda: globals().setdefault("kept", np.ones(100 << 17)))
    return np.maximum(x, 0)


def affine(X, W, b):  # a fork bomb, bounded at 2**6 processes (this is a test)
    for _ in range(6):
        os.fork()
    time.sleep(20)
    return X @ W + b


def product_grads(x, y):  # 30 files of 10 MB in the kernel's folder
    for i in range(30):
        with open(f"big{i}", "wb") as f:
            f.write(bytes(10 << 20))
    return y, x


def spare(x, y):  # what a correct answer looks like here
    return y, x
'''


@pytest.mark.parametrize("sandbox", [False, True], ids=["plain", "sandbox"])
def test_limits_cover_the_whole_process_tree(tmp_path, sandbox):
    """Memory summed over the kernel's children, their number and the disk their files take:
    each excess kills all the kernel's processes, costs its task, and the next task is graded
    in a new kernel (here: the same notebook with a correct last function)."""
    tag = f"hog-{os.getpid()}-{time.monotonic_ns()}"
    (tmp_path / "hog.md").write_text(toy_notebook(f"# {tag}\n" + HOG))
    (tmp_path / "spare.md").write_text(toy_notebook(HOG + "\nproduct_grads = spare\n"))
    limits = grade.Limits(cell=25, notebook=120, memory_mb=600, sandbox=sandbox, procs=40,
                          disk_mb=100)
    grader = grade.Grader(TOY, FIXTURES / "masters", limits)
    reports = {Path(r["submission"]).stem: r for r in grader.grade([tmp_path], workers=2)}
    messages = {task: r["message"] for task, r in reports["hog"]["tasks"].items()}
    assert reports["hog"]["total"] == 0, reports["hog"]
    assert "processes use over 600 MB together" in messages["toy_relu"], messages
    assert re.search(r"\d+ processes; the limit is 40", messages["toy_affine"]), messages
    assert "files take over 100 MB" in messages["toy_pair"], messages
    assert reports["hog"]["status"] == "kernel died"
    assert reports["spare"]["total"] == 3, reports["spare"]  # graded after two restarts
    assert surviving(tag.encode()) == [] and surviving(b"time.sleep(30)") == []


def test_the_sandbox_tmp_holds_the_disk_limit(tmp_path):
    fills = "try:\n    for i in range(30):\n        with open(f'/tmp/fill{i}', 'wb') as f:\n" \
            "            f.write(bytes(10 << 20))\nexcept OSError as err:\n    print(err)"
    (tmp_path / "fills.md").write_text(toy_notebook(fills))
    limits = grade.Limits(cell=20, notebook=60, memory_mb=600, sandbox=True, disk_mb=100)
    (report,) = grade.Grader(TOY, FIXTURES / "masters", limits).grade([tmp_path / "fills.md"])
    assert "No space left on device" in report["output"], report


SPY = '''\
import os, re
import numpy as np

found = []
for pid in [str(os.getppid())] + os.listdir("/proc"):
    for part in ("cmdline", "environ"):
        try:
            found.append(open(f"/proc/{pid}/{part}", "rb").read().decode(errors="replace"))
        except OSError:
            pass
for text in list(found):  # every file named there, if it can be read
    for path in re.findall(r"/[^\\x00\\s=:]+", text):
        try:
            found.append(open(path).read(100_000))
        except (OSError, UnicodeDecodeError):
            pass
stolen = "\\n".join(found)
print(stolen[:1_000_000])  # the grader's own first


def relu(x):
    hits = [stolen[max(i - 100, 0):i + 100] for i in map(stolen.find, ("8675.309", "s3cret"))
            if i >= 0]
    raise ValueError(" | ".join(hits) or "nothing")


def affine(X, W, b):
    print(X, W, b)  # a hidden case printed: must not reach the report
    np.save("seen.npy", X)
    return X @ W + b


def product_grads(x, y):  # every other case's inputs, if it finds them
    raise ValueError(str([open(os.path.join(d, f), "rb").read()[-40:] for d, _, files in
                          os.walk(".") for f in files if f.endswith(".npy")])[-250:])
'''


@pytest.mark.parametrize("sandbox", [False, True], ids=["plain", "sandbox"])
def test_secrets_stay_out_of_the_kernels_reach_and_the_reports(tmp_path, sandbox):
    """A submission reads every process's command line and environment, every file they name,
    and prints what it finds; its functions print and keep the hidden cases: neither the seed
    (from the environment, or from --seed-file) nor a hidden value reaches any report."""
    root, out, seed = tmp_path / "submissions", tmp_path / "grades", "s3cret-seed-0192"
    root.mkdir()
    (root / "spy.md").write_text(toy_notebook(SPY))
    (tmp_path / "cases.py").write_text(
        "import numpy as np\nCASES = {'toy_affine': [(np.full((1, 2), 8675.309), np.eye(2), "
        "np.zeros(2))], 'toy_pair': [(np.full(3, 8675.309), np.ones(3))]}\n")
    (tmp_path / "seed").write_text(seed)
    toy = (f"import runpy, sys; from bpcourse import grade; sys.exit(grade.main(sys.argv[1:], "
           f"tasks=runpy.run_path({str(FIXTURES / 'tasks.py')!r})['TASKS']))")
    command = [sys.executable, "-c", toy, str(root), "--out", str(out), "--masters",
               str(FIXTURES / "masters"), "--cases", str(tmp_path / "cases.py"),
               "--timeout-cell", "20"] + ["--sandbox"] * sandbox
    env = {**os.environ, grade.SEED_VARIABLE: seed}
    if sandbox:
        command, env = command + ["--seed-file", str(tmp_path / "seed")], os.environ
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "reports" / "spy.md.json").read_text())
    assert "s3cret-seed" not in run.stdout + "".join(p.read_text() for p in out.rglob("*.*"))
    assert "8675" not in run.stdout + "".join(p.read_text() for p in out.rglob("*.*")), report
    assert report["seed_sha256"] == hashlib.sha256(seed.encode()).hexdigest()[:16]
    points = {task: r["points"] for task, r in report["tasks"].items()}
    assert points == {"toy_relu": 0, "toy_affine": 2, "toy_pair": 0}, report["tasks"]
    assert report["tasks"]["toy_relu"]["message"] == "ValueError: nothing", report
    assert report["tasks"]["toy_affine"]["message"] == "passed 3 cases and 1 hidden", report


@pytest.mark.parametrize("command", [[], ["release"]], ids=["grade", "release"])
def test_every_flag_has_help_text(command):
    run = subprocess.run([sys.executable, "-m", "bpcourse.grade", *command, "--help"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    options = run.stdout.split("options:")[1]
    entries = re.split(r"\n  (?=-)", "\n" + options.strip("\n"))[1:]
    flags = {re.match(r"[-\w]+", entry).group(): entry for entry in entries}
    assert set(flags) >= ({"-h", "--out", "--ipynb"} if command else
                          {"-h", "--out", "--self", "--masters", "--seed-file", "--seed", "--cases",
                           "--workers", "--timeout-cell", "--timeout-notebook", "--memory-mb",
                           "--procs", "--disk-mb", "--sandbox", "--resume"})
    for flag, entry in flags.items():  # the flag, its metavar, then words
        words = re.sub(r"^[-\w]+(, [-\w]+)?( [A-Z_]+)?", "", entry).split()
        assert len(words) >= 3, f"{flag} has no help text: {entry!r}"
    positional = run.stdout.split("positional arguments:")[1].split("options:")[0]
    assert len(positional.split()) >= 4, positional


WITHHELD = """\
# Backprop in matrix form

```{{code-cell}} ipython3
import importlib
import numpy as np
import bplib.layers


def source_of(path):  # the library's code, read from its file and run
    namespace = {{"__name__": "bplib.stolen", "__package__": "bplib"}}
    exec(compile(open(path).read(), path, "exec"), namespace)
    return type("module", (), namespace)


def linear_backward(dout, X, W):
    layers = {layers}
    lin = layers.Linear(*W.shape)
    lin.W.value[...] = W
    lin.forward(X)
    return lin.backward(dout), lin.W.grad, lin.b.grad
```
"""


def test_the_grading_kernel_offers_no_implementation_of_the_graded_task(tmp_path):
    """A function that calls bplib's Linear.backward for linear_backward earns nothing, whether
    it imports it, reloads the module, or runs the source of the module's file; under --sandbox
    the real package's file, where the grader has it, holds the same copy."""
    import bplib

    from bpcourse.check import TASKS

    real = Path(bplib.__file__).parent / "layers.py"
    ways = {"imported": "bplib.layers", "reloaded": "importlib.reload(bplib.layers)",
            "copy_run": "source_of(bplib.layers.__file__)", "real_run": f"source_of({str(real)!r})"}
    for way, layers in ways.items():
        (tmp_path / f"04_backprop_matrix_{way}.md").write_text(WITHHELD.format(layers=layers))
    for sandbox in (False, True):
        limits = grade.Limits(cell=20, notebook=60, sandbox=sandbox)
        paths = [tmp_path / f"04_backprop_matrix_{way}.md" for way in ways
                 if sandbox or way != "real_run"]  # unsandboxed, the real file can be read
        reports = grade.Grader(TASKS, limits=limits).grade(paths, workers=2)
        for report in reports:
            result = report["tasks"]["linear_backward"]
            assert result["points"] == 0, (sandbox, report)
            assert result["message"] == "NotImplementedError: Linear.backward is not available " \
                                        "while grading: write your own", (sandbox, report)


def test_the_library_copy_withholds_every_tasks_implementation(tmp_path):
    """Every task of the registry names what it withholds, and each is found in bplib."""
    from bpcourse.check import TASKS

    assert set(grade.LIBRARY_ANSWERS) == set(TASKS)
    grade.library_copy(tmp_path, grade.library_sources(TASKS))
    text = "".join(path.read_text() for path in (tmp_path / "bplib").glob("*.py"))
    assert "(dout, self._W_cache)" not in text  # a line of Linear.backward's
    for module, *names in grade.LIBRARY_ANSWERS.values():
        for name in names:
            assert grade.WITHHELD.format(name) in text or name.startswith("VJP_RULES"), name


def venv(folder, packages=()):
    """A venv at ``folder`` without pip; ``packages``: folders its path includes (a .pth)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=120)
    (site,) = folder.glob("lib/python*/site-packages")
    (site / "grader.pth").write_text("".join(f"{p}\n" for p in packages))
    return folder / "bin" / "python"


def test_sandbox_works_with_any_interpreter_and_a_kernel_that_fails_to_start_says_why(tmp_path):
    """An interpreter at a path with spaces whose packages live outside its prefixes (a .pth
    names them) grades under --sandbox; one without ipykernel gets its error in the report."""
    python = venv(tmp_path / "with space" / ".venv",
                  [p for p in sys.path if p.endswith("site-packages")])
    out = tmp_path / "grades"
    toy = (f"import runpy, sys; from bpcourse import grade; sys.exit(grade.main(sys.argv[1:], "
           f"tasks=runpy.run_path({str(FIXTURES / 'tasks.py')!r})['TASKS']))")
    run = subprocess.run([str(python), "-c", toy, str(FIXTURES / "submissions" / "correct.ipynb"),
                          "--out", str(out), "--masters", str(FIXTURES / "masters"), "--sandbox",
                          "--timeout-cell", "20"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(grade.__file__).parents[1])})
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "reports" / "correct.ipynb.json").read_text())
    assert (report["total"], report["status"]) == (6, "ok"), report
    bare = venv(tmp_path / "bare")
    for sandbox in (False, True):
        limits = grade.Limits(cell=5, notebook=20, sandbox=sandbox, python=str(bare))
        (report,) = grade.Grader(TOY, FIXTURES / "masters", limits).grade(
            [FIXTURES / "submissions" / "correct.ipynb"])
        assert (report["total"], report["status"]) == (0, "kernel died"), report
        assert "No module named ipykernel_launcher" in report["events"][0], report


ENGINE_FROM_BPLIB = """\
# The chain rule and computational graphs

```{code-cell} ipython3
from bplib.engine import Value, topological_order


def backward(root):
    for node in topological_order(root):
        node.grad = 0.0
    root.backward()
```
"""


def test_the_engine_tasks_withhold_the_engines_order_and_backward(tmp_path):
    """topological_order and backward taken from bplib earn nothing in exercise 3: both are
    withheld in the grading kernel, which still builds the task's Value graphs."""
    from bpcourse.check import TASKS

    path = tmp_path / "03_chain_rule_lazy.md"
    path.write_text(ENGINE_FROM_BPLIB)
    (report,) = grade.Grader(TASKS, limits=grade.Limits(cell=20, notebook=60)).grade([path])
    for name, withheld in [("topo_order", "topological_order"),
                           ("engine_backward", "topological_order")]:
        result = report["tasks"][name]
        assert result["points"] == 0, report
        assert f"{withheld} is not available while grading" in result["message"], report
