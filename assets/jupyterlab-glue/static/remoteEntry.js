/* bpcourse-glue: the values a chapter glued, shown in JupyterLab; also a Run All pressed
   while the kernel is still starting, run once it has started, and one shim for
   jupyterlab-myst (each below).

   The chapters quote numbers with myst-nb's roles, {glue:text}`name:format` (and {glue}`name`),
   filled in by the book build from what the code cells glued. In JupyterLab, jupyterlab-myst
   renders Markdown cells but knows no glue roles: it shows a role's text, "name:format". This
   plugin puts the value there once the cell that glued it has run ("[not run yet]" before), taking
   it from that cell's output, as myst-nb does: glue(name, value, display=False) leaves an
   output whose "application/papermill.record/text/plain" is repr(value); the format is Python's
   format spec, applied as myst-nb's format_plain_text does.

   No build step: this file is a prebuilt JupyterLab extension written by hand. JupyterLab
   loads it, calls init() with its shared modules (this plugin needs none) and get("./extension"),
   whose module exports the plugin. The Makefile's venv step copies this folder into the
   environment's share/jupyter/labextensions/. */
(function () {
  "use strict";
  const ROLE = /\{glue(?::text)?\}`([^`]+)`/g;
  const RECORD = "application/papermill.record/text/plain";
  const UNRUN = "[not run yet]";  // where a value will be once its cell has run
  const SPEC = /^(?:(.)?([<>^]))?([+\- ])?(#)?(0)?(\d+)?([,_])?(?:\.(\d+))?([deEfFgG%s])?$/;

  // repr(value) read back as myst-nb reads it (ast.literal_eval): numbers, quoted strings,
  // True/False/None; anything else stays as it is.
  function literal(text) {
    const t = text.trim();
    if (/^[-+]?(\d[\d_]*\.?\d*(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?)$/i.test(t)) return Number(t.replace(/_/g, ""));
    const quoted = /^(['"])(.*)\1$/s.exec(t);
    if (quoted) return quoted[2].replace(/\\(['"\\])/g, "$1");
    return { True: true, False: false, None: null }[t] ?? t;
  }

  // JavaScript rounds a tie (a double exactly halfway, like 0.125 to 2 places) up, Python to
  // the even digit. Both round the exact binary value, so only such ties differ: rounded(x, n,
  // how) is how(x, n), or the tie cut down where Python would keep the even digit.
  function rounded(x, digits, how) {
    const long = how.call(x, Math.min(100, digits + 30)), [mantissa, exp] = long.split("e");
    const point = mantissa.indexOf("."), keep = digits ? point + 1 + digits : point;
    const even = Number(mantissa[keep - 1]) % 2 === 0;
    if (/^50*$/.test(mantissa.slice(point + 1 + digits)) && even) {
      return mantissa.slice(0, keep) + (exp === undefined ? "" : `e${exp}`);
    }
    return how.call(x, digits);
  }

  // toFixed turns to exponents from 1e21 on; such a double is an integer: its exact digits.
  function fixed(x, digits) {
    if (Math.abs(x) < 1e21) return rounded(x, digits, Number.prototype.toFixed);
    return BigInt(x).toString() + (digits ? "." + "0".repeat(digits) : "");
  }

  // Python's exponent form: at least two exponent digits (1e-07, 2.5e+10).
  function exponential(x, digits) {
    return rounded(x, digits, Number.prototype.toExponential).replace(/e([-+])(\d)$/, "e$10$2");
  }

  // Trailing zeros of the mantissa dropped (with the point, if nothing follows it).
  function stripZeros(text) {
    const [mantissa, exp] = text.split("e");
    const m = mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa;
    return exp === undefined ? m : `${m}e${exp}`;
  }

  // Python's "g": fixed or exponential by the decimal exponent after rounding to the precision.
  function general(x, precision, alternate) {
    const p = precision === 0 ? 1 : precision;
    const exp = x === 0 ? 0 : Number(exponential(x, p - 1).split("e")[1]);
    const out = exp >= -4 && exp < p ? fixed(x, p - 1 - exp) : exponential(x, p - 1);
    return alternate ? out : stripZeros(out);
  }

  // format(value, spec), Python's format mini-language for strings, integers and floats
  // (types s, d, e, E, f, F, g, G, %, or none; fill, align, sign, #, 0, width, "," or "_").
  function pyFormat(value, spec) {
    const m = SPEC.exec(spec);
    if (!m) throw new Error(`format spec ${spec} is not supported here`);
    const [, fill = " ", align, sign = "-", alternate, zero, width = "0", group, prec, type = ""] = m;
    const text = typeof value === "string";
    let body;
    if (type === "s" || text) body = typeof value === "boolean" ? (value ? "True" : "False") : String(value);
    else {
      const x = value, a = Math.abs(x);
      const p = prec === undefined ? 6 : Number(prec);
      if (!isFinite(x)) body = (isNaN(x) ? "nan" : "inf") + (type === "%" ? "%" : "");
      else if (type === "d") body = fixed(a, 0);
      else if (type === "f" || type === "F") body = fixed(a, p);
      else if (type === "e" || type === "E") body = exponential(a, p);
      else if (type === "%") body = fixed(a * 100, p) + "%";
      else if (type === "" && prec === undefined) body = String(a);
      else body = general(a, p, Boolean(alternate));
      if (group) {
        const [, whole, rest] = /^(\d*)(.*)$/.exec(body);
        body = whole.replace(/\B(?=(\d{3})+$)/g, group) + rest;
      }
      if (type === "E" || type === "F" || type === "G") body = body.toUpperCase();
      const mark = x < 0 ? "-" : sign === "-" ? "" : sign;
      if (zero && !align) body = body.padStart(Number(width) - mark.length, "0");
      body = mark + body;
    }
    const room = Math.max(0, Number(width) - body.length), pad = (n) => fill.repeat(n);
    const side = align || (text ? "<" : ">");
    if (side === "<") return body + pad(room);
    if (side === "^") return pad(Math.floor(room / 2)) + body + pad(Math.ceil(room / 2));
    return pad(room) + body;
  }

  // Python's float(): also "inf", "-inf" and "nan".
  function toFloat(value) {
    const special = { inf: Infinity, "+inf": Infinity, "-inf": -Infinity, nan: NaN };
    const key = String(value).trim().toLowerCase();
    return key in special ? special[key] : Number(value);
  }

  // myst-nb's format_plain_text: the repr read back, converted by the spec's type, formatted;
  // with no spec, str() of it (a float's repr is its str).
  function formatGlued(text, spec) {
    const value = literal(text), type = spec.slice(-1);
    if (spec === "") return typeof value === "string" ? value : text.trim();
    if (type === "d") return pyFormat(Math.trunc(toFloat(value)), spec);
    return pyFormat("eEfFgG%".includes(type) ? toFloat(value) : value, spec);
  }

  // The values the code cells of one notebook glued so far: name -> repr.
  function gluedValues(notebook) {
    const values = new Map();
    for (const cell of notebook.widgets) {
      if (cell.model.type !== "code") continue;
      for (const output of cell.model.outputs.toJSON()) {
        const name = output.metadata && output.metadata.scrapbook && output.metadata.scrapbook.name;
        const data = output.data || {};
        const text = data[RECORD] ?? data["text/plain"];
        if (name && text !== undefined) values.set(name, Array.isArray(text) ? text.join("") : text);
      }
    }
    return values;
  }

  // Every glue role of one rendered Markdown cell: jupyterlab-myst shows it as a bare span
  // whose text is the role's content; the span keeps that content in data-bp-glue. Only the
  // rendered Markdown (class "myst"), never the cell's editor: CodeMirror would take a change
  // of its spans for an edit.
  function fill(cell, values) {
    const roles = new Set([...cell.model.sharedModel.getSource().matchAll(ROLE)].map((m) => m[1]));
    if (!roles.size) return;
    for (const span of cell.node.querySelectorAll(".myst span")) {
      if (span.closest(".cm-editor")) continue;
      const content = span.dataset.bpGlue ?? (span.childElementCount ? null : span.textContent);
      if (!roles.has(content)) continue;
      const at = content.indexOf(":"), name = at < 0 ? content : content.slice(0, at);
      let text, title;
      if (values.has(name)) {
        try {
          text = formatGlued(values.get(name), at < 0 ? "" : content.slice(at + 1));
          title = "";
        } catch (err) {
          [text, title] = [values.get(name), String(err)];
        }
      } else {
        [text, title] = [UNRUN, `${name}: run the code cells above to see this value`];
      }
      span.dataset.bpGlue = content;
      span.classList.add("bp-glue");
      span.title = title;
      if (span.textContent !== text) span.textContent = text;
    }
  }

  // JupyterLab's cell toolbar measures a rendered Markdown cell through its input area's
  // renderedInput, which jupyterlab-myst's cells leave undefined (a TypeError each time such a
  // cell is selected): then it falls back to the cell's MyST rendering (or, before that is
  // drawn, the input area). Patched once, on the input areas' class.
  function shimRenderedInput(cell) {
    const proto = cell.inputArea && Object.getPrototypeOf(cell.inputArea);
    const own = proto && Object.getOwnPropertyDescriptor(proto, "renderedInput");
    if (!own || !own.get || own.get.bpShim) return;
    const get = function () {
      const cellNode = this.node.closest(".jp-MarkdownCell");
      const myst = cellNode && cellNode.querySelector(".myst");
      return own.get.call(this) ?? { node: myst || this.node };
    };
    get.bpShim = true;
    Object.defineProperty(proto, "renderedInput", { ...own, get });
  }

  function refresh(app) {
    for (const widget of app.shell.widgets("main")) {
      const notebook = widget.content;
      if (!notebook || !notebook.widgets || !notebook.model) continue;
      let values = null;
      for (const cell of notebook.widgets) {
        if (cell.model.type !== "markdown") continue;
        shimRenderedInput(cell);
        if (!cell.node.isConnected) continue;
        values = values || gluedValues(notebook);
        fill(cell, values);
      }
    }
  }

  // Run All (or Restart and Run All) pressed while the notebook's kernel is still starting:
  // JupyterLab drops the run of every cell it finds without a connected kernel, and a lab's
  // widget displayed before the widget manager is attached to the kernel is "not found". So a
  // run asked for then is asked for again once the kernel is connected and idle and the page
  // has settled, unless some cell has run or is running by then.
  const RUN_ALL = new Set(["notebook:run-all-cells", "notebook:restart-run-all",
                           "notebook:run-all-above", "notebook:run-all-below"]);
  const SETTLE_MS = 1000;

  function kernelReady(context) {
    const kernel = context.session && context.session.kernel;
    return Boolean(kernel) && kernel.connectionStatus === "connected" && kernel.status === "idle";
  }

  function anyCellRan(notebook) {
    return notebook.widgets.some((cell) => cell.model.type === "code"
      && (cell.model.executionCount !== null || cell.model.executionState === "running"));
  }

  function runWhenReady(app, id, args) {
    const panel = app.shell.currentWidget, context = panel && panel.sessionContext;
    if (!context || !panel.content || kernelReady(context)) return;
    const poll = setInterval(() => {
      if (panel.isDisposed) { clearInterval(poll); return; }
      if (!kernelReady(context)) return;
      clearInterval(poll);
      setTimeout(() => {
        if (!panel.isDisposed && !anyCellRan(panel.content)) {
          app.shell.activateById(panel.id);
          void app.commands.execute(id, args);
        }
      }, SETTLE_MS);
    }, 100);
  }

  const plugin = {
    id: "bpcourse-glue:plugin",
    description: "Shows glued values in rendered Markdown cells",
    autoStart: true,
    activate(app) {
      // Cells render (and re-render) at any time: look again, at most every 100 ms, after
      // any change in the page.
      let pending = false, first = true;
      const observer = new MutationObserver(() => {
        if (first && app.shell.currentWidget && app.shell.currentWidget.content) {
          first = false;
          refresh(app);  // at once: the shim above is needed from the first selected cell on
        }
        if (pending) return;
        pending = true;
        setTimeout(() => {
          pending = false;
          refresh(app);
          observer.takeRecords();
        }, 100);
      });
      app.commands.commandExecuted.connect((_, { id, args }) => {
        if (RUN_ALL.has(id)) runWhenReady(app, id, args);
      });
      app.restored.then(() => {
        observer.observe(document.body, { childList: true, subtree: true, characterData: true });
        refresh(app);
      });
    },
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB["bpcourse-glue"] = {
    init: () => Promise.resolve(),
    get: () => Promise.resolve(() => ({ __esModule: true, default: [plugin] })),
  };
  window.bpcourseGlue = { pyFormat, formatGlued };  // for the tests
})();
