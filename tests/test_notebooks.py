"""Every chapter and exercise runs top to bottom in a fresh kernel, as a learner would run it in
JupyterLab (jupytext turns the MyST file into a notebook), with no errors and no warnings."""
import atexit
import shutil
import tempfile
from pathlib import Path

import jupytext
import nbclient
import pytest
from book import ROOT, notebook_sources

from bpcourse.check import tasks_of
from bpcourse.grade import release
from bpcourse.kernel import IPCKernelManager

pytestmark = pytest.mark.jupyter  # kernels, widgets: not in the numpy 2.0.2 run


@pytest.mark.parametrize("path", notebook_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_runs_clean_in_a_fresh_kernel(path):
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", kernel_manager_class=IPCKernelManager,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError on an error outside `raises-exception` cells
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr":
                pytest.fail(f"{path.name}: stderr in cell\n{cell.source}\n---\n{out.text}")
            if out.output_type == "error":
                assert "raises-exception" in tags, f"{path.name}: unexpected error in\n{cell.source}"


def released_student_versions():
    """The learners' copies, released into a temporary folder (removed when the tests end).
    Made at collection time, because the test is parametrised by file."""
    out = Path(tempfile.mkdtemp(prefix="bplib-student-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    return release(ROOT / "exercises", out)


@pytest.mark.parametrize("path", released_student_versions(), ids=lambda p: p.name)
def test_student_version_runs_and_every_check_says_not_implemented(path):
    """A learner's copy (solutions replaced by stubs, as `make exercises` and the grader's release
    make it) runs top to bottom without raising; each of its tasks is reported not implemented
    yet, and nothing but those reports is printed."""
    nb = jupytext.read(path)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            kernel_manager_class=IPCKernelManager,
                            resources={"metadata": {"path": str(ROOT / "exercises")}}).execute()
    tasks = tasks_of(path.stem)
    assert tasks, f"{path.name}: no task registered for this notebook"
    printed = ""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type == "stream", (cell.source, out)
            assert out.name == "stdout" or out.text.startswith("❌ failed"), (cell.source, out)
            printed += out.text
    for name in tasks:
        assert f"❌ failed {name}: not implemented yet" in printed, printed
    assert f"0 of {len(tasks)} tasks passed" in printed, printed


def test_progress_bars_show_only_for_runs_that_need_one(monkeypatch):
    """Chapter 5 run as a learner runs it (bars on): a bar only for a run that lasted a second,
    drawn in place, so no cell shows more than one line per long run; the 120 one-step fits of the
    descent-path cell show none (136 bars in the chapter before)."""
    monkeypatch.delenv("BPLIB_NO_PROGRESS", raising=False)
    path = ROOT / "chapters" / "05_training.md"
    nb = jupytext.read(path)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            kernel_manager_class=IPCKernelManager,
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    bars = {}
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr":
                assert out.text.startswith("\rfit ["), out.text  # nothing else on stderr
                bars[index] = bars.get(index, 0) + out.text.count("\n")
    descent = next(i for i, c in enumerate(nb.cells) if "paths[f\"lr {lr}\"]" in c.source)
    assert descent not in bars
    assert sum(bars.values()) <= 10, bars
