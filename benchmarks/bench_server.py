"""Serve one benchmarked system on 127.0.0.1 until SIGTERM.

    python benchmarks/bench_server.py {waitress,gunicorn} SYSTEM PORT DIRECTORY [NAME=VALUE...]

SYSTEM is one of filter, filter-relaxed, ceiling; NAME=VALUE are more filter options.

Both servers get the same concurrency: one process with 4 request threads
(waitress ``threads=4``; gunicorn one ``gthread`` worker with ``threads=4``).

* ``filter``: ``TusFilter`` (``durability = strict``, the default; and
  ``filter-relaxed``, ``durability = relaxed``) over an application that answers 200 with an
  empty body and, when it is handed an upload, the header
  ``X-Bench-Completed: 1`` (so the client can check that every upload
  completed exactly once).  The file is left where the filter put it.
  ``NAME=VALUE`` arguments are further filter options (``storage``,
  ``s3_endpoint_url``, ``redis_url``: ``benchmarks/s3.py``).  With
  ``TUS_FILTER_BENCH_COUNT_S3=1`` in the environment, every HTTP request the
  filter's S3 client sends is counted by operation (retries included), and
  ``GET /bench/s3-requests`` answers the counts so far as JSON.
* ``ceiling``: the least any WSGI server has to do with an upload: each
  request's body is streamed in 256 KiB blocks into a new file, nothing is
  parsed, nothing is synced.  Every answer is 200 with ``Location`` (that new
  file's name, so a tus client's creation request gets somewhere to PATCH)
  and ``Upload-Offset`` (the bytes written).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

BLOCK = 256 * 1024
THREADS = 4
MAX_BODY = 1 << 40

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


S3_REQUESTS: Counter[str] = Counter()
_COUNTING = threading.Lock()


def handoff_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/bench/s3-requests":
        with _COUNTING:
            body = json.dumps(S3_REQUESTS).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    headers = [("Content-Length", "0")]
    if "tus_filter.upload" in environ:
        headers.append(("X-Bench-Completed", "1"))
    start_response("200 OK", headers)
    return [b""]


def filter_app(directory: str, **options: str) -> WSGIApp:
    from tus_filter import TusFilter

    if os.environ.get("TUS_FILTER_BENCH_COUNT_S3") == "1":
        count_s3_requests()
    return TusFilter(  # type: ignore[no-any-return]
        handoff_app, upload_path="/files", tmp_file_dir=directory, **options
    )


def relaxed_filter_app(directory: str, **options: str) -> WSGIApp:
    return filter_app(directory, **{"durability": "relaxed", **options})


def count_s3_requests() -> None:
    """Count in ``S3_REQUESTS`` what the S3 clients the filter makes send from now on.

    botocore's ``before-send`` event fires once per HTTP request; the hook is
    registered on each client as :func:`tus_filter.backends.s3_client` makes it.
    """
    from tus_filter import backends

    make_client = backends.s3_client

    def count(event_name: str, **_: Any) -> None:
        with _COUNTING:
            S3_REQUESTS[event_name.rsplit(".", 1)[-1]] += 1

    def counted_client(settings: Any) -> Any:
        client = make_client(settings)
        client.meta.events.register("before-send.s3", count)
        return client

    backends.s3_client = counted_client


def ceiling_app(directory: str, **_: str) -> WSGIApp:
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
    server, system, port, directory, *extra = sys.argv[1:]
    options = dict(option.split("=", 1) for option in extra)
    SERVERS[server](lambda: SYSTEMS[system](directory, **options), int(port))


if __name__ == "__main__":
    main()
