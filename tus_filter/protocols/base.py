"""The strategy interface every upload protocol implements.

A protocol turns an :class:`~tus_filter.incoming.UploadRequest` into an
:class:`Outcome`: the response for the client and, when this request
completed an upload, the :class:`~tus_filter.upload.Upload` to hand
downstream.  Protocols parse HTTP and validate; they never touch the
filesystem except through :class:`~tus_filter.storage.Storage`.

Ownership is one rule, :meth:`Protocol.own_record`: an id a client names
answers only the protocol that created it (and, when the protocol binds
scopes, only the scope that created it); anything else is "not found",
exactly like an unknown id.

Exactly-once completion is built in: :meth:`Protocol.complete` must be
called with the upload's lock held, and only for a record whose status is
still ``uploading``; it flips the status to ``complete`` before the lock is
released, so a concurrent or retried request sees a finished upload and
never produces a second :class:`Outcome` with ``completed`` set.
"""

from __future__ import annotations

import functools
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ..errors import HookFailed, Reject, TusFilterError, UploadExpired, UploadNotFound
from ..http import Response
from ..incoming import UploadRequest
from ..storage import COMPLETE, ChunkLayout, Storage, UploadRecord
from ..upload import Upload, UploadInfo

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("tus_filter")

RETRY_AFTER_SECONDS = "1"


@dataclass
class Outcome:
    """``kept_headers`` stay on the final response whatever the application answers."""

    response: Response
    completed: Upload | None = None
    kept_headers: dict[str, str] = field(default_factory=dict)


