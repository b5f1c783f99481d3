// The ipywidgets HTML manager was written for MathJax 2 and typesets widget labels with
// MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]). The book loads MathJax 3, which has no
// Hub, so every widget with a description would log a TypeError. This shim gives whatever object
// window.MathJax holds (the configuration first, MathJax 3 once it has loaded) a hidden Hub whose
// Queue forwards to MathJax 3's typesetPromise once MathJax has started.
(function () {
  "use strict";
  var current = window.MathJax;
  var waiting = [];

  function typeset(elements) {
    var mj = current;
    if (mj && mj.startup && mj.startup.promise && mj.typesetPromise) {
      mj.startup.promise.then(function () { return mj.typesetPromise(elements); });
    } else {
      waiting.push.apply(waiting, elements);
    }
  }

  function queue() {
    var elements = [];
    for (var i = 0; i < arguments.length; i++) {
      var call = arguments[i];
      if (Array.isArray(call) && call[0] === "Typeset" && call[2]) elements.push(call[2]);
    }
    if (elements.length) typeset(elements);
  }

  function addHub(value) {
    if (value && typeof value === "object" && !Object.prototype.hasOwnProperty.call(value, "Hub")) {
      // Not enumerable, so MathJax never copies it into its configuration.
      Object.defineProperty(value, "Hub", { value: { Queue: queue }, enumerable: false });
    }
  }

  addHub(current);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) {
      current = value;
      addHub(value);
      if (waiting.length && value && value.typesetPromise) typeset(waiting.splice(0));
    }
  });
})();
