"""Serve the built book on localhost: `make serve` (PORT=8000 picks the port; else a free one).

Pages opened from file:// cannot load Pyodide (browsers refuse modules and WebAssembly there), so
the book is read from here when its code cells run in the browser. The types below are the ones
browsers insist on; they are set here rather than guessed from the system's mime.types.
"""
import argparse
import functools
import http.server
import sys
from pathlib import Path

TYPES = {
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming refuses anything else
    ".mjs": "text/javascript",    # module scripts must have a JavaScript type
    ".js": "text/javascript",
    ".whl": "application/zip",    # Pyodide's package wheels
    ".zip": "application/zip",
    ".json": "application/json",
}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with TYPES for the files Pyodide loads."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}


def make_server(directory, port=0, handler=SiteHandler):
    """A threading HTTP server for `directory` on 127.0.0.1 (port 0: a free one)."""
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(directory)))


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
