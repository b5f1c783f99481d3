"""Serve the built book on localhost: `make serve` (PORT=8000 picks the port; else a free one).

Pages opened from file:// cannot load Pyodide (browsers refuse modules and WebAssembly there), so
the book is read from here when its code cells run in the browser. The types below are the ones
browsers insist on; they are set here rather than guessed from the system's mime.types.
"""
import argparse
import contextlib
import email.utils
import functools
import gzip
import http.server
import os
import sys
import threading
from pathlib import Path

TYPES = {
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming refuses anything else
    ".mjs": "text/javascript",    # module scripts must have a JavaScript type
    ".js": "text/javascript",
    ".whl": "application/zip",    # Pyodide's package wheels
    ".zip": "application/zip",
    ".json": "application/json",
}


COMPRESSIBLE = {".wasm", ".js", ".mjs", ".json", ".css", ".html", ".svg", ".map", ".txt"}
# Fetched by `make vendor` at pinned versions and checked against their hashes: they never change
# under the same name, so a browser may keep them (the next page then starts from its cache).
IMMUTABLE = ("/pyodide/", "/graphviz/", "/mathjax/")


@functools.lru_cache(maxsize=64)
def _gzipped(path, mtime_ns):
    with open(path, "rb") as f:
        return gzip.compress(f.read(), compresslevel=6, mtime=0)


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with TYPES for the files Pyodide loads, compressed when the browser
    accepts gzip (as any web host does: WebAssembly and JavaScript shrink to about a third),
    and with the runtime marked as cacheable for a year."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def end_headers(self):
        immutable = self.path.startswith(IMMUTABLE)
        self.send_header("Cache-Control", "public, max-age=31536000, immutable" if immutable
                         else "no-cache")
        super().end_headers()

    def do_GET(self):
        path = self.translate_path(self.path)
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts and Path(path).suffix in COMPRESSIBLE and os.path.isfile(path)):
            return super().do_GET()
        info = os.stat(path)
        body = _gzipped(path, info.st_mtime_ns)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True))
        self.end_headers()
        self.wfile.write(body)


class QuietHandler(SiteHandler):
    """SiteHandler without a log line per request (for the tests and the PDF printer)."""

    def log_message(self, *args):
        pass


def make_server(directory, port=0, handler=SiteHandler):
    """A threading HTTP server for `directory` on 127.0.0.1 (port 0: a free one)."""
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(directory)))


@contextlib.contextmanager
def served(directory, handler=QuietHandler):
    """The folder served on 127.0.0.1 (a free port) from a thread for the duration of the block;
    yields the server."""
    server = make_server(directory, handler=handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    args = parser.parse_args(argv)
    if not (args.directory / "index.html").is_file():
        sys.exit(f"serve: no built book in {args.directory}: run `make book` first")
    try:
        server = make_server(args.directory, args.port)
    except OSError as error:
        sys.exit(f"serve: cannot listen on 127.0.0.1:{args.port}: {error.strerror}")
    print(f"serving {args.directory} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
