"""One server process for ``servers.serve_processes``.

Usage: ``python -m tests.support.worker TARGET [KWARGS_JSON]``, run from the
repository root.  ``TARGET`` is ``package.module:callable`` (called with the
JSON object's items as keyword arguments) or a path ending in ``.ini`` (a
PasteDeploy file whose ``main`` app is loaded with them as ``global_conf``).

The worker serves the app on an ephemeral loopback port, prints its base URL
as the only line on stdout (what the factory prints goes to stderr), and
serves until its stdin reaches end of file: closing the pipe, or the parent
dying, stops it cleanly.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from contextlib import redirect_stdout
from typing import TYPE_CHECKING, Any

from paste.deploy import loadapp

from .servers import serve

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def build_app(target: str, kwargs: dict[str, Any]) -> WSGIApplication:
    """Build the WSGI app named by ``target`` (see the module docstring)."""
    if target.endswith(".ini"):
        global_conf = {key: str(value) for key, value in kwargs.items()}
        app: WSGIApplication = loadapp("config:" + os.path.abspath(target), global_conf=global_conf)
        return app
    module_name, sep, attribute = target.partition(":")
    if not sep:
        raise SystemExit(f"worker: {target!r} is neither module:callable nor an .ini path")
    factory = getattr(importlib.import_module(module_name), attribute)
    built: WSGIApplication = factory(**kwargs)
    return built


def main(argv: list[str]) -> None:
    """Entry point; ``argv`` excludes the program name."""
    target, kwargs_json = argv[0], argv[1] if len(argv) > 1 else "{}"
    with redirect_stdout(sys.stderr):  # stdout carries only the base URL
        app = build_app(target, json.loads(kwargs_json))
    with serve(app) as base_url:
        print(base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
