/* The visible ☰ and "Contents" buttons of sphinx-book-theme 1.3.0 get no handler of their own:
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
  function start() {
    forward(".primary-toggle");
    forward(".secondary-toggle");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
