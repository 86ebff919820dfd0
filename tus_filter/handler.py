"""The upload handler: one upload request in, one response out.

:class:`UploadHandler` is the whole of tus_filter's request handling: match
``upload_path``, answer CORS preflights, let the enabled protocols recognise
the request, answer it, map errors, add CORS headers.  Views call
:meth:`UploadHandler.handle` with a ``webob.Request``; the WSGI filter
(:class:`tus_filter.filter.TusFilter`) is a thin edge over one handler that
adds the pass-through and the hand-off to the wrapped application.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Unpack

import webob

from .backends import open_storage
from .config import Options, settings_from_options
from .cors import CorsPolicy
from .errors import TusFilterError, UploadExpired, UploadIncomplete, UploadNotFound
from .http import Response, status_line
from .incoming import UploadRequest
from .protocols import PROTOCOLS, Outcome, Protocol
from .protocols.base import completed_upload
from .protocols.tus_state import PARTIAL, TusState
from .upload import Upload
from .urls import collection_url, match_upload_path

log = logging.getLogger("tus_filter")

#: ``environ`` key of the ``webob.Request`` given to :meth:`UploadHandler.handle`,
#: so hooks (which receive the environ) can see the view's request.
REQUEST_KEY = "tus_filter.request"


@dataclass
class UploadResult:
    """What :meth:`UploadHandler.handle` answers.

    ``response`` is the ``webob.Response`` for the client (a view returns it,
    or adapts it).  ``upload`` is the :class:`~tus_filter.Upload` this request
    completed, else ``None``.  ``recognized`` is ``False`` for a request that
    is not an upload request (outside ``upload_path``, or no enabled protocol
    knows it); ``response`` is then a ``404``.
    """

    response: webob.Response
    upload: Upload | None = None
    recognized: bool = True


@dataclass
class Exchange:
    """A protocol's answer before CORS, for the WSGI edge to merge with the app's."""

    response: Response
    upload: Upload | None = None
    #: Headers the final response keeps whatever the app answers: the protocol's
    #: essential ones (``Tus-Resumable``) and the outcome's ``kept_headers``.
    essential_headers: dict[str, str] = field(default_factory=dict)


class UploadHandler:
    """Resumable uploads for one ``upload_path``, callable from any view.

    Options (:class:`~tus_filter.config.Options`, keyword-only; the Paste ini
    takes the same names as strings; defaults in README "Options"):

    * ``upload_path`` — where uploads live, below ``SCRIPT_NAME``; in a view,
      the route's prefix (``/files`` for ``/files`` and ``/files/{id}``).
    * ``tmp_file_dir`` — storage directory, shared by all worker processes.
    * ``max_size`` — largest upload in bytes (``None``: no limit).
    * ``upload_valid_duration`` — seconds an unfinished upload lives after its
      last request, and a finished one after completion (``0``: forever).
    * ``cleanup_interval`` — seconds between two background sweeps for expired
      uploads (default ``min(600, upload_valid_duration / 2)``).
    * ``protocols`` — enabled strategies, names from
      :data:`tus_filter.protocols.PROTOCOLS`.
    * ``checksum_algorithms`` — tus checksum extension (empty: disabled).
    * ``lock_timeout`` — seconds to wait for an upload's lock.
    * ``cors_origins`` — ``"*"`` or origins allowed to upload cross-origin.
    * ``behind_proxy`` — how many proxies in front of us to trust for absolute
      URLs (``X-Forwarded-*`` or ``Forwarded``; ``True`` means one, ``0`` none).
    * ``send_file`` — (filter only) also pass the assembled file downstream.
    * ``on_create`` / ``on_terminate`` — ``hook(environ, UploadInfo)``; raise
      :class:`~tus_filter.Reject` to refuse.
    * ``scope`` — ``scope(environ) -> str``: whose uploads a request may see
      (default: ``REMOTE_USER``); part of every flow.js / resumable.js key.
      A view may pass the scope to :meth:`handle` instead.
    * ``bind_to_scope`` — a tus, IETF-draft or uid upload answers only
      requests of the scope that created it.
    * ``storage`` — ``"file"`` (bytes in ``tmp_file_dir``) or
      ``"s3://bucket/prefix"`` (an S3-compatible object store; needs
      ``redis_url``); ``s3_endpoint_url`` / ``s3_region`` — the S3 server
      and region (credentials come from boto3's chain).
    * ``redis_url`` — records and locks in Redis, shared by hosts.
    """

    def __init__(self, **options: Unpack[Options]):
        self.settings = settings_from_options(**options)
        self.storage = open_storage(self.settings)
        self.protocols: list[Protocol] = [
            cls(self.settings, self.storage)
            for name, cls in PROTOCOLS.items()
            if name in self.settings.protocols
        ]
        self.cors = CorsPolicy(
            self.settings.cors_origins,
            methods=_union([*p.methods, "OPTIONS"] for p in self.protocols),
            expose=_union(p.expose_headers for p in self.protocols),
        )
        self._sweeper = _Sweeper(self.storage.cleanup, self.settings.sweep_interval)

    # -- views ----------------------------------------------------------------------------

    def handle(self, request: webob.Request, *, scope: str | None = None) -> UploadResult:
        """Answer ``request`` (a ``webob.Request``, which a Pyramid request is).

        ``scope`` names whose upload this is (e.g. ``request.authenticated_userid``);
        without it, the ``scope`` hook decides (by default ``REMOTE_USER``).  Hooks receive
        ``request.environ``, with ``request`` itself under
        ``environ["tus_filter.request"]``.
        """
        environ = request.environ
        environ[REQUEST_KEY] = request
        exchange = self.exchange(environ, scope=scope)
        if exchange is None:
            return UploadResult(
                self.finish(environ, Response.text(404, "not an upload request\n")),
                recognized=False,
            )
        return UploadResult(self.finish(environ, exchange.response), exchange.upload)

    # -- the steps, shared with the WSGI edge ---------------------------------------------

    def exchange(self, environ: dict[str, Any], *, scope: str | None = None) -> Exchange | None:
        """The answer to an upload request, before CORS; ``None`` if it is none.

        ``None`` means outside ``upload_path`` or recognised by no enabled
        protocol; any body a protocol read while looking is put back.
        """
        subpath = match_upload_path(environ.get("PATH_INFO", ""), self.settings.upload_path)
        if subpath is None:
            return None
        if self.settings.expires:
            self._sweeper.tick()
        if self.cors.is_preflight(environ):
            return Exchange(self.cors.preflight(environ))
        request = UploadRequest(
            environ,
            subpath,
            collection_url(environ, self.settings.upload_path,
                           behind_proxy=self.settings.behind_proxy),
            scope=scope,
        )
        protocol = self._recognize(request)
        if protocol is None:
            request.restore_body()
            return None
        outcome = self._handle(protocol, request)
        kept = {**protocol.essential_headers(), **outcome.kept_headers}
        return Exchange(outcome.response, outcome.completed, kept)

    def finish(self, environ: dict[str, Any], response: Response) -> webob.Response:
        """``response`` with CORS headers, as a ``webob.Response``."""
        self.cors.decorate(environ, response)
        return webob.Response(
            status=status_line(response.status),
            headerlist=response.header_list(),
            app_iter=[response.body],
        )

    def _recognize(self, request: UploadRequest) -> Protocol | None:
        for protocol in self.protocols:
            try:
                if protocol.recognizes(request):
                    return protocol
            except TusFilterError:
                continue  # unreadable as this protocol's request; another may know it
        return None

    @staticmethod
    def _handle(protocol: Protocol, request: UploadRequest) -> Outcome:
        try:
            return protocol.handle(request)
        except TusFilterError as error:
            return Outcome(protocol.error_response(error))
        except Exception:
            log.exception("tus_filter: unexpected error in %s", protocol.name)
            return Outcome(protocol.error_response(TusFilterError()))

    # -- application API ------------------------------------------------------------------

    def get_upload(self, upload_id: str) -> Upload:
        """The completed upload ``upload_id``.

        Raises :class:`~tus_filter.UploadNotFound` (unknown, deleted or
        expired; :class:`~tus_filter.UploadExpired` is a subclass) or
        :class:`~tus_filter.UploadIncomplete`.
        """
        try:
            record = self.storage.load(upload_id)
        except UploadExpired:
            self.storage.discard_expired(upload_id)
            raise
        if TusState.of(record).concat == PARTIAL:
            raise UploadNotFound()  # a piece of a tus concatenation, never a file of its own
        if not record.is_complete:
            raise UploadIncomplete()
        return completed_upload(record, self.storage)

    def cleanup(self) -> int:
        """Delete expired uploads now (e.g. from cron); return how many were deleted."""
        return self.storage.cleanup()


def _union(groups: Iterable[Iterable[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    return list(seen)


class _Sweeper:
    """Runs ``cleanup`` in a background thread every ``interval`` seconds, driven by requests.

    :meth:`tick` (on every request under ``upload_path``) starts a sweep once
    one is due.  The first is due one interval after the first request, never
    during it: a process does not sweep under the feet of the requests that
    started it, and starts no thread before it serves (no thread crosses a
    pre-fork).  Requests themselves remove the expired uploads they find.
    """

    def __init__(self, cleanup: Callable[[], int], interval: float):
        self._cleanup = cleanup
        self.interval = interval
        self._next: float | None = None
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self._next is None:
                self._next = now + self.interval
            if now < self._next:
                return
            self._next = now + self.interval
        threading.Thread(target=self._run, name="tus_filter-cleanup", daemon=True).start()

    def _run(self) -> None:
        try:
            deleted = self._cleanup()
        except Exception:
            log.exception("tus_filter: cleanup failed")
            return
        if deleted:
            log.info("tus_filter: deleted %d expired uploads", deleted)
