"""The masters work in nbgrader as they are: converted with jupytext into an nbgrader course,
``nbgrader generate_assignment`` releases them without solutions and ``nbgrader autograde``
gives a known-good submission full points and a known-bad one all but the wrong task's."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from book import ROOT
from bpcourse.check import TASKS
from bpcourse.grade import CHECK_CALL, masters_in, task_names

pytestmark = [pytest.mark.jupyter, pytest.mark.xdist_group("nbgrader")]  # kernels, one worker
determine_grade = pytest.importorskip("nbgrader.utils").determine_grade

BIN = Path(sys.executable).parent
ASSIGNMENT = "ps1"
WRONG = ("linear_backward", "dX = dout @ W.T", "dX = -dout @ W.T")  # task, right line, wrong one


def nbgrader_run(course, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BPCOURSE_CHECK_RAISES": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # nbgrader runs `alembic`
    done = subprocess.run([str(BIN / "nbgrader"), *args, f"--CourseDirectory.root={course}"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """An nbgrader course made from the masters, released and autograded for two learners."""
    course = tmp_path_factory.mktemp("course")
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for path, nb in masters_in(ROOT / "exercises"):
        jupytext.write(nb, source / f"{path.stem}.ipynb")
    nbgrader_run(course, "generate_assignment", ASSIGNMENT, "--force")
    for learner in ("good", "bad"):
        folder = course / "submitted" / learner / ASSIGNMENT
        folder.mkdir(parents=True)
        for nb_path in source.glob("*.ipynb"):
            text = nb_path.read_text()
            if learner == "bad" and WRONG[1] in text:
                assert text.count(WRONG[1]) == 1
                text = text.replace(WRONG[1], WRONG[2])
            (folder / nb_path.name).write_text(text)
    nbgrader_run(course, "autograde", ASSIGNMENT, "--create", "--force")
    nbgrader_run(course, "export", f"--to={course / 'grades.csv'}")
    return course


def scores(course, learner):
    """(score, max_score) of a learner in the table ``nbgrader export`` writes."""
    with open(course / "grades.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["student_id"] == learner)
    return float(row["score"]), float(row["max_score"])


def test_the_release_has_the_checks_and_no_solutions(course):
    released = sorted((course / "release" / ASSIGNMENT).glob("*.ipynb"))
    assert [p.stem for p in released] == sorted(p.stem for p, _ in masters_in(ROOT / "exercises"))
    for path in released:
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
        nb = nbformat.read(path, as_version=4)
        grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                     if c.metadata.get("nbgrader", {}).get("grade")]
        assert grade_ids == [f"check_{name}" for name in task_names(nb)], path.name


def test_autograde_gives_full_points_to_the_masters_and_docks_the_wrong_task(course):
    full = sum(TASKS[name].points for _, nb in masters_in(ROOT / "exercises")
               for name in task_names(nb))
    assert scores(course, "good") == (full, full)
    assert scores(course, "bad") == (full - TASKS[WRONG[0]].points, full)
    autograded = course / "autograded" / "bad" / ASSIGNMENT / "04_backprop_matrix.ipynb"
    cell = next(c for c in nbformat.read(autograded, as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == f"check_{WRONG[0]}")
    error = next(o for o in cell.outputs if o.output_type == "error")
    assert error.ename == "CheckFailed" and "sign is flipped" in error.evalue


def test_without_raising_a_failed_check_scores_nothing_in_nbgrader():
    """check() prints a failure to stderr, and nbgrader scores a grade cell with stderr 0, so
    an instructor who forgets BPCOURSE_CHECK_RAISES=1 grades right all the same."""
    cell = nbformat.v4.new_code_cell("check(...)", metadata={"nbgrader": {
        "grade": True, "grade_id": "t", "points": 2, "solution": False}})
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="❌ t: ...\n")]
    assert determine_grade(cell) == (0, 2)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✅ t: correct\n")]
    assert determine_grade(cell) == (2, 2)


@pytest.mark.parametrize("path", sorted((ROOT / "exercises").glob("*.md")), ids=lambda p: p.stem)
def test_masters_keep_their_metadata_through_ipynb_and_back(path, tmp_path):
    """md -> ipynb -> md gives the master back byte for byte (jupytext's version line aside)."""
    ipynb = tmp_path / "x.ipynb"
    jupytext.write(jupytext.read(path), ipynb)
    back = jupytext.writes(jupytext.read(ipynb), fmt="md:myst")
    back = "".join(line for line in back.splitlines(True) if "jupytext_version:" not in line)
    assert back == path.read_text()
    cells = jupytext.read(path).cells
    for cell in cells:
        meta, tags = cell.metadata.get("nbgrader"), cell.metadata.get("tags", [])
        assert ("solution" in tags or "check" in tags) == (meta is not None)
        if "check" in tags:
            (name,) = CHECK_CALL.findall(cell.source)
            assert meta["grade"] and meta["locked"] and not meta["solution"]
            assert (meta["grade_id"], meta["points"]) == (f"check_{name}", TASKS[name].points)
        elif meta is not None:
            assert meta["solution"] and not meta["grade"] and not meta["locked"]
