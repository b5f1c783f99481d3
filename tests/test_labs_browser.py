"""The three labs in a built book, in Debian's Chromium with every non-local request blocked:
every control moves the picture to the precomputed frame for its value, the element says what is
precomputed and how to get the live lab, and nothing reaches the console. And the live lab in
JupyterLab: a slider moved in the page reaches the kernel and comes back redrawn.

Like test_offline_widgets, this builds a small book of its own (the chapters call the labs too,
but are written elsewhere), with the repository's _config.yml, tools/ and _vendor/.
"""
import json

import pytest

from book import ROOT, build_one_page_book, serve
from test_browser import SCREENSHOTS, browser, visit  # noqa: F401  (fixture)
from test_lab import TOKEN, lab, lab_notebook, run_first_cell  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]
LABS = ("lr", "init", "depth")
CLEAN = {"console": [], "failed": [], "blocked": [], "http": []}

PAGE = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
# Labs

```{code-cell} ipython3
from bpcourse.widgets import lr_lab; lr_lab()
```

```{code-cell} ipython3
from bpcourse.widgets import init_lab; init_lab()
```

```{code-cell} ipython3
from bpcourse.widgets import depth_lab; depth_lab()
```
"""


@pytest.fixture(scope="module")
def lab_page(browser, tmp_path_factory):  # noqa: F811
    with serve(build_one_page_book(tmp_path_factory, "labs", PAGE)) as url:
        page, problems = visit(browser, f"{url}/labs.html")
        page.wait_for_selector(".bplib-lab canvas", timeout=20_000)
        yield page, problems
        page.context.close()


def element(page, name):
    return page.locator(f'.bplib-lab[data-lab="{name}"]')


def embedded(page, name):
    """The JSON the build put into the element, and the bytes of JSON plus script."""
    return page.evaluate("""name => {
        const root = document.querySelector(`.bplib-lab[data-lab="${name}"]`);
        const scripts = [...root.querySelectorAll(":scope > script")].map(s => s.textContent);
        return [JSON.parse(scripts[0]), new Blob(scripts).size];
    }""", name)


def shown(page, name):
    """What the element shows: readout, frame key, frame number and the picture's pixels."""
    return page.evaluate("""name => {
        const root = document.querySelector(`.bplib-lab[data-lab="${name}"]`);
        return {readout: root.querySelector(".bplib-lab-readout").textContent,
                key: Number(root.dataset.key), frame: Number(root.dataset.frame),
                picture: root.querySelector("canvas").toDataURL()};
    }""", name)


def move(page, name, control, position):
    """Move a control as a reader would: pick an option, or drag a slider to a position."""
    target = element(page, name).locator(f'[name="{control}"]')
    if target.evaluate("e => e.tagName") == "SELECT":
        target.select_option(index=position)
    else:
        target.evaluate("""(e, i) => { e.value = i; e.dispatchEvent(new Event("input"));
                                        e.dispatchEvent(new Event("change")); }""", position)


def flat_key(controls, positions):
    key = 0
    for c in controls:
        key = key * len(c["grid"]) + positions[c["name"]]
    return key


