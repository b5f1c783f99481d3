/* bpcourse/live.js: run the page's code cells in the reader's browser.

   The page carries its code cells as JSON (tools/book_live.py). Each visible cell gets a Run
   button and becomes editable in place; its output appears under it. Python runs in a worker
   (worker.js, Pyodide served by the site), started on the first Run or by "Make this page
   live", never before; where the browser allows, the book's pages share it, so the next page
   finds Python running, each page with a Python state of its own. Cells share one namespace, in page order: running a cell runs
   the cells above it that have not run yet, first. Edits are kept in the browser's storage
   until Reset. In an exercise, the learner edits a copy of the stub; the reference solution
   stays folded and is never run. Once Python is up, the labs compute any setting with it. */
(function () {
  "use strict";
  const script = document.getElementById("bp-live-config");
  if (!script) return;
  const config = JSON.parse(script.textContent);
  const base = new URL(config.root, location.href).href;
  const store = `bp-live:${config.page}:`;
  const fromFile = location.protocol === "file:";
  const FILE_HINT = "This page was opened as a file, and browsers do not run the page's Python "
    + "from files. In the repository, run `make serve` and open the address it prints.";

  // ---- the worker ----------------------------------------------------------------------------
  // One Python for the whole book where the browser has shared workers (worker.js says how), so
  // that the next page finds it running; this page is a session of its own in it. A shared Python
  // that does not answer at once is busy (a long cell of a page the reader left, say): this page
  // then starts a new one, and the pages opened after it use that one.
  const page = `${config.page} ${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
  const GENERATION = "bp-live:python";  // which shared Python the book's pages use now
  const HELLO_MS = 3000;
  let port = null, booting = null, nextId = 0;
  const waiting = new Map();

  function connect(generation) {
    if (typeof SharedWorker === "undefined") {
      const worker = new Worker(base + "live/worker.js");
      return Promise.resolve({ port: worker, target: worker });
    }
    const name = `bp-python ${config.wheel} ${generation}`;
    const worker = new SharedWorker(base + "live/worker.js", { name, extendedLifetime: true });
    worker.port.start();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        worker.port.close();
        const next = generation + 1;
        localStorage.setItem(GENERATION, String(next));
        resolve(connect(next));
      }, HELLO_MS);
      worker.port.onmessage = ({ data }) => {
        if (data.type !== "hello") return;
        clearTimeout(timer);
        resolve({ port: worker.port, target: worker });
      };
      worker.port.postMessage({ type: "hello" });
    });
  }

  function start() {
    if (booting) return booting;
    if (fromFile) {
      status(FILE_HINT, "error");
      return Promise.reject(new Error(FILE_HINT));
    }
    status("Python: connecting…", "busy");
    const generation = Number(localStorage.getItem(GENERATION)) || 0;
    booting = connect(generation).then((connection) => boot(connection, generation));
    return booting;
  }

  function boot({ port: p, target }, generation) {
    return new Promise((resolve, reject) => {
      port = p;
      port.onmessage = ({ data }) => {
        if (data.type === "progress") status(`Python: ${data.text}…`, "busy");
        else if (data.type === "ready") {
          status(data.phases.reused ? "Python is running for this page (already started)."
            : `Python is running in this page (started in ${(data.ms / 1000).toFixed(1)} s).`, "ok");
          document.documentElement.dataset.bpLive = "ready";
          window.bpLive.phases = data.phases;  // ms from the start to each stage (make bench)
          resolve();
          goLiveLabs();
        } else if (data.type === "failed" && data.stale) {  // an older build's Python
          localStorage.setItem(GENERATION, String(generation + 1));
          resolve(connect(generation + 1).then((c) => boot(c, generation + 1)));
        } else if (data.type === "failed") {
          status(`Python could not start: ${data.text}`, "error");
          reject(new Error(data.text));
        } else if (waiting.has(data.id)) {
          waiting.get(data.id)(data);
          waiting.delete(data.id);
        }
      };
      target.onerror = (event) => {
        status(`Python could not start: ${event.message || "the worker failed to load"}`, "error");
        reject(new Error(event.message));
      };
      port.postMessage({ type: "boot", root: base, wheel: config.wheel });
    });
  }

  function ask(message) {
    const id = ++nextId;
    return new Promise((resolve) => {
      waiting.set(id, resolve);
      port.postMessage({ ...message, id, page });
    });
  }

  // Leaving the page ends its session; a page kept to come back to (the back button) keeps it,
  // and reruns its cells when next asked, in case the session was forgotten meanwhile.
  addEventListener("pagehide", (event) => {
    if (port && !event.persisted) port.postMessage({ type: "bye", page });
  });
  addEventListener("pageshow", (event) => {
    if (event.persisted) for (const cell of cells) cell.ran = false;
  });

  // ---- the bar at the top of the page --------------------------------------------------------
  const bar = document.createElement("div");
  bar.className = "bp-live-bar";
  const goButton = button("▶ Make this page live", "Start Python in this page (about 20 MB, "
    + "downloaded once): then every code cell runs here, and the labs compute any setting.");
  const state = document.createElement("span");
  state.className = "bp-live-state";
  state.setAttribute("role", "status");
  bar.append(goButton, state);
  goButton.addEventListener("click", () => start().catch(() => {}));
  const article = document.querySelector("article") || document.querySelector("main") || document.body;
  article.prepend(bar);
  status(fromFile ? FILE_HINT : "The code on this page can run in your browser: press ▶ Run "
    + "on any cell, edit it, run it again.", fromFile ? "error" : "");

  function status(text, kind) {
    state.textContent = text;
    bar.dataset.state = kind || "";
    if (kind === "ok" || kind === "busy") goButton.hidden = true;
  }

  function button(text, title) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.title = title;
    return b;
  }

  // ---- cells -----------------------------------------------------------------------------------
  const cells = config.cells.map((c, position) => ({ ...c, position, ran: false,
    el: document.querySelector(`.bp-cell-${c.index}`) }));

  // A cell the build ran but the page cannot (it needs PyTorch): not in config.cells; it says so.
  for (const el of document.querySelectorAll(".cell.tag_not-in-page")) {
    const note = document.createElement("div");
    note.className = "bp-not-in-page";
    note.textContent = "This cell does not run in the page: it needs PyTorch, which does not run "
      + "in the browser. Its output is the one the book's build computed; in JupyterLab it runs.";
    (el.querySelector(".cell_input") || el).after(note);
  }

  for (const cell of cells) {
    if (!cell.el) continue;  // removed from the page: it still runs, in order, unseen
    if (cell.stub !== undefined) addAnswer(cell);
    else if (cell.el.querySelector(".cell_input pre")) makeEditable(cell);
  }

  // An ordinary cell: its own code block becomes the editor.
  function makeEditable(cell) {
    const code = cell.el.querySelector(".cell_input pre");
    cell.editor = code;
    cell.original = code.innerHTML;
    cell.staticOutput = cell.el.querySelector(".cell_output");
    mountTools(cell, cell.el.querySelector(".cell_input"));
  }

  // A solution cell: the learner's answer is a new editor holding the stub, placed before the
  // folded reference solution, which stays as it is.
  function addAnswer(cell) {
    const box = document.createElement("div");
    box.className = "bp-answer";
    const label = document.createElement("div");
    label.className = "bp-answer-label";
    label.textContent = "Your answer (runs in this page; your edits are kept in this browser)";
    const code = document.createElement("pre");
    code.textContent = cell.stub;
    box.append(label, code);
    cell.el.before(box);
    cell.editor = code;
    cell.original = code.innerHTML;
    mountTools(cell, code);
  }

  function mountTools(cell, input) {
    const code = cell.editor;
    code.contentEditable = "plaintext-only";
    code.spellcheck = false;
    code.classList.add("bp-editor");
    code.setAttribute("aria-label", "code cell: edit, then run with Shift+Enter");
    const tools = document.createElement("div");
    tools.className = "bp-tools";
    const run = button("▶ Run", "Run this cell in your browser (Shift+Enter in the cell)");
    const reset = button("↺ Reset", "Back to the book's code and output");
    run.className = "bp-run";
    reset.className = "bp-reset";
    reset.hidden = true;
    tools.append(run, reset);
    input.after(tools);
    cell.out = document.createElement("div");
    cell.out.className = "bp-output";
    cell.out.hidden = true;
    tools.after(cell.out);
    cell.reset = reset;
    run.addEventListener("click", () => runThrough(cell));
    reset.addEventListener("click", () => {
      code.innerHTML = cell.original;
      localStorage.removeItem(store + cell.index);
      cell.out.hidden = true;
      cell.out.replaceChildren();
      delete cell.out.dataset.state;
      if (cell.staticOutput) cell.staticOutput.hidden = false;
      reset.hidden = true;
    });
    code.addEventListener("input", () => {
      localStorage.setItem(store + cell.index, code.innerText);
      reset.hidden = false;
    });
    code.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.shiftKey) {
        event.preventDefault();
        runThrough(cell);
      }
    });
    const saved = localStorage.getItem(store + cell.index);
    if (saved !== null) {
      code.textContent = saved;
      reset.hidden = false;
    }
  }

  // A folded cell (tag hide-input) is not rendered, and the innerText of what is not rendered is
  // empty: its code is then its textContent.
  function sourceOf(cell) {
    if (!cell.editor) return cell.source;
    const text = cell.editor.innerText.trim() ? cell.editor.innerText : cell.editor.textContent;
    return text.replace(/\u00a0/g, " ");
  }

  // Run the cells above that have not run yet, in order, then this one.
  let running = Promise.resolve();
  function runThrough(target) {
    running = running.then(() => runChain(target)).catch((err) => {
      show(target, [{ type: "error", traceback: `This page could not run the cell: ${err}` }], "error");
    });
    return running;
  }

  // Each output element says where its cell is: data-state "running", then "done" or "error".
  async function runChain(target) {
    show(target, [{ type: "note", text: booting ? "waiting for Python…" : "starting Python…" }], "running");
    try {
      await start();
    } catch (err) {
      show(target, [{ type: "error", traceback: String(err.message || err) }], "error");
      return;
    }
    for (const cell of cells.slice(0, target.position)) {
      if (cell.ran) continue;
      show(target, [{ type: "note", text: `running the cell${cell.el ? "" : " (hidden)"} above first…` }], "running");
      const outputs = await execute(cell);
      if (outputs.some((o) => o.type === "error") && !cell.tags.includes("raises-exception")) {
        const why = [{ type: "error", traceback: "Not run: a cell above raised an error (see "
          + "its output). Fix it or reset it, then run this cell again." }];
        show(target, cell.el ? why : why.concat(outputs), "error");
        return;
      }
    }
    show(target, [{ type: "note", text: "running…" }], "running");
    await execute(target);
  }

  async function execute(cell) {
    const reply = await ask({ type: "run", source: sourceOf(cell), name: `<cell ${cell.position + 1}>` });
    cell.ran = true;
    cell.ms = reply.ms;  // Python's time for the cell, in the worker (make bench reads it)
    const failed = reply.outputs.some((o) => o.type === "error");
    show(cell, reply.outputs.length ? reply.outputs : [{ type: "none", text: "done, no output" }],
         failed ? "error" : "done");
    return reply.outputs;
  }

  // A graph or a lab draws itself after a moment: the state says "done" once it has.
  function show(cell, outputs, phase) {
    if (!cell.out) return;
    const drawing = [];
    cell.out.replaceChildren(...outputs.map((output) => render(output, drawing)));
    cell.out.dataset.state = drawing.length ? "running" : phase;
    Promise.all(drawing).then(() => { if (cell.out.dataset.state === "running") cell.out.dataset.state = phase; });
    cell.out.hidden = false;
    if (cell.staticOutput) cell.staticOutput.hidden = true;
    if (cell.reset) cell.reset.hidden = false;
  }

  function render(output, drawing) {
    const el = document.createElement("div");
    el.className = `bp-out bp-out-${output.type}`;
    if (output.type === "stream") {
      el.classList.add(`bp-out-${output.name}`);
      el.append(pre(output.text));
    } else if (output.type === "error") {
      el.append(pre(output.traceback));
    } else if (output.type === "note" || output.type === "none") {
      el.textContent = output.text;
    } else if (output.type === "display") {
      const data = output.data;
      if (data["application/vnd.bplib.lab+json"]) drawing.push(mountLab(el, data["application/vnd.bplib.lab+json"]));
      else if (data["text/vnd.graphviz"]) drawing.push(drawGraph(el, data["text/vnd.graphviz"]));
      else if (data["image/svg+xml"]) el.innerHTML = data["image/svg+xml"];
      else if (data["text/html"]) el.innerHTML = data["text/html"];
      else el.append(pre(data["text/markdown"] || data["text/plain"] || ""));
    }
    return el;
  }

  // Graphviz compiled to WebAssembly (npm @hpcc-js/wasm-graphviz, served by the site), loaded
  // the first time a cell draws a graph.
  let graphviz = null;
  function drawGraph(el, dot) {
    el.textContent = "drawing the graph…";
    graphviz = graphviz || import(base + "graphviz/index.js").then((m) => m.Graphviz.load());
    return graphviz.then((gv) => { el.innerHTML = gv.dot(dot); })
      .catch((err) => { el.replaceChildren(pre(`could not draw the graph: ${err}`)); });
  }

  function pre(text) {
    const p = document.createElement("pre");
    p.textContent = text;
    return p;
  }

  // ---- labs --------------------------------------------------------------------------------------
  // A lab made by a cell run in the page: drawn by lab.js (loaded here if the page has no lab),
  // its frames computed by the page's Python.
  let labScript = null;
  function mountLab(el, { spec, controls }) {
    const root = document.createElement("div");
    root.className = "bplib-lab bp-page-lab";
    el.append(root);
    labScript = labScript || (window.bplibLab ? Promise.resolve() : new Promise((resolve, reject) => {
      const s = document.createElement("script");
      Object.assign(s, { src: base + "live/lab.js", onload: resolve, onerror: reject });
      document.head.append(s);
    }));
    return labScript.then(() => { window.bplibLab.mountPage(root, spec, controls, computeFrame); })
      .catch((err) => { el.replaceChildren(pre(`could not draw the lab: ${err}`)); });
  }

  function computeFrame(lab, controls) {
    return ask({ type: "frame", lab, controls }).then((reply) => reply.frame);
  }

  function goLiveLabs() {
    if (!window.bplibLab || !window.bplibLab.goLive) return;
    for (const root of document.querySelectorAll(".bplib-lab")) {
      if (!root.bplibLab || root.bplibLab.live) continue;
      window.bplibLab.goLive(root, computeFrame);
    }
  }

  // Every cell of the page, hidden ones included (make bench times them).
  function runAll() {
    return runThrough(cells[cells.length - 1]);
  }

  window.bpLive = { start, runThrough, runAll, cells };
})();
