"""Every chapter and exercise runs top to bottom in a fresh kernel, as a learner would run it in
JupyterLab (jupytext turns the MyST file into a notebook), with no errors and no warnings."""
import jupytext
import nbclient
import pytest
from ipc_kernel import IPCKernelManager

from book import ROOT, notebook_sources


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


def released_student_versions(tmp_path_factory=None):
    import tempfile
    from pathlib import Path

    from bplib.grade import release
    out = Path(tempfile.mkdtemp(prefix="bplib-student-"))
    return release(ROOT / "exercises", out)


@pytest.mark.parametrize("path", released_student_versions(), ids=lambda p: p.name)
def test_student_version_runs_and_every_check_says_not_implemented(path):
    """A learner's copy (solutions replaced by stubs) runs top to bottom without raising, and each
    check cell reports the task as not done yet rather than crashing the notebook."""
    nb = jupytext.read(path)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            kernel_manager_class=IPCKernelManager,
                            resources={"metadata": {"path": str(ROOT / "exercises")}}).execute()
    checks = [c for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get("tags", [])]
    assert checks
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "❌" in text and "not implemented" in text, f"{path.name}: {cell.source}\n{text}"
        assert not any(o.output_type == "error" for o in cell.outputs)
