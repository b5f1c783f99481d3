/* bpcourse/lab.js: draws the frames of the book's labs (computed by bpcourse/labs.py) on a canvas, with
   the controls that choose them. Plain JavaScript, no libraries, no network.

   One source, two hosts:
   - the static book: a classic script element inside the lab's element calls
     bplibLab.mountStatic(element); the frames were precomputed over a grid of the controls and
     sit in the element as JSON, so a control looks its frame up;
   - JupyterLab: bpcourse/widgets.py appends `export default {render}` and runs this as the ES
     module of an anywidget; a control sends its value to the kernel, which sends a frame back. */
(function () {
  "use strict";
  const COLOR = { plain: "#1f77b4", residual: "#ff7f0e", path: "#d62728", data: "#888",
                  truth: "#2ca02c", ink: "#222", grid: "#e6e6e6" };
  const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  // The colours of the lab's frame: the book theme's (pydata-sphinx-theme), else JupyterLab's.
  const THEME = { text: "var(--pst-color-text-base, var(--jp-ui-font-color1, #222))",
                  muted: "var(--pst-color-text-muted, var(--jp-ui-font-color2, #444))",
                  border: "var(--pst-color-border, var(--jp-border-color1, #ccc))",
                  surface: "var(--pst-color-surface, var(--jp-layout-color1, #fafafa))" };
  const WIDEST = 900;
  // The panels of each lab in drawing order, as [narrowest width, height]: as many panels of a
  // kind share a row as the element's width allows (three or four on a wide screen).
  const PANELS = {
    lr: [[250, 330], [250, 330], [250, 330]],
    init: [[260, 300], [260, 300], [200, 250], [200, 250], [200, 250], [200, 250]],
    depth: [[260, 330], [260, 330]],
  };

  function layout(lab, W) {
    const kinds = PANELS[lab], boxes = [];
    let y = 0;
    for (let i = 0; i < kinds.length;) {
      const [least, h] = kinds[i];
      let n = 0;
      while (i + n < kinds.length && kinds[i + n][0] === least) n++;
      const fits = Math.max(1, Math.min(n, Math.floor(W / least)));
      const cols = Math.ceil(n / Math.ceil(n / fits)), w = W / cols;  // rows as even as can be
      for (let k = 0; k < n; k++) {
        boxes.push({ x: (k % cols) * w, y: y + Math.floor(k / cols) * h, w, h });
      }
      y += Math.ceil(n / cols) * h;
      i += n;
    }
    return { boxes, H: y };
  }

  // ---- numbers ----------------------------------------------------------------------------
  function fmt(v) {
    if (typeof v !== "number" || !isFinite(v)) return v === null ? "–" : String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(0).replace("e+", "e");
    return String(Number(v.toPrecision(3)));
  }
  const ok = (v, log) => v !== null && v !== undefined && isFinite(v) && (!log || v > 0);

  // [lo, hi] around the values drawn: whole decades on a log axis, 5% margins on a linear one.
  function extent(arrays, log) {
    const vals = [].concat(...arrays).filter((v) => ok(v, log));
    if (!vals.length) return log ? [0.1, 10] : [0, 1];
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (log) {
      const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
      return [10 ** a, 10 ** Math.max(b, a + 1)];
    }
    if (hi === lo) { lo -= 0.5; hi += 0.5; }
    return [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)];
  }

  function linearTicks(lo, hi, count = 5) {
    const raw = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw), out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) {
      out.push(Number(t.toPrecision(12)));
    }
    return out;
  }

  function logTicks(lo, hi) {
    const a = Math.round(Math.log10(lo)), b = Math.round(Math.log10(hi));
    const every = Math.ceil((b - a + 1) / 7), out = [];
    for (let k = a; k <= b; k += every) out.push(10 ** k);
    return out;
  }

  // The values a live control offers: round numbers on a log scale, every integer, the options.
  function liveChoices(c) {
    if (c.kind === "select") return c.grid;
    if (c.kind !== "log") return Array.from({ length: c.max - c.min + 1 }, (_, i) => c.min + i);
    const out = [];
    for (let k = Math.floor(Math.log10(c.min)); k <= Math.ceil(Math.log10(c.max)); k++) {
      for (const m of [1, 1.1, 1.2, 1.3, 1.5, 1.7, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9]) {
        const v = Number((m * 10 ** k).toPrecision(3));
        if (v >= c.min * (1 - 1e-9) && v <= c.max * (1 + 1e-9)) out.push(v);
      }
    }
    return out;
  }

  // The position of the choice closest to value (on a log scale for "log" controls).
  function nearest(c, choices, value) {
    const gap = (v) => (c.kind === "select" ? Number(v !== value)
      : c.kind === "log" ? Math.abs(Math.log(v) - Math.log(value)) : Math.abs(v - value));
    return choices.reduce((best, v, i) => (gap(v) < gap(choices[best]) ? i : best), 0);
  }

  // ---- plotting ---------------------------------------------------------------------------
  // A panel in box {x, y, w, h}: axes with ticks, grid, labels and title. Returns the maps from
  // data to pixels, X and Y, and the list of points drawn (for the legend to avoid).
  // o = {x: [lo, hi], y: [lo, hi], logy, xlabel, ylabel, title}.
  function panel(ctx, box, o) {
    const px = box.x + 58, py = box.y + 26, pw = box.w - 78, ph = box.h - 70;
    const f = o.logy ? Math.log10 : (v) => v;
    const [x0, x1] = o.x, y0 = f(o.y[0]), y1 = f(o.y[1]);
    const clamp = (v) => Math.max(-1e5, Math.min(1e5, v));
    const p = {
      px, py, pw, ph, points: [],
      X: (v) => clamp(px + ((v - x0) / (x1 - x0 || 1)) * pw),
      Y: (v) => (ok(v, o.logy) ? clamp(py + ph - ((f(v) - y0) / (y1 - y0 || 1)) * ph) : NaN),
    };
    const rule = (xa, ya, xb, yb) => {
      ctx.beginPath(); ctx.moveTo(xa, ya); ctx.lineTo(xb, yb); ctx.stroke();
    };
    ctx.save();
    ctx.font = FONT;
    ctx.fillStyle = "#fff";
    ctx.fillRect(px, py, pw, ph);
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLOR.grid;
    ctx.fillStyle = COLOR.ink;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of o.logy ? logTicks(...o.y) : linearTicks(...o.y, Math.floor(ph / 45))) {
      rule(px, p.Y(t), px + pw, p.Y(t));
      ctx.fillText(fmt(t), px - 5, p.Y(t));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of linearTicks(x0, x1, Math.max(2, Math.floor(pw / 50)))) {
      rule(p.X(t), py, p.X(t), py + ph);
      ctx.fillText(fmt(t), p.X(t), py + ph + 4);
    }
    ctx.fillText(o.xlabel, px + pw / 2, py + ph + 22);
    // The title from the plot's left edge to the panel's right one: smaller type when it would
    // run past it (a narrow lab, on a phone), down to 9 px; then squeezed to fit.
    const room = box.x + box.w - px - 2;
    let size = 12;
    do ctx.font = `bold ${size--}px ${FONT.split("px ")[1]}`;
    while (ctx.measureText(o.title).width > room && size >= 9);
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(o.title, px, py - 6, room);
    ctx.font = FONT;
    ctx.translate(box.x + 12, py + ph / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(o.ylabel, 0, 0);
    ctx.restore();
    return p;
  }

  function frameBox(ctx, p) {
    ctx.save();
    ctx.strokeStyle = "#555";
    ctx.strokeRect(p.px + 0.5, p.py + 0.5, p.pw - 1, p.ph - 1);
    ctx.restore();
  }

  function clipTo(ctx, p) {  // the caller restores
    ctx.save();
    ctx.beginPath();
    ctx.rect(p.px, p.py, p.pw, p.ph);
    ctx.clip();
  }

  function dot(ctx, X, Y, r) {
    ctx.beginPath();
    ctx.arc(X, Y, r, 0, 2 * Math.PI);
    ctx.fill();
  }

  // Two strokes crossing at (X, Y): "x" diagonally, "+" upright.
  function cross(ctx, X, Y, size, shape) {
    const [dx, dy] = shape === "x" ? [size, size] : [size, 0];
    ctx.beginPath();
    ctx.moveTo(X - dx, Y - dy); ctx.lineTo(X + dx, Y + dy);
    ctx.moveTo(X + dy, Y - dx); ctx.lineTo(X - dy, Y + dx);
    ctx.stroke();
  }

  // A polyline through (xs[i], ys[i]), broken where a value is missing; o = {dash, dots, width}.
  function line(ctx, p, xs, ys, color, o = {}) {
    clipTo(ctx, p);
    ctx.strokeStyle = ctx.fillStyle = color;
    ctx.lineWidth = o.width || 1.8;
    ctx.setLineDash(o.dash || []);
    const drawn = [];
    ctx.beginPath();
    let on = false;
    xs.forEach((x, i) => {
      const X = p.X(x), Y = p.Y(ys[i]);
      if (!isFinite(X) || !isFinite(Y)) { on = false; return; }
      if (on) ctx.lineTo(X, Y); else ctx.moveTo(X, Y);
      on = true;
      drawn.push([X, Y]);
    });
    ctx.stroke();
    if (o.dots) drawn.forEach(([X, Y]) => dot(ctx, X, Y, o.dots));
    ctx.restore();
    p.points.push(...drawn);
  }

  function marker(ctx, p, x, y, color, shape, size = 6) {
    const X = p.X(x), Y = p.Y(y);
    if (!(X >= p.px && X <= p.px + p.pw && Y >= p.py && Y <= p.py + p.ph)) return;
    ctx.save();
    ctx.strokeStyle = ctx.fillStyle = color;
    ctx.lineWidth = 2.5;
    if (shape === "dot") dot(ctx, X, Y, size); else cross(ctx, X, Y, size, shape);
    ctx.restore();
  }

  // items: [label, color, kind] with kind "line", "dash", "dot", "x" or "+". The legend goes
  // into the corner of the panel that hides the fewest of the points drawn so far.
  function legend(ctx, p, items) {
    ctx.save();
    ctx.font = FONT;
    const w = Math.max(...items.map((it) => ctx.measureText(it[0]).width)) + 34;
    const h = 17 * items.length + 6, right = p.px + p.pw - w - 6, bottom = p.py + p.ph - h - 6;
    const corners = [[right, p.py + 6], [p.px + 6, p.py + 6], [right, bottom], [p.px + 6, bottom]];
    const hidden = ([x, y]) => p.points.filter(
      ([X, Y]) => X > x - 4 && X < x + w + 4 && Y > y - 4 && Y < y + h + 4).length;
    const [x, y] = corners.reduce((best, c) => (hidden(c) < hidden(best) ? c : best));
    ctx.fillStyle = "rgba(255,255,255,0.88)";
    ctx.fillRect(x, y, w, h);
    ctx.strokeStyle = "#bbb";
    ctx.strokeRect(x + 0.5, y + 0.5, w, h);
    items.forEach(([label, color, kind], i) => {
      const cy = y + 12 + 17 * i;
      ctx.strokeStyle = ctx.fillStyle = color;
      ctx.lineWidth = kind === "x" || kind === "+" ? 2.5 : 2;
      ctx.setLineDash(kind === "dash" ? [5, 3] : []);
      if (kind === "dot") dot(ctx, x + 15, cy, 4);
      else if (kind === "x" || kind === "+") cross(ctx, x + 15, cy, 5, kind);
      else { ctx.beginPath(); ctx.moveTo(x + 6, cy); ctx.lineTo(x + 24, cy); ctx.stroke(); }
      ctx.setLineDash([]);
      ctx.fillStyle = COLOR.ink;
      ctx.textBaseline = "middle";
      ctx.fillText(label, x + 28, cy);
    });
    ctx.restore();
  }

  // ---- the three labs ---------------------------------------------------------------------
  // The loss surface as a w x h image, made once per size and reused by every frame: log10 of
  // the loss, interpolated from the grid, in 14 colour bands whose edges are the contour lines.
  function surfaceImage(s, w, h) {
    const canvas = document.createElement("canvas");
    Object.assign(canvas, { width: w, height: h });
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
    const n = s.w.length, m = s.b.length, L = s.loss.map((row) => row.map(Math.log10));
    const lo = Math.min(...L.flat()), hi = Math.max(...L.flat()), bands = 14;
    const level = new Int16Array(w * h);
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) {
        const u = ((i + 0.5) / w) * (n - 1), v = (1 - (j + 0.5) / h) * (m - 1);
        const i0 = Math.min(Math.floor(u), n - 2), j0 = Math.min(Math.floor(v), m - 2);
        const a = u - i0, b = v - j0;
        const z = (1 - b) * ((1 - a) * L[j0][i0] + a * L[j0][i0 + 1])
          + b * ((1 - a) * L[j0 + 1][i0] + a * L[j0 + 1][i0 + 1]);
        level[j * w + i] = Math.min(bands - 1, Math.floor(((z - lo) / (hi - lo)) * bands));
      }
    }
    for (let k = 0; k < w * h; k++) {
      const t = level[k] / (bands - 1);
      const edge = (k % w < w - 1 && level[k + 1] !== level[k])
        || (k + w < w * h && level[k + w] !== level[k]);
      const rgb = edge ? [110, 120, 140] : [250 - 150 * t, 252 - 105 * t, 255 - 45 * t];
      img.data.set([...rgb.map(Math.round), 255], 4 * k);
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  function drawLR(ctx, spec, f, cache, boxes) {
    const s = spec.shared, n = f.path.length - 1, [w, b] = f.path[n], diverged = f.diverged_at;
    const p = panel(ctx, boxes[0], {
      x: [s.w[0], s.w[s.w.length - 1]], y: [s.b[0], s.b[s.b.length - 1]],
      xlabel: "w (slope)", ylabel: "b (intercept)", title: "loss surface, path of (w, b)" });
    const size = [Math.round(p.pw), Math.round(p.ph)];
    if (String(cache.size) !== String(size)) {
      Object.assign(cache, { size, surface: surfaceImage(s, ...size) });
    }
    ctx.drawImage(cache.surface, p.px, p.py, p.pw, p.ph);
    line(ctx, p, f.path.map((q) => q[0]), f.path.map((q) => q[1]), COLOR.path,
         { dots: 2.2, width: 1.5 });
    marker(ctx, p, f.path[0][0], f.path[0][1], COLOR.ink, "dot", 4.5);
    marker(ctx, p, s.best[0], s.best[1], COLOR.ink, "+", 7);
    frameBox(ctx, p);
    legend(ctx, p, [["start", COLOR.ink, "dot"], ["(w, b) step by step", COLOR.path, "line"],
                    ["least squares", COLOR.ink, "+"]]);

    const yr = extent([f.loss, [s.floor]], true);
    const q = panel(ctx, boxes[1], {
      x: [0, Math.max(n, 1)], y: yr, logy: true,
      xlabel: "step", ylabel: "loss (log scale)", title: "loss per step" });
    line(ctx, q, [0, Math.max(n, 1)], [s.floor, s.floor], COLOR.truth,
         { dash: [5, 3], width: 1.3 });
    line(ctx, q, f.loss.map((_, k) => k), f.loss, COLOR.path, { dots: n <= 40 ? 2 : 0 });
    const items = [["loss", COLOR.path, "line"], ["least-squares loss", COLOR.truth, "dash"]];
    if (diverged !== null) {
      const top = f.loss[f.loss.length - 1];
      marker(ctx, q, diverged, ok(top, true) ? top : yr[1], COLOR.path, "x", 7);
      items.push([`diverged at step ${diverged}`, COLOR.path, "x"]);
    }
    frameBox(ctx, q);
    legend(ctx, q, items);

    const r = panel(ctx, boxes[2], {
      x: [-1.1, 1.1], y: [-2.5, 4.5], xlabel: "x", ylabel: "y", title: "the fitted line" });
    clipTo(ctx, r);
    ctx.fillStyle = COLOR.data;
    s.x.forEach((x, i) => dot(ctx, r.X(x), r.Y(s.y[i]), 2.2));
    ctx.restore();
    r.points.push(...s.x.map((x, i) => [r.X(x), r.Y(s.y[i])]));
    line(ctx, r, [-1.1, 1.1], [-1.2, 3.2], COLOR.truth, { dash: [5, 3] });
    line(ctx, r, [-1.1, 1.1], [b - 1.1 * w, b + 1.1 * w], COLOR.path);
    frameBox(ctx, r);
    legend(ctx, r, [["data", COLOR.data, "dot"], ["y = 2x + 1", COLOR.truth, "dash"],
      [diverged !== null ? "last (w, b) before it blew up" : `fit after ${n} steps`,
       COLOR.path, "line"]]);
  }

  function drawInit(ctx, spec, f, cache, boxes) {
    const layers = f.act_std.map((_, k) => k + 1), xr = [0.5, layers.length + 0.5];
    const a = panel(ctx, boxes[0], {
      x: xr, y: extent([f.act_std], true), logy: true, xlabel: "layer",
      ylabel: "standard deviation (log scale)",
      title: "activations: standard deviation per layer" });
    line(ctx, a, layers, f.act_std, COLOR.plain, { dots: 2.5 });
    frameBox(ctx, a);
    legend(ctx, a, [["std of the layer's outputs", COLOR.plain, "line"]]);

    const b = panel(ctx, boxes[1], {
      x: xr, y: extent([f.grad_h, f.grad_W], true), logy: true, xlabel: "layer",
      ylabel: "gradient norm (log scale)", title: "gradients: norm per layer" });
    line(ctx, b, layers, f.grad_h, COLOR.truth, { dots: 2.5 });
    line(ctx, b, layers, f.grad_W, COLOR.residual, { dots: 2.5 });
    frameBox(ctx, b);
    legend(ctx, b, [["‖∂L/∂h‖, passed back to the layer", COLOR.truth, "line"],
                    ["‖∂L/∂W‖ of the layer's weights", COLOR.residual, "line"]]);

    const [lo, hi] = f.hist_range, top = Math.max(...f.hist.flat()) * 1.08 || 1;
    f.hist.forEach((fractions, k) => {
      const p = panel(ctx, boxes[2 + k], {
        x: [lo, hi], y: [0, top], xlabel: "activation value",
        ylabel: "fraction of the values", title: `layer ${f.hist_layers[k]}: histogram` });
      const width = (hi - lo) / fractions.length;
      ctx.save();
      ctx.fillStyle = COLOR.plain;
      fractions.forEach((v, i) => {
        const x0 = p.X(lo + i * width), x1 = p.X(lo + (i + 1) * width);
        ctx.fillRect(x0 + 0.5, p.Y(v), Math.max(x1 - x0 - 1, 1), p.py + p.ph - p.Y(v));
      });
      ctx.restore();
      frameBox(ctx, p);
    });
  }

  function drawDepth(ctx, spec, f, cache, boxes) {
    const n = f.plain.grad_W.length, layers = f.plain.grad_W.map((_, k) => k + 1);
    const a = panel(ctx, boxes[0], {
      x: [0.5, n + 0.5], y: extent([f.plain.grad_W, f.residual.grad_W], true), logy: true,
      xlabel: "layer", ylabel: "‖∂L/∂W‖ (log scale)",
      title: "gradient norm per layer, at initialisation" });
    const b = panel(ctx, boxes[1], {
      x: [0, f.plain.loss.length - 1], y: extent([f.plain.loss, f.residual.loss]),
      xlabel: "step", ylabel: "training loss", title: "training: loss per step (full-batch SGD)" });
    for (const kind of ["plain", "residual"]) {
      line(ctx, a, layers, f[kind].grad_W, COLOR[kind], { dots: 2.5 });
      line(ctx, b, f[kind].loss.map((_, k) => k), f[kind].loss, COLOR[kind]);
    }
    const items = [["plain", COLOR.plain, "line"],
                   ["residual (skip connections)", COLOR.residual, "line"]];
    frameBox(ctx, a);
    frameBox(ctx, b);
    legend(ctx, a, items);
    legend(ctx, b, items);
  }

  const DRAW = { lr: drawLR, init: drawInit, depth: drawDepth };

  // ---- the element: title, note, controls, readout, canvas --------------------------------
  function el(tag, style, text) {
    const node = document.createElement(tag);
    Object.assign(node.style, style || {});
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // What the reader is looking at: which values are precomputed, and how to get the live lab.
  function note(spec, live) {
    const list = (c) => (c.grid.length <= 7 ? c.grid.map(fmt).join(", ")
      : `${c.grid.length} values from ${fmt(c.grid[0])} to ${fmt(c.grid[c.grid.length - 1])}`);
    if (live) {
      const ranges = spec.controls.filter((c) => c.kind !== "select")
        .map((c) => `${c.label} ${fmt(c.min)} to ${fmt(c.max)}`);
      const who = live === "page" ? "Python, running in this page," : "the kernel";
      return [`Live: ${who} recomputes the picture whenever you move a control (${
        ranges.join(", ")}).`];
    }
    const grids = spec.controls.map((c) => `${c.label}: ${list(c)}`).join("; ");
    return [`Precomputed for this page: ${grids}. For any other value, run this chapter in `
      + "JupyterLab (", el("code", { color: "inherit", background: "none", padding: 0 }, "make lab"), " in the repository, then open the chapter): "
      + "there the lab is live and computes each setting as you move the controls."];
  }

  // Builds the element inside root; live: the controls offer every value, not only the grid.
  // onChange(values, positions) is called when a control moves, onRerun() by the button.
  function mount(root, spec, live, onChange, onRerun) {
    const dpr = window.devicePixelRatio || 1, inputs = {}, positions = {}, values = {};
    // The box follows the page's theme (the book's light and dark modes, JupyterLab's themes);
    // the plots keep a white ground, as the book's figures do.
    const box = el("div", { font: FONT, color: THEME.text,
                            border: `1px solid ${THEME.border}`, borderRadius: "6px",
                            padding: "10px 12px", margin: "0.5em 0", background: THEME.surface,
                            maxWidth: WIDEST + 26 + "px" });
    const title = el("div", { fontWeight: "bold", fontSize: "14px", marginBottom: "4px" },
                     spec.title);
    const info = el("div", { fontSize: "12px", color: THEME.muted, marginBottom: "8px",
                             lineHeight: "1.4" });
    const bar = el("div", { display: "flex", flexWrap: "wrap", gap: "6px 18px",
                            alignItems: "center", marginBottom: "6px" });
    const readout = el("div", { fontFamily: "ui-monospace, Menlo, Consolas, monospace",
                                fontSize: "12.5px", margin: "4px 0 8px", minHeight: "1.4em" });
    const canvas = el("canvas", { maxWidth: "100%", display: "block", background: "#fff" });
    const again = el("button", { font: FONT, padding: "2px 10px", cursor: "pointer" },
                     "same initialisation again");
    box.className = "bplib-lab-box";
    info.className = "bplib-lab-note";
    readout.className = "bplib-lab-readout";
    again.className = "bplib-lab-rerun";
    info.append(...note(spec, live));
    again.title = "Run once more from the same seed: the same initial weights, the same result";
    again.addEventListener("click", () => onRerun());

    spec.controls.forEach((c) => {
      const choices = live ? liveChoices(c) : c.grid;
      const label = el("label", { display: "inline-flex", alignItems: "center", gap: "6px",
                                  whiteSpace: "nowrap" });
      const value = el("b", { minWidth: "3.2em", display: "inline-block" });
      let input;
      if (c.kind === "select") {
        input = el("select", { font: FONT });
        choices.forEach((v) => input.appendChild(el("option", {}, v)));
      } else {
        input = el("input", { width: "130px" });
        Object.assign(input, { type: "range", min: 0, max: choices.length - 1, step: 1 });
      }
      Object.assign(input, { name: c.name, className: "bplib-lab-control" });
      // JupyterLab's notebook shortcuts would take the keys a focused control needs (arrows
      // select cells there): lumino's keymap leaves alone keys pressed on such an element.
      input.dataset.lmSuppressShortcuts = "true";
      label.append(el("span", {}, c.label), input);
      if (c.kind !== "select") label.append(value);
      bar.appendChild(label);
      inputs[c.name] = {
        c, choices, input, label,
        put(i) {
          positions[c.name] = i;
          values[c.name] = choices[i];
          if (c.kind === "select") input.selectedIndex = i;
          else { input.value = i; value.textContent = fmt(choices[i]); }
        },
      };
      const moved = () => {
        inputs[c.name].put(Number(c.kind === "select" ? input.selectedIndex : input.value));
        enable();
        onChange({ ...values }, { ...positions });
      };
      input.addEventListener("input", moved);
      input.addEventListener("change", moved);
    });
    bar.appendChild(again);
    box.append(title, info, bar, readout, canvas);
    root.appendChild(box);

    // A control that matters only for one value of another (sigma: only for normal weights).
    function enable() {
      for (const { c, input, label } of Object.values(inputs)) {
        const off = Boolean(c.when) && values[c.when[0]] !== c.when[1];
        input.disabled = off;
        label.style.opacity = off ? 0.45 : 1;
        label.title = off ? `used only when ${c.when[0]} is ${c.when[1]}` : "";
      }
    }

    // The canvas is as wide as the element (at most WIDEST): its text is never scaled down.
    const ctx = canvas.getContext("2d"), cache = {};
    let W = 0, current = null;
    function fit() {
      const width = Math.min(WIDEST, Math.max(300, Math.floor(box.clientWidth - 26)));
      if (width === W) return false;
      W = width;
      cache.layout = layout(spec.lab, W);
      Object.assign(canvas, { width: W * dpr, height: cache.layout.H * dpr });
      Object.assign(canvas.style, { width: W + "px", height: cache.layout.H + "px" });
      return true;
    }
    const api = {
      root, canvas, readout,
      set(vals) {
        for (const [name, v] of Object.entries(vals)) {
          if (inputs[name]) inputs[name].put(nearest(inputs[name].c, inputs[name].choices, v));
        }
        enable();
      },
      show(frame, suffix = "") {
        current = frame;
        fit();
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.clearRect(0, 0, W, cache.layout.H);
        DRAW[spec.lab](ctx, spec, frame, cache, cache.layout.boxes);
        readout.textContent = frame.readout + suffix;
      },
      positions: () => ({ ...positions }),
      values: () => ({ ...values }),
    };
    if (window.ResizeObserver) {
      new ResizeObserver(() => current && fit()
        && api.show(current, readout.textContent.slice(current.readout.length))).observe(box);
    }
    return api;
  }

  const AGAIN = " · same initialisation again: identical result";

  // The executed notebook saved the live lab's widget state in the page, and the ipywidgets
  // manager would try to load the anywidget module for it when the page loads (and fail, with
  // no kernel and no network). The static element stands in for the live lab: drop that state.
  function dropSavedLabs() {
    const type = "application/vnd.jupyter.widget-state+json";
    for (const script of document.querySelectorAll(`script[type="${type}"]`)) {
      const saved = JSON.parse(script.textContent);
      for (const [id, model] of Object.entries(saved.state || {})) {
        if ((model.state || {})._anywidget_id === "bpcourse.widgets.Lab") delete saved.state[id];
      }
      script.textContent = JSON.stringify(saved);
    }
  }

  // The static book: each setting of the controls looks its frame up in the embedded JSON.
  function mountStatic(root) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", dropSavedLabs);
    } else {
      dropSavedLabs();
    }
    const data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    const lab = mount(root, data, false, (_, pos) => show(pos, ""),
                      () => show(lab.positions(), AGAIN));
    function show(pos, suffix) {
      const key = data.controls.reduce((k, c) => k * c.grid.length + pos[c.name], 0);
      root.dataset.key = key;
      root.dataset.frame = data.index[key];
      lab.show(data.frames[data.index[key]], suffix);
    }
    lab.set(Object.fromEntries(data.controls.map((c) => [c.name, c.default])));
    show(lab.positions(), "");
    root.bplibLab = { lab, data, show };
    return lab;
  }

  // A lab whose frames the page's Python computes (live.js): compute(lab, values) returns a
  // Promise of the frame. As in render below, a moved control asks only when the last frame has
  // come back, and only the latest values wait.
  function mountPage(root, spec, values, compute) {
    let busy = false, pending = null, shown = null;
    const lab = mount(root, spec, "page", (vals) => request(vals, false),
                      () => request(lab.values(), true));
    function request(vals, rerun) {
      if (busy) { pending = [vals, rerun]; return; }
      busy = true;
      root.dataset.live = "computing";
      compute(spec.lab, vals).then((frame) => {
        busy = false;
        root.dataset.live = "ready";
        if (frame) {
          const same = JSON.stringify(frame) === JSON.stringify(shown);
          lab.show(frame, !rerun ? "" : same ? AGAIN : " · same initialisation again: DIFFERENT result");
          shown = frame;
          root.dataset.values = JSON.stringify(vals);
        }
        if (pending) {
          const [v, r] = pending;
          pending = null;
          request(v, r);
        }
      });
    }
    lab.set(values);
    request(lab.values(), false);
    root.bplibLab = { lab, data: spec, live: true };
    return lab;
  }

  // The static book once the page runs Python: the precomputed lab becomes a live one at the
  // same setting, whose controls offer every value, as in JupyterLab.
  function goLive(root, compute) {
    const data = root.bplibLab.data, old = root.querySelector(".bplib-lab-box");
    const at = root.bplibLab.lab.positions();
    const values = Object.fromEntries(data.controls.map((c) => [c.name, c.grid[at[c.name]]]));
    const lab = mountPage(root, data, values, compute);
    old.remove();
    return lab;
  }

  // JupyterLab: anywidget's render. A control sends its values to the kernel only when the
  // previous frame has come back, and only the latest values wait: dragging queues nothing.
  function render({ model, el: root }) {
    let busy = false, pending = null, rerun = false, before = "";
    const lab = mount(root, model.get("spec"), true, request, () => {
      if (busy) return;
      busy = rerun = true;
      before = JSON.stringify(model.get("frame"));
      model.send({ do: "rerun" });
    });
    function request(values) {
      if (busy) { pending = values; return; }
      if (JSON.stringify(values) === JSON.stringify(model.get("controls"))) return;
      busy = true;
      model.set("controls", values);
      model.save_changes();
    }
    function served() {
      const frame = model.get("frame"), same = JSON.stringify(frame) === before;
      const suffix = !rerun ? "" : same ? AGAIN : " · same initialisation again: DIFFERENT result";
      busy = rerun = false;
      if (!pending) lab.set(model.get("controls"));
      lab.show(frame, suffix);
      if (pending) {
        const values = pending;
        pending = null;
        request(values);
      }
    }
    model.on("change:served", served);
    lab.set(model.get("controls"));
    lab.show(model.get("frame"));
    return () => model.off("change:served", served);
  }

  globalThis.bplibLab = { mountStatic, mountPage, goLive, render, fmt, liveChoices };
})();
