"""``python -m tus_filter cleanup CONFIG.ini[#name]``: delete expired uploads now, for cron.

The filter is built from its own ini section with ``paste.deploy.loadfilter``
(``loadapp`` would return the outermost application of a pipeline, with the
filter hidden inside it), so the command needs PasteDeploy
(``tus_filter[paste]``).  ``#name`` names the ``[filter:name]`` section;
without it, the ini must hold exactly one section whose filter is a
:class:`~tus_filter.TusFilter`.
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .filter import TusFilter

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

_FILTER_PREFIX = "filter:"


class CommandError(Exception):
    """A problem with the command line or the ini, reported without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tus_filter", description="Maintenance commands for tus_filter."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cleanup = commands.add_parser(
        "cleanup", help="delete expired uploads now and print how many were deleted"
    )
    cleanup.add_argument(
        "config", metavar="CONFIG.ini[#name]",
        help="the Paste ini; #name picks its [filter:name] section",
    )
    args = parser.parse_args(argv)
    try:
        deleted = filter_from_ini(args.config).cleanup()
    except Exception as error:  # the command's one boundary: say what, exit non-zero
        print(f"tus_filter cleanup: {error}", file=sys.stderr)
        return 1
    print(f"{deleted} expired upload{'' if deleted == 1 else 's'} removed")
    return 0


def filter_from_ini(spec: str) -> TusFilter:
    """The :class:`TusFilter` that ``CONFIG.ini[#name]`` configures."""
    path, _, name = spec.partition("#")
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such file")
    if name:
        found = _tus_filter(path, name)
        if found is None:
            raise CommandError(f"{path}: [{_FILTER_PREFIX}{name}] is not a tus_filter filter")
        return found
    filters = {
        section: found
        for section in _filter_sections(path)
        if (found := _tus_filter(path, section)) is not None
    }
    if len(filters) != 1:
        sections = ", ".join(f"[{_FILTER_PREFIX}{section}]" for section in filters)
        raise CommandError(
            f"{path}: found {len(filters)} tus_filter filters ({sections or 'none'}); "
            "name one as CONFIG.ini#name"
        )
    return next(iter(filters.values()))


def _filter_sections(path: str) -> list[str]:
    parser = configparser.RawConfigParser(strict=False)
    parser.read(path, encoding="utf-8")
    return [
        section[len(_FILTER_PREFIX):].strip()
        for section in parser.sections()
        if section.startswith(_FILTER_PREFIX)
    ]


def _tus_filter(path: str, name: str) -> TusFilter | None:
    """The filter ``[filter:name]`` builds, if it is a :class:`TusFilter`."""
    try:
        from paste.deploy import loadfilter  # the paste extra: only reading an ini needs it
    except ImportError:
        raise CommandError("reading an ini needs PasteDeploy: "
                           "pip install 'tus_filter[paste]'") from None
    built = loadfilter(f"config:{path}", name=name)(_no_app)
    return built if isinstance(built, TusFilter) else None


def _no_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The application behind a filter built only to clean up: never called."""
    raise RuntimeError("tus_filter cleanup serves no requests")