def positions_to_try(grid):
    n = len(grid)
    return list(range(n)) if n <= 7 else sorted({0, 1, n // 4, n // 2, 3 * n // 4, n - 2, n - 1})


@pytest.mark.parametrize("name", LABS)
def test_every_control_shows_the_precomputed_frame_for_its_value(lab_page, name):
    page, problems = lab_page
    exercise_every_control(page, problems, name)


CHAPTER_LABS = {"lr": "chapters/05_training", "init": "chapters/06_vanishing_gradients",
                "depth": "chapters/07_resnet_skips"}


@pytest.mark.parametrize("name", LABS)
def test_labs_in_the_built_chapters(browser, built_book, name):  # noqa: F811
    """The same, on the chapter pages of the book itself, built from scratch for this session."""
    with serve(built_book[2]) as url:
        page, problems = visit(browser, f"{url}/{CHAPTER_LABS[name]}.html")
        try:
            page.wait_for_selector(f'.bplib-lab[data-lab="{name}"] canvas', timeout=20_000)
            exercise_every_control(page, problems, name)
        finally:
            page.context.close()


def exercise_every_control(page, problems, name):
    """Move every control of one lab through its grid; each time the element must show the
    precomputed frame for the controls' values, and the picture must change with the frame."""
    data, size = embedded(page, name)
    assert size <= 1.5e6, f"{name}: {size} bytes of JSON and script"
    controls = data["controls"]
    positions = {c["name"]: c["grid"].index(c["default"]) for c in controls}

    def check(before):
        now = shown(page, name)
        key = flat_key(controls, positions)
        assert now["key"] == key and now["frame"] == data["index"][key]
        assert now["readout"] == data["frames"][now["frame"]]["readout"]
        if before is not None and now["frame"] != before["frame"]:
            assert now["picture"] != before["picture"] and now["readout"] != before["readout"]
        if before is not None and now["frame"] == before["frame"]:
            assert now["picture"] == before["picture"]
        return now

    state = check(None)
    changed = 0
    for c in controls:
        if "when" in c:                       # sigma: only with normal weights
            other = next(o for o in controls if o["name"] == c["when"][0])
            positions[other["name"]] = other["grid"].index(c["when"][1])
            move(page, name, other["name"], positions[other["name"]])
            state = check(state)
        for position in positions_to_try(c["grid"]) + [c["grid"].index(c["default"])]:
            previous = state["frame"]
            positions[c["name"]] = position
            move(page, name, c["name"], position)
            state = check(state)
            changed += state["frame"] != previous
    assert changed >= sum(len(positions_to_try(c["grid"])) for c in controls) // 2
    assert problems == CLEAN, problems


def test_the_element_says_what_is_precomputed_and_how_to_get_the_live_lab(lab_page):
    page, problems = lab_page
    for name in LABS:
        note = element(page, name).locator(".bplib-lab-note").inner_text()
        assert note.startswith("Precomputed for this page:")
        assert "JupyterLab" in note and "make lab" in note and "live" in note
    assert problems == CLEAN, problems


def test_same_initialisation_again_gives_the_same_picture(lab_page):
    page, problems = lab_page
    before = shown(page, "depth")
    element(page, "depth").locator(".bplib-lab-rerun").click()
    after = shown(page, "depth")
    assert after["picture"] == before["picture"] and after["frame"] == before["frame"]
    assert after["readout"] == before["readout"] + " · same initialisation again: identical result"
    assert problems == CLEAN, problems


def test_sigma_is_disabled_unless_the_weights_are_normal(lab_page):
    page, _ = lab_page
    sigma, scheme = (element(page, "init").locator(f'[name="{n}"]') for n in ("sigma", "scheme"))
    scheme.select_option("he")
    assert sigma.is_disabled()
    scheme.select_option("normal")
    assert sigma.is_enabled()
    scheme.select_option("he")


def test_a_slider_follows_the_keyboard(lab_page):
    page, _ = lab_page
    slider = element(page, "lr").locator('[name="lr"]')
    before = shown(page, "lr")
    slider.focus()
    page.keyboard.press("ArrowRight")
    after = shown(page, "lr")
    assert after["key"] != before["key"] and after["readout"].startswith("lr = 0.2 ·")
    page.keyboard.press("ArrowLeft")
    assert shown(page, "lr")["readout"] == before["readout"]


def test_live_view_sends_only_the_latest_values_while_a_frame_is_on_its_way(lab_page):
    """The anywidget view with a stand-in model that answers after 100 ms: twenty slider moves
    in a row send the first value at once and then only the last, never the ones between."""
    page, _ = lab_page
    sent, shown_value = page.evaluate("""() => new Promise(done => {
        const root = document.querySelector('.bplib-lab[data-lab="lr"]');
        const data = JSON.parse(root.querySelector("script").textContent);
        const state = {spec: data, frame: data.frames[0], served: 1,
                       controls: Object.fromEntries(data.controls.map(c => [c.name, c.default]))};
        const listeners = {}, sent = [];
        const model = {
            get: key => state[key], set: (key, value) => { state[key] = value; },
            on: (event, f) => { listeners[event] = f; }, off() {}, send() {},
            save_changes() {
                sent.push(state.controls.lr);
                setTimeout(() => { state.served += 1; listeners["change:served"](); }, 100);
            },
        };
        const el = document.createElement("div");
        document.body.appendChild(el);
        bplibLab.render({model, el});
        const slider = el.querySelector('[name="lr"]');
        for (let i = 1; i <= 20; i++) {
            slider.value = i;
            slider.dispatchEvent(new Event("input"));
        }
        setTimeout(() => { done([sent, el.querySelector("b").textContent]); el.remove(); }, 500);
    })""")
    assert len(sent) == 2 and sent[0] != sent[1]
    assert str(sent[1]) == shown_value                        # the slider's final value


SETTINGS = {  # screenshots: the default of each lab, and the regimes the chapters talk about
    "lr": {"": {}, "_too_small": {"lr": 0}, "_zigzag": {"lr": 12}, "_diverged": {"lr": 16},
           "_momentum": {"optimizer": 1}},
    "init": {"": {}, "_sigmoid_normal_1": {"scheme": 0, "sigma": 4, "activation": 0},
             "_relu_normal_0.01": {"scheme": 0, "sigma": 0}},
    "depth": {"": {}, "_depth_50": {"depth": 5}},
}


@pytest.mark.parametrize("name", LABS)
def test_screenshots(lab_page, name):
    page, problems = lab_page
    data, _ = embedded(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.add_style_tag(content=".bd-header-article, .skip-link { position: static !important; }")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for suffix, setting in SETTINGS[name].items():
        for c in data["controls"]:
            move(page, name, c["name"], setting.get(c["name"], c["grid"].index(c["default"])))
        element(page, name).screenshot(path=str(SCREENSHOTS / f"lab_{name}{suffix}.png"))
    frame = data["frames"][shown(page, name)["frame"]]
    assert json.dumps(frame)  # the last setting's frame is one of the embedded ones
    assert problems == CLEAN, problems


LIVE = """() => new Promise(done => {
    // Move the lr slider to 1.5 and back to 0.1, ten times, each once the previous picture is
    // drawn: ms from the input event to the new readout. Then drag it over 40 positions at once.
    const root = document.querySelector(".jp-OutputArea .bplib-lab-box");
    const slider = root.querySelector('[name="lr"]');
    const readout = root.querySelector(".bplib-lab-readout");
    const choices = bplibLab.liveChoices({kind: "log", min: 0.001, max: 3});
    const times = [], seen = [];
    new MutationObserver(() => seen.push(readout.textContent))
        .observe(readout, {childList: true, characterData: true, subtree: true});
    function move(value, then) {
        const start = performance.now(), before = readout.textContent;
        slider.value = choices.indexOf(value);
        slider.dispatchEvent(new Event("input"));
        const wait = () => (readout.textContent !== before ? then(performance.now() - start)
                                                           : setTimeout(wait, 1));
        wait();
    }
    function round(k) {
        if (k === 20) return drag();
        move(k % 2 ? 0.1 : 1.5, ms => { times.push(ms); round(k + 1); });
    }
    function drag() {
        seen.length = 0;
        for (let i = 0; i < 40; i++) { slider.value = i; slider.dispatchEvent(new Event("input")); }
        setTimeout(() => done({times, seen, value: choices[39], last: readout.textContent}),
                   3000);
    }
    round(0);
})"""


def test_live_lab_in_jupyterlab(browser, lab):  # noqa: F811
    """The anywidget view in JupyterLab with a real kernel: a slider update comes back redrawn
    (median ms printed; the issue's target is 50 ms), and a fast drag costs a few frames, the
    last one for where the slider stopped."""
    import nbformat

    path = lab_notebook("lab_live_test", [nbformat.v4.new_code_cell(
        "from bpcourse.widgets import lr_lab; lr_lab()")])
    page, problems = visit(browser, f"{lab}/lab/tree/{path}?token={TOKEN}")
    try:
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell .cm-content", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        run_first_cell(page)
        page.wait_for_selector(".jp-OutputArea .bplib-lab-box canvas", timeout=60_000)
        readout = page.locator(".jp-OutputArea .bplib-lab-readout")
        assert readout.inner_text().startswith("lr = 0.1 · SGD · 100 steps · seed 0 · final")
        assert page.locator(".jp-OutputArea .bplib-lab-note").inner_text().startswith("Live:")
        result = page.evaluate(LIVE)
        times = sorted(result["times"])
        print(f"live lr-lab update in JupyterLab: median {times[len(times) // 2]:.0f} ms, "
              f"max {times[-1]:.0f} ms over {len(times)}")
        assert times[len(times) // 2] < 500  # a sanity bound; make bench and this print report speed
        assert 1 <= len(result["seen"]) <= 10                  # not 40 frames, one per move
        assert result["last"].startswith(f"lr = {result['value']:.3g} · ")
        page.locator(".jp-OutputArea .bplib-lab-box").screenshot(
            path=str(SCREENSHOTS / "lab_live.png"))
        assert problems["console"] == [] and problems["blocked"] == [], problems
    except BaseException:
        page.screenshot(path=str(SCREENSHOTS / "lab_live_failure.png"))  # what blocked it
        raise
    finally:
        page.context.close()
        (ROOT / path).unlink()


def test_the_initialisation_lab_stays_usable_on_a_phone(browser, built_book):  # noqa: F811
    """At 390 x 844 in the built chapter 6: every control of the initialisation lab lies within
    the screen's width and the lab's box (nothing cut off), takes a tap, and moves with keys;
    each move redraws the picture."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        with serve(built_book[2]) as url:
            page.goto(f"{url}/{CHAPTER_LABS['init']}.html", wait_until="networkidle")
            root = page.locator('.bplib-lab[data-lab="init"]')
            root.locator("canvas").wait_for(timeout=20_000)
            box = root.locator(".bplib-lab-box").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390
            canvas = root.locator("canvas").bounding_box()
            assert box["x"] <= canvas["x"] and canvas["x"] + canvas["width"] <= box["x"] + box["width"]
            controls = root.locator(".bplib-lab-control, .bplib-lab-rerun")
            assert controls.count() == 6
            page.locator('.bplib-lab[data-lab="init"] [name="scheme"]').select_option("normal")
            for i in range(controls.count()):
                control = controls.nth(i)
                control.scroll_into_view_if_needed()
                r = control.bounding_box()
                assert r["x"] >= box["x"] and r["x"] + r["width"] <= box["x"] + box["width"], \
                    (control.get_attribute("name"), r, box)
                assert r["height"] >= 16, (control.get_attribute("name"), r)  # a finger's target
                before = shown(page, "init")
                kind = control.evaluate("e => e.tagName + (e.type ? ':' + e.type : '')")
                if kind == "INPUT:range":
                    control.tap(position={"x": 2, "y": r["height"] / 2})   # the track's start
                    tapped = shown(page, "init")
                    assert control.evaluate("e => Number(e.value)") == 0, kind
                    control.focus()
                    page.keyboard.press("ArrowRight")
                    assert control.evaluate("e => Number(e.value)") == 1
                    assert shown(page, "init")["picture"] != tapped["picture"]
                elif kind.startswith("SELECT"):
                    there, back = (("ArrowUp", "ArrowDown") if control.evaluate(
                        "e => e.selectedIndex > 0") else ("ArrowDown", "ArrowUp"))
                    control.focus()
                    page.keyboard.press(there)
                    assert shown(page, "init")["picture"] != before["picture"], kind
                    page.keyboard.press(back)  # back: sigma counts only for normal weights
                    assert shown(page, "init")["picture"] == before["picture"], kind
                else:  # the rerun button
                    control.tap()
                    assert shown(page, "init")["readout"].endswith("identical result")
            page.screenshot(path=str(SCREENSHOTS / "lab_init_390.png"), full_page=False)
    finally:
        context.close()
