"""`kosi serve`: serve the output directory over HTTP on port 8081 (build first if needed)."""

from __future__ import annotations

import functools
import http.server

from kosi import log

PORT = 8081


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.outputs.naming import output_directory
    from kosi.run.image import ensure_built

    project = load_project(args)
    ensure_built(project, args)
    directory = output_directory(project.main)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    with http.server.ThreadingHTTPServer(("", PORT), handler) as server:
        log.info(f"serving {directory} on http://localhost:{PORT}/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
