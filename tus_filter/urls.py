"""Matching ``upload_path`` and building the absolute URLs clients are given."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote


def match_upload_path(path_info: str, upload_path: str) -> str | None:
    """The part of ``PATH_INFO`` below ``upload_path``, or ``None`` if outside it.

    Matches on segment boundaries: with ``/files``, ``/files`` gives ``""``,
    ``/files/`` gives ``""``, ``/files/abc`` gives ``"abc"``, and
    ``/files-old`` gives ``None``.
    """
    if path_info == upload_path:
        return ""
    if path_info.startswith(upload_path + "/"):
        return path_info[len(upload_path) + 1 :]
    return None


_FORWARDED_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^;,\s]*)')


def _forwarded(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(host, proto)`` from the first element of an RFC 7239 ``Forwarded`` header."""
    header = environ.get("HTTP_FORWARDED", "")
    first = header.split(",", 1)[0]
    found = {key.lower(): value.strip('"') for key, value in _FORWARDED_PAIR.findall(first)}
    return found.get("host") or None, found.get("proto") or None


def base_url(environ: dict[str, Any], *, behind_proxy: bool) -> str:
    """``scheme://host[:port]`` of the request as the client addressed it.

    With ``behind_proxy`` the ``Forwarded`` header wins over ``X-Forwarded-Host``
    / ``X-Forwarded-Proto``; only ``http`` and ``https`` are accepted as schemes.
    Without it those headers are ignored: a client could otherwise choose the
    host of every ``Location`` the server hands out.
    """
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or _server_host(environ, scheme)
    if behind_proxy:
        fwd_host, fwd_proto = _forwarded(environ)
        x_host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
        x_proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
        proto = (fwd_proto or x_proto or "").lower()
        if proto in ("http", "https"):
            scheme = proto
        host = fwd_host or x_host or host
    default_port = ":443" if scheme == "https" else ":80"
    if host.endswith(default_port):
        host = host[: -len(default_port)]
    return f"{scheme}://{host}"


def _server_host(environ: dict[str, Any], scheme: str) -> str:
    host = str(environ.get("SERVER_NAME", "localhost"))
    port = str(environ.get("SERVER_PORT", ""))
    if port and port != ("443" if scheme == "https" else "80"):
        host = f"{host}:{port}"
    return host


def collection_url(environ: dict[str, Any], upload_path: str, *, behind_proxy: bool) -> str:
    """Absolute URL of ``upload_path`` itself, honouring ``SCRIPT_NAME``."""
    script_name = quote(environ.get("SCRIPT_NAME", "").rstrip("/"))
    return base_url(environ, behind_proxy=behind_proxy) + script_name + quote(upload_path)
