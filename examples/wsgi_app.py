"""Wrapping a WSGI application in code, and serving it with waitress.

From the repository root::

    python -m examples.wsgi_app              # http://127.0.0.1:8080/files
    python -m examples.wsgi_app --port 9000 --directory /tmp/uploads

Finished files land in ``<directory>/received`` (default
``examples/var/wsgi_app/received``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import waitress

from tus_filter import TusFilter

from .receiver import Receiver

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "var" / "wsgi_app"


def make_application(directory: str | Path) -> TusFilter:
    """The example app (:class:`~examples.receiver.Receiver`) behind tus_filter."""
    directory = Path(directory)
    return TusFilter(
        Receiver(directory / "received"),
        upload_path="/files",
        tmp_file_dir=str(directory / "incoming"),
        max_size=4 * 1024**3,
        upload_valid_duration=3600,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # waitress refuses request bodies over max_request_body_size (1 GB by
    # default): raise it if your clients send whole files in one request
    # (tus clients without a chunk size do).
    waitress.serve(make_application(args.directory), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
