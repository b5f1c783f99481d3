/* bpcourse/worker.js: the page's Python, in a Web Worker so that the page never freezes.

   Started by live.js with {type: "boot", root}: loads Pyodide from <root>pyodide/ (served by the
   site itself), numpy and matplotlib, unpacks the wheel of bplib and bpcourse, and installs
   bpcourse.browser. Then each {type: "run", id, source, name} runs one cell and answers
   {type: "done", id, outputs, ms}; {type: "frame", id, lab, controls} computes a lab's frame.
   Messages are handled one at a time, in the order they came. */
let python = null;
let queue = Promise.resolve();

function say(text) {
  postMessage({ type: "progress", text });
}

async function boot({ root, wheel }) {
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
  return phases;
}

async function handle(m) {
  if (m.type === "boot") {
    try {
      const phases = await boot(m);
      postMessage({ type: "ready", ms: phases.ready, phases });
    } catch (err) {
      postMessage({ type: "failed", text: String(err) });
    }
    return;
  }
  if (!python) {
    postMessage({ type: "done", id: m.id, outputs: [{ type: "error", ename: "RuntimeError",
      evalue: "Python did not start", traceback: "Python did not start in this page." }] });
    return;
  }
  const started = performance.now();
  const browser = python.pyimport("bpcourse.browser");
  try {
    if (m.type === "run") {
      const outputs = JSON.parse(browser.run_cell(m.source, m.name));
      postMessage({ type: "done", id: m.id, outputs, ms: performance.now() - started });
    } else if (m.type === "frame") {
      const frame = JSON.parse(browser.lab_frame(m.lab, JSON.stringify(m.controls)));
      postMessage({ type: "frame", id: m.id, frame, ms: performance.now() - started });
    }
  } catch (err) {
    postMessage({ type: "done", id: m.id, outputs: [{ type: "error", ename: "Error",
      evalue: String(err), traceback: String(err) }] });
  } finally {
    browser.destroy();
  }
}

self.onmessage = (event) => {
  queue = queue.then(() => handle(event.data));
};
