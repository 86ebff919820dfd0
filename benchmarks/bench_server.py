"""Serve one benchmarked system on 127.0.0.1 until SIGTERM.

    python benchmarks/bench_server.py {waitress,gunicorn} SYSTEM PORT DIRECTORY

SYSTEM is one of filter, filter-relaxed, ceiling.

Both servers get the same concurrency: one process with 4 request threads
(waitress ``threads=4``; gunicorn one ``gthread`` worker with ``threads=4``).

* ``filter``: ``TusFilter`` (``durability = strict``, the default; and
  ``filter-relaxed``, ``durability = relaxed``) over an application that answers 200 with an
  empty body and, when it is handed an upload, the header
  ``X-Bench-Completed: 1`` (so the client can check that every upload
  completed exactly once).  The file is left where the filter put it.
* ``ceiling``: the least any WSGI server has to do with an upload: each
  request's body is streamed in 256 KiB blocks into a new file, nothing is
  parsed, nothing is synced.  Every answer is 200 with ``Location`` (that new
  file's name, so a tus client's creation request gets somewhere to PATCH)
  and ``Upload-Offset`` (the bytes written).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import Any

BLOCK = 256 * 1024
THREADS = 4
MAX_BODY = 1 << 40

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def handoff_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    headers = [("Content-Length", "0")]
    if "tus_filter.upload" in environ:
        headers.append(("X-Bench-Completed", "1"))
    start_response("200 OK", headers)
    return [b""]


def filter_app(directory: str, durability: str = "strict") -> WSGIApp:
    from tus_filter import TusFilter

    return TusFilter(  # type: ignore[no-any-return]
        handoff_app, upload_path="/files", tmp_file_dir=directory, durability=durability
    )


def relaxed_filter_app(directory: str) -> WSGIApp:
    return filter_app(directory, durability="relaxed")


def ceiling_app(directory: str) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        left = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"]
        name = uuid.uuid4().hex
        written = 0
        with open(os.path.join(directory, name), "wb") as out:
            while left > 0:
                block = body.read(min(BLOCK, left))
                if not block:
                    break
                out.write(block)
                written += len(block)
                left -= len(block)
        start_response("200 OK", [
            ("Content-Length", "0"), ("Location", f"/files/{name}"),
            ("Upload-Offset", str(written)),
        ])
        return [b""]

    return app


SYSTEMS = {"filter": filter_app, "filter-relaxed": relaxed_filter_app, "ceiling": ceiling_app}


def serve_waitress(make_app: Callable[[], WSGIApp], port: int) -> None:
    import logging

    import waitress

    # "Task queue depth is N": expected when 3 clients keep 4 threads busy.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    waitress.serve(make_app(), host="127.0.0.1", port=port, threads=THREADS,
                   max_request_body_size=MAX_BODY, _quiet=True)


def serve_gunicorn(make_app: Callable[[], WSGIApp], port: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Standalone(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": f"127.0.0.1:{port}", "workers": 1, "worker_class": "gthread",
                "threads": THREADS, "timeout": 600, "graceful_timeout": 5,
                "loglevel": "warning",
            }.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApp:
            # Built in the worker, after the fork: the filter's threads live there.
            return make_app()

    Standalone().run()


SERVERS = {"waitress": serve_waitress, "gunicorn": serve_gunicorn}


def main() -> None:
    server, system, port, directory = sys.argv[1:]
    SERVERS[server](lambda: SYSTEMS[system](directory), int(port))


if __name__ == "__main__":
    main()
