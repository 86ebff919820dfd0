"""Typed settings, and the only place option strings are parsed.

``UploadHandler(**options)`` (and ``TusFilter(app, **options)``) is the real
API.  :func:`options_from_strings` converts ini strings to the same keyword
arguments for the Paste factory (:mod:`tus_filter.paste`), so a bad option
fails at ``loadapp()`` time with ``tus_filter: <option>: <why>``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict
from urllib.parse import urlsplit

from .errors import ConfigError
from .protocols import PROTOCOLS

if TYPE_CHECKING:
    from .upload import UploadInfo

Hook = Callable[[dict[str, Any], "UploadInfo"], None]
#: ``scope(environ) -> str``: whose uploads a request may see (see README "Isolation").
ScopeHook = Callable[[dict[str, Any]], str]


def remote_user(environ: dict[str, Any]) -> str:
    """The default ``scope``: ``REMOTE_USER``, or ``""`` for an anonymous request."""
    return str(environ.get("REMOTE_USER") or "")


class S3Location(NamedTuple):
    """Where ``storage = s3://bucket/prefix`` keeps uploads; ``prefix`` has no outer ``/``."""

    bucket: str
    prefix: str


def parse_storage(value: str) -> S3Location | None:
    """``"file"`` → ``None``; ``"s3://bucket/a/b/"`` → ``S3Location("bucket", "a/b")``.

    Raises ``ValueError`` saying why for anything else: bucket names follow
    S3's rules (3 to 63 lowercase letters, digits, dots and hyphens, which
    every S3-compatible server accepts), and a prefix has no empty segment.
    """
    if value == "file":
        return None
    scheme, _, rest = value.partition("://")
    if scheme != "s3":
        raise ValueError("expected file or s3://bucket/prefix")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError("bucket names are 3-63 lowercase letters, digits, '.' and '-'")
    prefix = prefix.strip("/")
    if "//" in prefix or not prefix.isprintable() or any(c in prefix for c in "?#\\ "):
        raise ValueError("the prefix must be a plain key prefix such as uploads/tus")
    return S3Location(bucket, prefix)


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_url(value: str, schemes: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is a ``scheme://host[:port][/path]`` URL."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("is not a URL") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected {' or '.join(s + '://host' for s in schemes)}")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")


def redacted(url: str) -> str:
    """``url`` with its password (``redis://:secret@host``) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


DURABILITIES = ("strict", "relaxed")
MAX_CLEANUP_INTERVAL = 600.0  # seconds: the longest default gap between two sweeps
DEFAULT_CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256", "sha512")


@dataclass(frozen=True)
class Settings:
    """Validated options.  See README "Options" for the user-facing table."""

    upload_path: str = "/files"
    tmp_file_dir: str = os.path.join(tempfile.gettempdir(), "tus_filter")
    max_size: int | None = None
    upload_valid_duration: int = 86400
    cleanup_interval: float | None = None
    protocols: tuple[str, ...] = tuple(PROTOCOLS)
    checksum_algorithms: tuple[str, ...] = DEFAULT_CHECKSUM_ALGORITHMS
    lock_timeout: float = 10.0
    cors_origins: tuple[str, ...] = ()
    behind_proxy: int = 0  # trusted proxies; ``True`` (one) is accepted
    send_file: bool = False
    on_create: Hook | None = None
    on_terminate: Hook | None = None
    scope: ScopeHook = remote_user
    # tus, draft and uid ids are capabilities; binding also requires the creator's scope.
    bind_to_scope: bool = False
    storage: str = "file"  # or s3://bucket/prefix, normalised to no trailing "/"
    s3_endpoint_url: str | None = None  # a non-AWS server; None: AWS, from the region
    s3_region: str | None = None  # None: boto3's own (AWS_DEFAULT_REGION, profile)
    # Locks and records in Redis: required with s3, for several hosts on one NFS with file.
    # Left out of repr(): it may hold a password.
    redis_url: str | None = field(default=None, repr=False)
    # What an acknowledged byte survives on the filesystem: "strict", a power cut
    # (synced before the answer); "relaxed", a crash of the process (page cache).
    durability: str = "strict"

    def __post_init__(self) -> None:
        path = self.upload_path.rstrip("/")
        if not path.startswith("/") or "//" in path or not path.strip("/"):
            _fail("upload_path", self.upload_path, "must be an absolute path below '/'")
        object.__setattr__(self, "upload_path", path)
        if self.max_size is not None and self.max_size < 0:
            _fail("max_size", self.max_size, "must not be negative")
        if self.upload_valid_duration < 0:
            _fail("upload_valid_duration", self.upload_valid_duration, "must not be negative")
        if self.cleanup_interval is not None and not self.cleanup_interval > 0:
            _fail("cleanup_interval", self.cleanup_interval, "must be positive")
        unknown = [name for name in self.protocols if name not in PROTOCOLS]
        if unknown or not self.protocols:
            _fail("protocols", self.protocols, f"choose from {', '.join(PROTOCOLS)}")
        for name in self.checksum_algorithms:
            if name not in hashlib.algorithms_guaranteed or name != name.lower():
                _fail("checksum_algorithms", name, "not a hashlib algorithm name")
        if self.checksum_algorithms and "sha1" not in self.checksum_algorithms:
            _fail("checksum_algorithms", self.checksum_algorithms, "tus requires sha1")
        if isinstance(self.behind_proxy, bool):
            object.__setattr__(self, "behind_proxy", int(self.behind_proxy))
        if not isinstance(self.behind_proxy, int) or self.behind_proxy < 0:
            _fail("behind_proxy", self.behind_proxy, "must be a number of proxies (0: none)")
        if self.lock_timeout <= 0:
            _fail("lock_timeout", self.lock_timeout, "must be positive")
        if self.durability not in DURABILITIES:
            _fail("durability", self.durability, f"choose from {', '.join(DURABILITIES)}")
        for hook in ("on_create", "on_terminate", "scope"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                _fail(hook, getattr(self, hook), "must be callable")
        self._check_backends()

    def _check_backends(self) -> None:
        try:
            location = parse_storage(self.storage)
        except ValueError as error:
            _fail("storage", self.storage, str(error))
        if location is not None:
            storage = f"s3://{location.bucket}/{location.prefix}".rstrip("/")
            object.__setattr__(self, "storage", storage)
        if self.s3_endpoint_url is not None:
            shown = redacted(self.s3_endpoint_url)
            try:
                check_url(self.s3_endpoint_url, ("http", "https"))
            except ValueError as error:
                _fail("s3_endpoint_url", shown, str(error))
            if urlsplit(self.s3_endpoint_url).username is not None:
                _fail("s3_endpoint_url", shown,
                      "must not hold credentials (boto3 finds them: environment, profile, role)")
        if self.s3_region is not None and not re.fullmatch(r"[A-Za-z0-9-]+", self.s3_region):
            _fail("s3_region", self.s3_region, "expected a region name such as eu-west-1")
        if location is None and self.s3_endpoint_url is not None:
            _fail("s3_endpoint_url", redacted(self.s3_endpoint_url),
                  "is only for storage = s3://bucket/prefix")
        if location is None and self.s3_region is not None:
            _fail("s3_region", self.s3_region, "is only for storage = s3://bucket/prefix")
        if self.redis_url is not None:
            try:
                check_url(self.redis_url, ("redis", "rediss"))
                database = urlsplit(self.redis_url).path.strip("/")
                if database and not (database.isascii() and database.isdigit()):
                    raise ValueError("names no database: expected redis://host:port/0")
            except ValueError as error:
                _fail("redis_url", redacted(self.redis_url), str(error))
        elif location is not None:
            raise ConfigError(
                f"tus_filter: redis_url: required with storage = {self.storage} "
                "(locks and upload state of S3 uploads live in Redis)"
            )

    @property
    def s3_location(self) -> S3Location | None:
        """Bucket and prefix of ``storage = s3://…``; ``None`` for ``storage = file``."""
        return parse_storage(self.storage)

    @property
    def durable(self) -> bool:
        """Whether the file storage syncs before it acknowledges (``durability = strict``)."""
        return self.durability == "strict"

    @property
    def expires(self) -> bool:
        """Whether unfinished uploads expire (drives the tus expiration extension)."""
        return self.upload_valid_duration > 0

    @property
    def sweep_interval(self) -> float:
        """Seconds between two background sweeps: ``cleanup_interval``, or by default
        ``min(600, upload_valid_duration / 2)``."""
        if self.cleanup_interval is not None:
            return self.cleanup_interval
        return min(MAX_CLEANUP_INTERVAL, self.upload_valid_duration / 2)


class Options(TypedDict, total=False):
    """The keyword options of ``UploadHandler`` and ``TusFilter``, as callers give them.

    Iterables and a space/comma separated ``cors_origins`` string are accepted
    where :class:`Settings` holds tuples; an omitted option takes its default.
    """

    upload_path: str
    tmp_file_dir: str | None
    max_size: int | None
    upload_valid_duration: int
    cleanup_interval: float | None
    protocols: Iterable[str]
    checksum_algorithms: Iterable[str]
    lock_timeout: float
    cors_origins: str | Iterable[str] | None
    behind_proxy: int
    send_file: bool
    on_create: Hook | None
    on_terminate: Hook | None
    scope: ScopeHook
    bind_to_scope: bool
    storage: str
    s3_endpoint_url: str | None
    s3_region: str | None
    redis_url: str | None
    durability: str


def _fail(option: str, value: object, why: str) -> None:
    raise ConfigError(f"tus_filter: {option}: {value!r} {why}")


# -- ini string conversion ---------------------------------------------------------------------

_SIZE = re.compile(r"^\s*([0-9]+)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(value: str) -> int | None:
    """``"2G"`` → 2147483648; ``""`` or ``"none"`` → ``None`` (no limit)."""
    if value.strip().lower() in ("", "none"):
        return None
    match = _SIZE.match(value)
    if not match:
        raise ValueError("expected a byte count such as 1048576, 500M or 2G")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0", ""):
        return False
    raise ValueError("expected true or false")


def parse_proxy_count(value: str) -> int:
    """``"2"`` → 2; ``"true"`` → 1 (one proxy); ``"false"`` → 0 (forwarding headers ignored)."""
    if value.strip().isascii() and value.strip().isdigit():
        return int(value)
    try:
        return int(parse_bool(value))
    except ValueError:
        raise ValueError("expected a number of proxies, true or false") from None


def parse_list(value: str) -> tuple[str, ...]:
    return tuple(item for item in re.split(r"[\s,]+", value.strip()) if item)


def parse_hook(value: str) -> Callable[..., Any]:
    module_name, _, attribute = value.strip().partition(":")
    if not module_name or not attribute:
        raise ValueError("expected package.module:callable")
    try:
        target: Any = import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import ({error})") from None
    if not callable(target):
        raise ValueError("is not callable")
    return target  # type: ignore[no-any-return]


def _seconds(value: str) -> float:
    return float(value)


def _optional(value: str) -> str | None:
    """An ini string; empty (``s3_region =``) means not set."""
    return value.strip() or None


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "upload_path": str.strip,
    "tmp_file_dir": str.strip,
    "max_size": parse_size,
    "upload_valid_duration": int,
    "cleanup_interval": _seconds,
    "protocols": parse_list,
    "checksum_algorithms": parse_list,
    "lock_timeout": _seconds,
    "cors_origins": parse_list,
    "behind_proxy": parse_proxy_count,
    "send_file": parse_bool,
    "on_create": parse_hook,
    "on_terminate": parse_hook,
    "scope": parse_hook,
    "bind_to_scope": parse_bool,
    "storage": str.strip,
    "s3_endpoint_url": _optional,
    "s3_region": _optional,
    "redis_url": _optional,
    "durability": str.strip,
}


def options_from_strings(options: dict[str, str]) -> dict[str, Any]:
    """Convert Paste ini strings to ``UploadHandler`` keyword arguments, naming any bad one."""
    converted: dict[str, Any] = {}
    for key, raw in options.items():
        converter = _CONVERTERS.get(key)
        if converter is None:
            raise ConfigError(f"tus_filter: {key}: unknown option")
        try:
            converted[key] = converter(raw)
        except ValueError as error:
            raise ConfigError(f"tus_filter: {key}: {raw!r} {error}") from None
    return converted


def settings_from_options(
    *, cors_origins: str | Iterable[str] | None = None, tmp_file_dir: str | None = None,
    **options: Any,
) -> Settings:
    """Build :class:`Settings` from ``UploadHandler`` keyword arguments."""
    if isinstance(cors_origins, str):
        cors_origins = parse_list(cors_origins)
    origins = tuple(cors_origins or ())
    if tmp_file_dir is not None:
        options["tmp_file_dir"] = os.path.abspath(tmp_file_dir)
    for key in ("protocols", "checksum_algorithms"):
        if key in options and not isinstance(options[key], tuple):
            options[key] = tuple(options[key])
    try:
        return Settings(cors_origins=origins, **options)
    except TypeError as error:
        raise ConfigError(f"tus_filter: {error}") from None
