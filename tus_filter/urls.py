"""Matching ``upload_path`` and building the absolute URLs clients are given.

Behind ``behind_proxy = N`` trusted proxies, the URL the client addressed is
read from the values those proxies set.  Each proxy *appends* its value to a
forwarding header, so the rightmost ``N`` values are theirs and anything to
the left of them is whatever the client sent (Werkzeug's ``ProxyFix`` reads
them the same way).  The value of the outermost trusted proxy, the ``N``-th
from the right, is the one that saw the client's request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Forwarded:
    """What the outermost trusted proxy says the client addressed; ``None``: not said."""

    host: str | None = None
    proto: str | None = None
    port: str | None = None
    prefix: str | None = None


_X_FORWARDED = (
    "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX",
)
_FORWARDED_PAIR = re.compile(r'([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[^;"]*)')
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{1,5})?")
_PORT = re.compile(r"[0-9]{1,5}")


def forwarded(environ: dict[str, Any], trusted: int) -> Forwarded:
    """The values the ``trusted`` proxies in front of us set (``Forwarded()`` for 0).

    ``X-Forwarded-Host`` / ``-Proto`` / ``-Port`` / ``-Prefix`` are read when
    any of them is present, the RFC 7239 ``Forwarded`` header only otherwise:
    the two are never mixed, so a client cannot fill in through one family a
    value the proxies set only in the other.  A header with fewer than
    ``trusted`` values is ignored, and so is a value of the wrong shape.
    """
    if trusted <= 0:
        return Forwarded()
    if any(environ.get(key) for key in _X_FORWARDED):
        host, proto, port, prefix = (_trusted_value(environ.get(key, ""), trusted)
                                     for key in _X_FORWARDED)
    else:
        element = _trusted_value(environ.get("HTTP_FORWARDED", ""), trusted)
        pairs = _forwarded_pairs(element or "")
        host, proto, port, prefix = pairs.get("host"), pairs.get("proto"), None, None
    return Forwarded(
        host=host if host and _HOST.fullmatch(host) else None,
        proto=proto.lower() if proto and proto.lower() in ("http", "https") else None,
        port=port if port and _PORT.fullmatch(port) and 0 < int(port) < 65536 else None,
        prefix=prefix.rstrip("/") if prefix and prefix.startswith("/") else None,
    )


def _trusted_value(header: str, trusted: int) -> str | None:
    """The ``trusted``-th value from the right of a comma-separated header, if there are enough."""
    values = [value for value in _values_from_the_right(header) if value]
    return values[trusted - 1] if len(values) >= trusted else None


def _values_from_the_right(header: str) -> Iterator[str]:
    """The header's comma-separated values, stripped, rightmost first.

    Commas inside quoted strings do not separate, and quotedness is decided
    scanning from the right: the right end holds the proxies' well-formed
    values, and an unbalanced quote the client put on the left cannot
    swallow them.
    """
    end = len(header)
    quoted = False
    for index in range(len(header) - 1, -1, -1):
        char = header[index]
        if char == '"' and not (index and header[index - 1] == "\\"):
            quoted = not quoted
        elif char == "," and not quoted:
            yield header[index + 1 : end].strip()
            end = index
    yield header[:end].strip()


def _forwarded_pairs(element: str) -> dict[str, str]:
    """``{"host": ..., "proto": ...}`` from one ``Forwarded`` element (``for=a;host=b``)."""
    pairs: dict[str, str] = {}
    for pair in element.split(";"):
        match = _FORWARDED_PAIR.fullmatch(pair.strip())
        if match:
            name, value = match.groups()
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            pairs.setdefault(name.lower(), value)
    return pairs


def base_url(environ: dict[str, Any], *, behind_proxy: int) -> str:
    """``scheme://host[:port]`` of the request as the client addressed it.

    With ``behind_proxy = 0`` every forwarding header is ignored: a client
    could otherwise choose the host of every ``Location`` the server hands out.
    """
    return _origin(environ, forwarded(environ, behind_proxy))


def _origin(environ: dict[str, Any], fwd: Forwarded) -> str:
    scheme = fwd.proto or environ.get("wsgi.url_scheme", "http")
    host = fwd.host or environ.get("HTTP_HOST") or _server_host(environ, scheme)
    if fwd.port:
        host = _without_port(host) + ":" + fwd.port
    default_port = ":443" if scheme == "https" else ":80"
    if host.endswith(default_port):
        host = host[: -len(default_port)]
    return f"{scheme}://{host}"


def _without_port(host: str) -> str:
    if ":" in host and not host.endswith("]"):  # "]": an IPv6 address without a port
        return host.rsplit(":", 1)[0]
    return host


def _server_host(environ: dict[str, Any], scheme: str) -> str:
    host = str(environ.get("SERVER_NAME", "localhost"))
    port = str(environ.get("SERVER_PORT", ""))
    if port and port != ("443" if scheme == "https" else "80"):
        host = f"{host}:{port}"
    return host


def collection_url(environ: dict[str, Any], upload_path: str, *, behind_proxy: int) -> str:
    """Absolute URL of ``upload_path`` itself: the proxy's prefix, ``SCRIPT_NAME``, the path.

    ``X-Forwarded-Prefix`` is the path the proxy strips before forwarding, so
    it goes before everything this server sees, ``SCRIPT_NAME`` included.
    """
    fwd = forwarded(environ, behind_proxy)
    script_name = environ.get("SCRIPT_NAME", "").rstrip("/")
    return _origin(environ, fwd) + quote((fwd.prefix or "") + script_name) + quote(upload_path)