class Protocol(ABC):
    """One upload protocol: recognise its requests, answer them, map errors."""

    #: ``Upload.protocol`` and the name in the ``protocols`` option.
    name: ClassVar[str]
    #: Methods and response headers this protocol needs a browser to allow (CORS).
    methods: ClassVar[tuple[str, ...]]
    expose_headers: ClassVar[tuple[str, ...]] = ()
    #: Error class → status, where this protocol's clients need another status
    #: than the error's default (looked up along the class's MRO).
    status_overrides: ClassVar[dict[type[TusFilterError], int]] = {}
    #: The statuses this protocol's clients give up on (``None``: all of them).  A
    #: hook's :class:`~tus_filter.Reject` with any other status is answered with
    #: ``refusal_status``, so that a refusal never makes the client retry.
    final_statuses: ClassVar[frozenset[int] | None] = None
    refusal_status: ClassVar[int] = 400

    def __init__(self, settings: Settings, storage: Storage):
        self.settings = settings
        self.storage = storage

    @abstractmethod
    def recognizes(self, request: UploadRequest) -> bool:
        """Whether this request is for this protocol (it may read the form or JSON body)."""

    @abstractmethod
    def handle(self, request: UploadRequest) -> Outcome:
        """Answer the request; raise a :class:`TusFilterError` for anything refused."""

    # -- responses ------------------------------------------------------------------------

    def essential_headers(self) -> dict[str, str]:
        """Headers every response of this protocol carries, the app's included."""
        return {}

    def status_for(self, error: TusFilterError) -> int:
        if isinstance(error, Reject):
            final = self.final_statuses
            return error.status if final is None or error.status in final else self.refusal_status
        for cls in type(error).__mro__:
            if cls in self.status_overrides:
                return self.status_overrides[cls]
        return error.status

    def error_response(self, error: TusFilterError) -> Response:
        """The one place an error becomes a response for this protocol's clients.

        An upload this request found expired is removed now, not at the next
        sweep (errors are rendered once the request holds no lock); the next
        request for it finds no upload at all.
        """
        if isinstance(error, UploadExpired) and error.upload_id is not None:
            try:
                self.storage.discard_expired(error.upload_id)
            except TusFilterError:  # storage is down: the next request or sweep removes it
                log.warning("tus_filter: could not remove expired upload %s", error.upload_id)
        status = self.status_for(error)
        response = self.render_error(status, error)
        if status == 503:
            # Locks, vanished records and storage outages: all clear up soon.
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        response.headers.update(error.headers)
        response.headers.update(self.essential_headers())
        return response

    def render_error(self, status: int, error: TusFilterError) -> Response:
        return Response.json(status, {"error": error.message})

    # -- ownership --------------------------------------------------------------------------

    @property
    def binds_scope(self) -> bool:
        """Whether an upload answers only requests of the scope that created it."""
        return self.settings.bind_to_scope

    def scope_of(self, request: UploadRequest) -> str:
        """The ``scope`` hook's answer for ``request`` (default: ``REMOTE_USER`` or ``""``).

        A scope the view gave :meth:`UploadHandler.handle <tus_filter.UploadHandler.handle>`
        (``request.scope``) wins over the hook.  A :class:`~tus_filter.Reject`
        from the hook refuses the request; any other exception, or an answer
        that is not a ``str``, is a broken configuration: logged, and answered
        :class:`~tus_filter.errors.HookFailed` (500).
        """
        if request.scope is not None:
            return request.scope
        hook = self.settings.scope
        try:
            scope = hook(request.environ)
        except Reject:
            raise
        except Exception as error:
            log.exception("tus_filter: the scope hook %r raised", hook)
            raise HookFailed() from error
        if not isinstance(scope, str):
            log.error("tus_filter: the scope hook %r returned %r, not a str", hook, scope)
            raise HookFailed()
        return scope

    def own_record(self, request: UploadRequest, upload_id: str) -> UploadRecord:
        """The record of ``upload_id``, a client-named id, if ``request`` may address it.

        Raises :class:`UploadNotFound` for an unknown id and, identically, for
        another protocol's upload or (when :attr:`binds_scope`) another
        scope's; :class:`UploadExpired` only for an expired upload of its own.
        Every load of an id a client named goes through here.
        """
        try:
            return self._owned(request, self.storage.load(upload_id))
        except UploadExpired:
            self._owned(request, self.storage.load(upload_id, allow_expired=True))
            raise

    def _owned(self, request: UploadRequest, record: UploadRecord) -> UploadRecord:
        if record.protocol != self.name:
            raise UploadNotFound()
        if self.binds_scope and record.scope != self.scope_of(request):
            raise UploadNotFound()
        return record

    # -- shared steps ---------------------------------------------------------------------

    def run_on_create(self, request: UploadRequest, info: UploadInfo) -> None:
        """Let the application veto a new upload (it raises :class:`~tus_filter.Reject`)."""
        if self.settings.on_create is not None:
            self.settings.on_create(request.environ, info)

    def complete(self, record: UploadRecord, layout: ChunkLayout | None = None) -> Upload:
        """Assemble the bytes, mark ``record`` complete and save it (the caller holds its lock).

        ``layout``: a chunked upload's (every chunk counted); ``None`` for
        one whose bytes were appended or concatenated.
        """
        self.storage.data.assemble(record, layout)
        record.status = COMPLETE
        record.completed = time.time()
        self.storage.save(record)
        log.info("upload %s complete (%s, %s bytes)", record.upload_id, self.name, record.length)
        return self.upload_of(record)

    def upload_of(self, record: UploadRecord) -> Upload:
        return completed_upload(record, self.storage)

    def info_of(self, record: UploadRecord) -> UploadInfo:
        return UploadInfo(
            protocol=record.protocol,
            upload_id=record.upload_id,
            size=record.length,
            filename=record.filename,
            metadata=dict(record.metadata),
            content_type=record.content_type,
        )

    def terminate(self, request: UploadRequest) -> None:
        """Delete the upload ``request.subpath`` names, after ``on_terminate`` allows it.

        A stranger's id is refused before waiting for its lock; a running
        append is asked to stop and save (``request_release``), then the
        upload goes.  tus termination and the IETF draft's cancellation.
        """
        self.own_record(request, request.subpath)  # a stranger's id: 404, without waiting
        with self.storage.lock(request.subpath, request_release=True) as lock:
            record = self.own_record(request, request.subpath)
            if self.settings.on_terminate is not None:
                self.settings.on_terminate(request.environ, self.info_of(record))
            self.storage.delete(record.upload_id, lock)
        log.info("tus_filter: upload %s terminated", record.upload_id)

    def discard(self, upload_id: str) -> None:
        """Delete an upload nobody was told about, while already handling an error.

        A failure here is logged, not raised: it must not hide the error at hand.
        """
        try:
            with self.storage.lock(upload_id) as lock:
                self.storage.delete(upload_id, lock)
        except TusFilterError:
            log.warning("tus_filter: could not discard upload %s", upload_id, exc_info=True)

    def touch(self, record: UploadRecord) -> None:
        """Record activity: unfinished uploads expire relative to their last request."""
        record.touched = time.time()


def completed_upload(record: UploadRecord, storage: Storage) -> Upload:
    """The hand-off object for a completed ``record``."""
    data = storage.data
    return Upload(
        protocol=record.protocol,
        upload_id=record.upload_id,
        path=data.local_path(record),
        size=record.length or 0,
        filename=record.filename,
        metadata=dict(record.metadata),
        content_type=record.content_type,
        location=data.location(record),
        opener=functools.partial(data.open, record),
    )
