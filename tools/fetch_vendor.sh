#!/usr/bin/env bash
# Fetch the JavaScript the book serves itself so that pages work offline:
#   MathJax 3 (math), the ipywidgets HTML manager (widgets saved in notebooks) and Graphviz
#   compiled to WebAssembly (graphs drawn by code run in the page; @hpcc-js/wasm-graphviz).
# They go to _vendor/ (git-ignored), which Sphinx copies to the root of the built site;
# _vendor/pyodide/ is tools/fetch_pyodide.py's, which `make vendor` runs next.
# Without npm we write small loaders that pull the same files from a CDN, and say so.
set -euo pipefail
MATHJAX_VERSION=3.2.2
WIDGETS_VERSION=1.0.7
GRAPHVIZ_VERSION=1.29.2
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/_vendor"
stamp="$out/.fetched-$MATHJAX_VERSION-$WIDGETS_VERSION-$GRAPHVIZ_VERSION"
[ -f "$stamp" ] && exit 0

rm -rf "$out/mathjax" "$out/jupyter-widgets" "$out/graphviz" "$out"/.fetched-*
mkdir -p "$out/mathjax" "$out/jupyter-widgets" "$out/graphviz"
cp "$root/assets/mathjax2-shim.js" "$out/jupyter-widgets/"

if command -v npm >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # npm pack checks each tarball against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent "mathjax@$MATHJAX_VERSION" "@jupyter-widgets/html-manager@$WIDGETS_VERSION" \
     "@hpcc-js/wasm-graphviz@$GRAPHVIZ_VERSION" >/dev/null 2>&1)
  mkdir -p "$tmp/mj" "$tmp/hm" "$tmp/gv"
  tar xzf "$tmp"/mathjax-*.tgz -C "$tmp/mj"
  tar xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$tmp/hm"
  tar xzf "$tmp"/hpcc-js-wasm-graphviz-*.tgz -C "$tmp/gv"
  cp "$tmp/gv/package/dist/index.js" "$tmp/gv/package/LICENSE" "$out/graphviz/"
  cp -r "$tmp/mj/package/es5/." "$out/mathjax/"
  cp "$tmp/mj/package/LICENSE" "$out/mathjax/LICENSE"
  find "$tmp/hm/package/dist" -maxdepth 1 -type f ! -name '*.map' ! -name '*amd.js' \
    -exec cp {} "$out/jupyter-widgets/" \;
  cp "$tmp/hm/package/LICENSE" "$out/jupyter-widgets/LICENSE" 2>/dev/null || true
  echo "vendor: MathJax $MATHJAX_VERSION, html-manager $WIDGETS_VERSION and wasm-graphviz $GRAPHVIZ_VERSION in _vendor/ (served offline)"
else
  echo "vendor: npm not found; the book will load MathJax and the widget manager from a CDN (not offline)" >&2
  for pair in "mathjax/tex-mml-chtml.js https://cdn.jsdelivr.net/npm/mathjax@$MATHJAX_VERSION/es5/tex-mml-chtml.js" \
              "jupyter-widgets/embed.js https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@$WIDGETS_VERSION/dist/embed.js"; do
    set -- $pair
    printf '%s\n' "// npm was missing when the book was built: load the CDN copy instead." \
      "(function () { var s = document.createElement('script'); s.src = '$2'; document.head.appendChild(s); })();" > "$out/$1"
  done
fi
touch "$stamp"
