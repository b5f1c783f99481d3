/* bpcourse/worker.js: the book's Python, in a worker so that the page never freezes.

   live.js starts it as a SharedWorker where the browser has them: then one Python serves every
   page of the book open in this browser, and (where the browser keeps a shared worker alive for
   a while after its last page has gone, as Chromium does when asked with `extendedLifetime`)
   the next page the reader opens finds Python already running. Each page is a session of its
   own in bpcourse.browser, as if it had a Python to itself. Where there are no shared workers,
   it is an ordinary Worker of one page, started and ended with it.

   Each page sends {type: "boot", root, wheel}: the first one loads Pyodide from <root>pyodide/
   (served by the site itself), numpy and matplotlib, unpacks the wheel of bplib and bpcourse and
   installs bpcourse.browser; later ones find it done. Then {type: "run", id, page, source, name}
   runs one cell and answers {type: "done", id, outputs, ms}; {type: "frame", id, page, lab,
   controls} computes a lab's frame; {type: "hello"} is answered at once when Python is idle
   (a page that gets no answer knows it is busy); {type: "bye", page} forgets a page that has
   gone, and drops what it had asked for and not yet got. Messages are handled one at a time, in
   the order they came, whichever page sent them. */
let python = null, booting = null, wheelLoaded = null;
let queue = Promise.resolve();
const gone = new Set();  // pages that said bye

async function boot({ root, wheel }, say) {
  const started = performance.now(), phases = {};
  const lap = (name) => { phases[name] = Math.round(performance.now() - started); };
  say("loading Python (Pyodide)");
  importScripts(root + "pyodide/pyodide.js");
  // Each cell's printed text is collected by bpcourse.browser; what Python prints outside a
  // cell (while starting) is not for the console.
  const py = await loadPyodide({ indexURL: root + "pyodide/", stdout: () => {}, stderr: () => {} });
  lap("python");
  say("loading numpy and matplotlib");
  await py.loadPackage(["numpy", "matplotlib"], { messageCallback: () => {}, errorCallback: say });
  lap("packages");
  say("loading bplib");
  const [lib, digits] = await Promise.all([
    fetch(root + "live/" + wheel).then((r) => r.arrayBuffer()),
    fetch(root + "live/digits.npz").then((r) => r.arrayBuffer()),
  ]);
  py.unpackArchive(lib, "wheel");
  py.FS.writeFile("/home/pyodide/digits.npz", new Uint8Array(digits));
  lap("library");
  py.runPython("import bpcourse.browser\nbpcourse.browser.install('/home/pyodide/digits.npz')");
  lap("ready");
  python = py;
  wheelLoaded = wheel;
  return phases;
}

async function handle(m, port) {
  const reply = (message) => port.postMessage(message);
  if (m.type === "boot") {
    const first = !booting;
    booting = booting || boot(m, (text) => reply({ type: "progress", text }));
    try {
      const phases = await booting;
      if (m.wheel !== wheelLoaded) {  // a page of a newer build: it needs a Python of its own
        reply({ type: "failed", stale: true, text: "this Python runs an older build of the book" });
      } else {
        reply({ type: "ready", ms: first ? phases.ready : 0, phases: first ? phases : { reused: true } });
      }
    } catch (err) {
      reply({ type: "failed", text: String(err) });
    }
    return;
  }
  if (m.type === "bye") {
    if (python) python.pyimport("bpcourse.browser").end_session(m.page);
    return;
  }
  if (gone.has(m.page)) return;  // asked by a page that has gone: nobody waits for the answer
  if (!python) {
    reply({ type: "done", id: m.id, outputs: [{ type: "error", ename: "RuntimeError",
      evalue: "Python did not start", traceback: "Python did not start in this page." }] });
    return;
  }
  const started = performance.now();
  const browser = python.pyimport("bpcourse.browser");
  try {
    if (m.type === "run") {
      const outputs = JSON.parse(browser.run_cell(m.source, m.name, m.page));
      reply({ type: "done", id: m.id, outputs, ms: performance.now() - started });
    } else if (m.type === "frame") {
      const frame = JSON.parse(browser.lab_frame(m.lab, JSON.stringify(m.controls), m.page));
      reply({ type: "frame", id: m.id, frame, ms: performance.now() - started });
    }
  } catch (err) {
    reply({ type: "done", id: m.id, outputs: [{ type: "error", ename: "Error",
      evalue: String(err), traceback: String(err) }] });
  } finally {
    browser.destroy();
  }
}

function listen(port) {
  port.onmessage = ({ data }) => {
    if (data.type === "hello") port.postMessage({ type: "hello" });  // not queued: Python idle
    else {
      if (data.type === "bye") gone.add(data.page);  // at once: what it asked for is dropped
      queue = queue.then(() => handle(data, port));
    }
  };
}

if (typeof SharedWorkerGlobalScope !== "undefined" && self instanceof SharedWorkerGlobalScope) {
  self.onconnect = (event) => {
    const port = event.ports[0];
    listen(port);
    port.start();
  };
} else {
  listen(self);
}
