/* tools/static/theme-fixes.js: what the pinned themes get wrong for readers, fixed.

   The visible ☰ and "Contents" buttons of sphinx-book-theme 1.3.0 get no handler of their own:
   that theme and pydata-sphinx-theme 0.17.1 attach theirs to the FIRST .primary-toggle and
   .secondary-toggle of the page, hidden copies in the navbar (upstream pydata-sphinx-theme#2451,
   sphinx-book-theme#988). So nothing opened below 992 px, and ☰ did not collapse the sidebar on a
   desktop. Each visible button here passes its click to that first copy, whose handlers then do
   the right thing for the width: open the drawer, or collapse and restore the sidebar. */
(function () {
  "use strict";
  function forward(selector) {
    const [handled, ...visible] = document.querySelectorAll(selector);
    for (const button of visible) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        handled.click();
      });
    }
  }
  /* A display equation wider than the column (on a phone, say) is shrunk to fit when 70% of its
     size is enough, and otherwise scrolls sideways, with a shadow at its edge saying so
     (theme-fixes.css). Redone when the width changes. */
  function fitEquations() {
    for (const eq of document.querySelectorAll('mjx-container[display="true"]')) {
      if (eq.dataset.bpSize === undefined) eq.dataset.bpSize = eq.style.fontSize;
      eq.style.fontSize = eq.dataset.bpSize;
      eq.classList.remove("bp-wide");
      const ratio = eq.clientWidth / eq.scrollWidth;
      if (ratio >= 1) continue;
      if (ratio >= 0.7) {
        const size = parseFloat(getComputedStyle(eq).fontSize);
        eq.style.fontSize = `${Math.floor(size * ratio * 0.98 * 10) / 10}px`;
      } else {
        eq.classList.add("bp-wide");
      }
    }
  }
  /* A figure is drawn at no less than FIGURE_SCALE of its own size, so that its smallest text
     (7 pt in the book's figures) stays at 8 px or more; on a phone a wider figure then scrolls
     sideways within its output, with the same shadow at the edge. */
  const FIGURE_SCALE = 0.86;
  function fitFigure(img) {
    img.style.width = img.style.maxWidth = "";
    img.parentElement.classList.remove("bp-wide-figure");
    const natural = img.naturalWidth;  // CSS px of the SVG's own width
    if (!natural || img.clientWidth >= natural * FIGURE_SCALE) return;
    img.style.maxWidth = "none";
    img.style.width = `${Math.ceil(natural * FIGURE_SCALE)}px`;
    img.parentElement.classList.add("bp-wide-figure");
  }
  function fitFigures() {
    for (const img of document.querySelectorAll('.cell_output > img[src$=".svg"]')) {
      if (img.complete) fitFigure(img);
      else img.addEventListener("load", () => fitFigure(img), { once: true });
    }
  }
  function whenTypeset(tries) {  // once MathJax has typeset every formula (checked for 30 s)
    const typeset = document.querySelectorAll("mjx-container").length;
    if (typeset >= document.querySelectorAll(".math").length) fitEquations();
    else if (tries > 0) setTimeout(() => whenTypeset(tries - 1), 200);
  }
  function start() {
    forward(".primary-toggle");
    forward(".secondary-toggle");
    if (document.querySelector(".math")) whenTypeset(150);
    fitFigures();
    let timer = null;
    addEventListener("resize", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { fitEquations(); fitFigures(); }, 150);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
