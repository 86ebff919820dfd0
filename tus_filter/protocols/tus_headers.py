"""tus 1.0.0 header values: pure parsing and formatting, no WSGI and no storage.

Every parser takes the raw header value (``None`` when absent) and either
returns a typed value or raises :class:`~tus_filter.errors.BadRequest` with a
message naming the header.  Parsing is strict where the spec says MUST and
tolerant only where real clients need it (empty ``Upload-Metadata`` from
tuspy, a space after a comma, ``final; a b`` with repeated spaces).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urljoin, urlsplit

from ..errors import BadRequest

TUS_VERSION = "1.0.0"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"

MAX_INT = 2**63 - 1  # Upload-Length / Upload-Offset upper bound (tusd: int64)
_DIGITS = re.compile(r"^[0-9]{1,19}$")
# Metadata keys: printable ASCII, no space (0x20) and no comma (0x2c).
_KEY = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")

#: Metadata keys the hand-off reads, in order of preference.
FILENAME_KEYS = ("filename", "name")
CONTENT_TYPE_KEYS = ("filetype", "content-type", "type")


def parse_int(name: str, value: str) -> int:
    """A non-negative decimal (``^[0-9]+$``) no larger than 2**63 - 1."""
    value = value.strip()
    if not _DIGITS.match(value) or int(value) > MAX_INT:
        raise BadRequest(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def parse_defer_length(value: str | None) -> bool:
    """``Upload-Defer-Length``: absent → False; ``1`` → True; anything else → 400."""
    if value is None:
        return False
    if value.strip() != "1":
        raise BadRequest(f"Upload-Defer-Length must be 1, got {value!r}")
    return True


# -- Upload-Metadata -------------------------------------------------------------------------------


def parse_metadata(value: str | None) -> dict[str, str]:
    """``key base64,key2,key3 base64`` → decoded values (``""`` for a bare key).

    An absent or empty header means no metadata.  Otherwise every pair must
    be well formed: a non-empty printable-ASCII key without space or comma,
    unique, and an optional strictly padded base64 value that decodes to
    UTF-8.  Spaces around a pair are tolerated (``a YQ==, b Yg==``); anything
    else is a 400.
    """
    if value is None or not value.strip():
        return {}
    result: dict[str, str] = {}
    for pair in value.split(","):
        parts = pair.strip(" \t").split(" ")
        if len(parts) > 2:
            raise BadRequest(f"Upload-Metadata: malformed pair {pair.strip()!r}")
        key = parts[0]
        if not _KEY.match(key):
            raise BadRequest(f"Upload-Metadata: invalid key {key!r}")
        if key in result:
            raise BadRequest(f"Upload-Metadata: duplicate key {key!r}")
        result[key] = _decode_value(key, parts[1]) if len(parts) == 2 else ""
    return result


def _decode_value(key: str, encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadRequest(f"Upload-Metadata: value of {key!r} is not base64") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"Upload-Metadata: value of {key!r} is not UTF-8") from None


def encode_metadata(metadata: dict[str, str]) -> str:
    """The inverse of :func:`parse_metadata` (bare key for an empty value)."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in metadata.items()
    )


def filename_of(metadata: dict[str, str]) -> str | None:
    """``filename`` metadata, else ``name`` (tus-js-client/Uppy send both)."""
    for key in FILENAME_KEYS:
        if metadata.get(key):
            return metadata[key]
    return None


def content_type_of(metadata: dict[str, str]) -> str | None:
    """``filetype``, else ``content-type``, else ``type`` metadata, if a plain media type.

    Anything that is not ``type/subtype`` (parameters, control characters...)
    is ignored: the value may be used as a header downstream (``send_file``).
    """
    for key in CONTENT_TYPE_KEYS:
        candidate = metadata.get(key, "").strip()
        if _MEDIA_TYPE.match(candidate):
            return candidate.lower()
    return None


# -- Upload-Checksum -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    @property
    def can_match(self) -> bool:
        """Whether the digest has the algorithm's size (else no body can match it)."""
        return len(self.digest) == hashlib.new(self.algorithm).digest_size


def parse_checksum(value: str | None, algorithms: tuple[str, ...]) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; ``None`` when absent.

    The algorithm must be one of ``algorithms`` (lowercase, as advertised in
    ``Tus-Checksum-Algorithm``) and the digest strictly padded base64.  A
    digest of the wrong size is well formed but matches no body: it is a
    mismatch (:attr:`Checksum.can_match`), not a bad request.
    """
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if not algorithms:
        raise BadRequest("Upload-Checksum: the checksum extension is disabled")
    if algorithm not in algorithms:
        raise BadRequest(
            f"Upload-Checksum: unsupported algorithm {algorithm!r}; "
            f"supported: {', '.join(algorithms)}"
        )
    if not encoded.strip():
        raise BadRequest("Upload-Checksum: the digest is missing")
    try:
        digest = base64.b64decode(encoded.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadRequest("Upload-Checksum: the digest is not base64") from None
    return Checksum(algorithm, digest)


# -- Upload-Concat ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Concat:
    """A parsed ``Upload-Concat``: ``partial``, or ``final`` with the partials' URLs."""

    final: bool
    urls: tuple[str, ...] = ()


def parse_concat(value: str | None) -> Concat | None:
    """``partial`` or ``final;<url> <url>...``; ``None`` when absent, else 400."""
    if value is None:
        return None
    value = value.strip()
    if value == "partial":
        return Concat(final=False)
    kind, semicolon, rest = value.partition(";")
    urls = tuple(rest.split())
    if kind.strip() != "final" or not semicolon or not urls:
        raise BadRequest(f"Upload-Concat must be 'partial' or 'final;<urls>', got {value!r}")
    return Concat(final=True, urls=urls)


def upload_id_from_url(url: str, collection_url: str, upload_path: str) -> str | None:
    """The id in a partial upload's URL, or ``None`` if it names no upload of ours.

    The URL may be absolute with another host (a proxy's: tus-js-client sends
    the Locations it resolved) or relative; it is resolved against the
    collection URL and matched on the ``upload_path`` segment followed by one
    last segment, the id (tusd: ``extractIDFromURL``).
    """
    try:
        path = urlsplit(urljoin(collection_url + "/", url)).path
    except ValueError:  # e.g. an unclosed or invalid "[IPv6]" host
        return None
    prefix, _, upload_id = path.rstrip("/").rpartition("/")
    if not upload_id or not prefix.endswith(upload_path):
        return None
    return upload_id


# -- Upload-Expires --------------------------------------------------------------------------------


def http_date(timestamp: float) -> str:
    """RFC 9110 IMF-fixdate, e.g. ``Wed, 25 Jun 2014 16:00:00 GMT``."""
    return format_datetime(datetime.fromtimestamp(int(timestamp), UTC), usegmt=True)
