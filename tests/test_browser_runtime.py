"""bpcourse.browser, the Python side of the in-page runner, run here in plain CPython: each cell's
outputs come back as a kernel would send them. (It installs stand-ins for Jupyter modules, so
every test runs it in a fresh interpreter.)"""
import json
import subprocess
import sys
import textwrap

import pytest


def run_cells(*cells, digits_file=None):
    """The outputs of each cell, run in order in one fresh interpreter. A cell given as
    (page, source) runs in that page's session ("page" otherwise); ("bye", page) ends one."""
    code = textwrap.dedent(f"""
        import json, sys
        from bpcourse import browser
        browser.install({digits_file!r})
        def one(i, cell):
            page, source = cell if isinstance(cell, list) else ("page", cell)
            if page == "bye":
                return browser.end_session(source)
            return json.loads(browser.run_cell(source, f"<cell {{i + 1}}>", page))
        cells = json.loads(sys.stdin.read())
        print(json.dumps([one(i, c) for i, c in enumerate(cells)]))
    """)
    result = subprocess.run([sys.executable, "-c", code], input=json.dumps(cells),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_printed_text_and_the_last_expression_show_in_order():
    [outputs] = run_cells("print('a')\nprint('b', file=__import__('sys').stderr)\n1 + 1")
    assert outputs == [{"type": "stream", "name": "stdout", "text": "a\n"},
                       {"type": "stream", "name": "stderr", "text": "b\n"},
                       {"type": "display", "data": {"text/plain": "2"}}]


def test_cells_share_one_namespace_and_a_semicolon_or_none_shows_nothing():
    first, second, third = run_cells("x = 20", "x + 1;", "None")
    assert first == second == third == []
    assert run_cells("x = 20", "x * 2")[1][0]["data"]["text/plain"] == "40"


def test_an_error_shows_the_readers_frames_and_names_the_library_file():
    [outputs] = run_cells("from bplib.layers import Linear\nimport numpy as np\n"
                          "Linear(3, 4).forward(np.ones((5, 2)))")
    [error] = outputs
    assert error["type"] == "error" and error["ename"] == "ValueError"
    assert '<cell 1>", line 3' in error["traceback"]
    assert "raised in bplib/validate.py, line " in error["traceback"]
    assert "X has shape (5, 2); expected (N, 3)" in error["traceback"]
    assert "site-packages" not in error["traceback"].split("raised in")[0]


def test_a_syntax_error_is_reported_with_its_line():
    [outputs] = run_cells("x = 1\nx = = 2")
    assert outputs[0]["ename"] == "SyntaxError" and "line 2" in outputs[0]["traceback"]


def test_line_magics_are_skipped_and_line_numbers_kept():
    [outputs] = run_cells("%xmode minimal\n%config InlineBackend.figure_formats = ['svg']\n"
                          "1 / 0")
    assert outputs[0]["ename"] == "ZeroDivisionError"
    assert '<cell 1>", line 3' in outputs[0]["traceback"]


def test_figures_come_back_as_svg_returned_or_left_open():
    returned, left_open = run_cells(
        "from bplib import viz\nviz.plot_activations(['relu'])",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nNone")
    assert returned[0]["data"]["image/svg+xml"].lstrip().startswith("<?xml")
    assert [o["type"] for o in left_open] == ["display"]
    assert "<svg" in left_open[0]["data"]["image/svg+xml"]


def test_glue_shows_its_value_and_display_false_shows_nothing():
    shown, hidden = run_cells("from myst_nb import glue\nglue('x', 3.5)",
                              "glue('y', 2.0, display=False)")
    assert shown == [{"type": "display", "data": {"text/plain": "3.5"}}]
    assert hidden == []


def test_a_computational_graph_comes_back_as_dot_text():
    [outputs] = run_cells("from bplib.engine import Value\nfrom bplib.graph import draw_graph\n"
                          "x = Value(2.0, label='x')\ndraw_graph(x * x)")
    dot = outputs[0]["data"]["text/vnd.graphviz"]
    assert dot.startswith("digraph {") and '"v0" [label="x | data 2.0000 | grad 0.0000"' in dot
    assert '"v0" -> "v1_op"' in dot and "rankdir" in dot


def test_learner_checks_print_their_verdict():
    [outputs] = run_cells("import numpy as np\nfrom bpcourse.check import check\n"
                          "def softmax(z):\n    e = np.exp(z)\n    return e / e.sum(axis=0)\n"
                          "check('softmax', softmax)")
    text = "".join(o.get("text", "") for o in outputs)
    assert "❌ failed" in text and "softmax" in text


def test_digits_come_from_the_saved_file(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "digits.npz"
    np.savez(path, data=np.arange(64 * 3, dtype=np.uint8).reshape(3, 64) % 17,
             target=np.array([0, 1, 2], dtype=np.uint8))
    [outputs] = run_cells("from sklearn.datasets import load_digits\nd = load_digits()\n"
                          "d.data.shape, d.target.tolist(), float(d.data.max())",
                          digits_file=str(path))
    assert outputs[0]["data"]["text/plain"] == "((3, 64), [0, 1, 2], 16.0)"


def test_lab_frames_are_the_widgets_frames():
    code = textwrap.dedent("""
        import json
        from bpcourse import browser, labs
        browser.install()
        page = json.loads(browser.lab_frame("lr", json.dumps({"lr": 0.7, "steps": 30})))
        kernel = json.loads(json.dumps(labs.frame("lr", lr=0.7, steps=30)))
        print(page == kernel, page["readout"][:20])
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True")


def text(outputs):
    return "".join(o.get("text", "") for o in outputs)


def test_each_page_has_a_python_state_of_its_own():
    """One Python serves the pages of a book (a worker they share); a page sees none of what
    another did: names, changes to the library, progress(), matplotlib settings, numpy's random
    and error state. Coming back to a page finds its own state as it was."""
    a_changes, b_sees, a_sees = run_cells(
        ["a", "import numpy as np, matplotlib, bplib.layers\nfrom bpcourse.check import check\n"
              "bplib.layers.Linear.forward = None\nsecret = 1\nnp.random.seed(0)\n"
              "matplotlib.rcParams['font.size'] = 31\nnp.seterr(divide='raise')\n"
              "e = lambda z: np.exp(z - z.max(1, keepdims=True))\n"
              "check('softmax', lambda z: e(z) / e(z).sum(1, keepdims=True));"],
        ["b", "import numpy as np, matplotlib, bplib.layers\nfrom bpcourse.check import progress\n"
              "print(bplib.layers.Linear.forward is None, 'secret' in globals(),\n"
              "      matplotlib.rcParams['font.size'], np.geterr()['divide'])\n"
              "print(np.random.rand(3))\nprogress('02_loss')"],
        ["a", "import bplib\nfrom bpcourse import check\n"
              "print(bplib.layers.Linear.forward is None, secret,\n"
              "      matplotlib.rcParams['font.size'], np.geterr()['divide'])\n"
              "print(np.random.rand())\ncheck.progress('02_loss')"])
    assert "False False 10.0 warn" in text(b_sees), b_sees
    assert "0.5488135" not in text(b_sees)  # not seeded by page a
    assert "True 1 31.0 raise" in text(a_sees), a_sees
    assert "0.5488135039273248" in text(a_sees)  # seed 0's first draw: page b's draws were b's
    assert "0 of 2 tasks passed" in text(b_sees)  # page a's check is page a's
    assert "1 of 2 tasks passed" in text(a_sees)


def test_a_page_left_is_forgotten():
    *_, after = run_cells(["a", "x = 1"], ["bye", "a"], ["a", "print('x' in globals())"])
    assert text(after).strip() == "False"


def test_only_the_newest_pages_are_kept():
    from bpcourse.browser import MAX_SESSIONS

    pages = [f"p{i}" for i in range(MAX_SESSIONS + 1)]
    outputs = run_cells(*[[p, "x = 1"] for p in pages],
                        [pages[-1], "print('x' in globals())"],
                        [pages[1], "print('x' in globals())"],
                        [pages[0], "print('x' in globals())"])
    assert [text(o).strip() for o in outputs[-3:]] == ["True", "True", "False"]
