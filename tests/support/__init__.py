"""Shared harness for tus_filter's tests.

- ``servers``: run a WSGI app under waitress (in a thread or in N processes) or gunicorn.
- ``services``: real Redis and SeaweedFS (S3) servers, started and stopped by PID.
- ``lockers``: file and Redis lockers, described by picklable values for child processes.
- ``redis_faults``: a Redis server of a test's own, stopped, demoted or out of memory.
- ``worker``:  the ``python -m tests.support.worker`` entry point behind it.
- ``apps``:    downstream apps that record the uploads the filter hands over.
- ``static``:  serve test pages and ``node_modules`` next to an app.
- ``browser``: headless Debian Chromium through Playwright.
- ``node``:    run Node scripts against the pinned client libraries.
- ``tus``:     drive a TusFilter with tus requests, through WebTest or raw WSGI.
- ``chunked``: flow.js / resumable.js chunk requests and a filter to send them to.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root: holds ``node_modules/``, ``test-artifacts/``, ``tests/``."""
