"""`make notebooks` writes an unexecuted .ipynb copy of every chapter and exercise."""
import subprocess

import nbformat
import pytest
from book import ROOT, notebook_sources

pytestmark = pytest.mark.jupyter  # kernels: not in the numpy 2.0.2 run


def test_make_notebooks_writes_an_ipynb_per_source():
    proc = subprocess.run(["make", "-s", "notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sources = notebook_sources()
    assert sources
    for src in sources:
        copy = ROOT / "_notebooks" / src.relative_to(ROOT).with_suffix(".ipynb")
        nb = nbformat.read(copy, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert len(code) == src.read_text().count("```{code-cell}"), copy
        assert all(not c.outputs for c in code), f"{copy} carries outputs"


def test_make_exercises_writes_copies_without_solutions_and_keeps_learner_work():
    folder = ROOT / "my_exercises"
    mine = folder / sorted((ROOT / "exercises").glob("0*.md"))[0].name
    backup = mine.read_text() if mine.exists() else None
    try:
        folder.mkdir(exist_ok=True)
        mine.write_text("my own work\n")
        proc = subprocess.run(["make", "-s", "exercises"], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert mine.read_text() == "my own work\n"
        for master in sorted((ROOT / "exercises").glob("0*.md"))[1:]:  # [0] is "mine"
            copy = (folder / master.name).read_text()
            assert "### BEGIN SOLUTION" not in copy and "NotImplementedError" in copy, master.name
    finally:
        if backup is None:
            mine.unlink()
        else:
            mine.write_text(backup)
