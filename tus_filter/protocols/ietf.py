"""Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload), interop versions 3 to 9.

* Creation: ``POST`` to the collection with ``Upload-Complete`` (``?0``:
  more will follow; ``?1``: this body is everything) → 201 with ``Location``.
* Offset retrieval: ``HEAD`` on the upload.  Append: ``PATCH``.  Cancellation: ``DELETE``.

The differences between interop versions are data (:mod:`.ietf_versions`);
structured-field values are parsed in :mod:`.structured`; bodies are
appended by :mod:`.appending`, as for tus.  Locking is tus's: creation, PATCH
and DELETE hold the upload's lock around load → validate → write → save, and a
PATCH or DELETE asks an append still holding it to stop (the draft's
recommended handling of concurrency); HEAD reads the last saved record
without it.

An upload completes when the client says so (``?1``) with the body whole,
or when its offset reaches a known length (tus-js-client never sends ``?1``
for an empty file); then the application is called once and its answer is
the final response, carrying ``Upload-Complete: ?1``.

WSGI cannot send the ``104 Upload Resumption Supported`` interim response, so
a client learns the upload's URL only from the final response to its
creation request.  If that request's body is cut short, nobody knows the URL
and nobody can resume: the upload is deleted at once.
"""

from __future__ import annotations

import json
import time
from email.message import Message
from typing import TYPE_CHECKING

from ..errors import (
    AlreadyComplete,
    BadRequest,
    InconsistentLength,
    MethodNotAllowed,
    OffsetConflict,
    PayloadTooLarge,
    TusFilterError,
    UnsupportedMediaType,
)
from ..http import Response
from ..incoming import UploadRequest
from ..storage import UploadRecord
from ..upload import Upload
from .appending import COLLECTION_ALLOW, UPLOAD_ALLOW, append_body, room, too_large
from .base import Outcome, Protocol
from .ietf_versions import (
    COMPLETED_UPLOAD,
    INCONSISTENT_LENGTH,
    INTEROP_VERSIONS,
    LATEST,
    MISMATCHING_OFFSET,
    PARTIAL_UPLOAD,
    PROBLEM_BASE,
    Interop,
)
from .structured import parse_integer, serialize_dictionary
from .tus_headers import content_type_of, filename_of, parse_metadata

if TYPE_CHECKING:
    from ..config import Settings

INTEROP_FIELD = "Upload-Draft-Interop-Version"
#: Any of these (and no ``Tus-Resumable``) makes a request the draft's.
DRAFT_FIELDS = (INTEROP_FIELD, "Upload-Complete", "Upload-Incomplete")

_PROBLEMS: tuple[tuple[type[TusFilterError], str, str], ...] = (
    (OffsetConflict, MISMATCHING_OFFSET, "offset from request does not match offset of resource"),
    (InconsistentLength, INCONSISTENT_LENGTH, "inconsistent length values for upload"),
    (AlreadyComplete, COMPLETED_UPLOAD, "upload is already completed"),
)


class IetfProtocol(Protocol):
    """Resumable Uploads for HTTP (datatracker.ietf.org/doc/draft-ietf-httpbis-resumable-upload)."""

    name = "ietf"
    methods = ("POST", "HEAD", "PATCH", "DELETE", "OPTIONS")
    expose_headers = (
        "Location",
        "Upload-Offset",
        "Upload-Length",
        "Upload-Complete",
        "Upload-Incomplete",
        "Upload-Limit",
    )

    # -- recognition and routing -------------------------------------------------------------------

    def recognizes(self, request: UploadRequest) -> bool:
        if request.method == "GET" or request.header("Tus-Resumable") is not None:
            return False  # GET stays the application's (downloads), as with tus
        if any(request.header(name) is not None for name in DRAFT_FIELDS):
            return True
        # A bare OPTIONS is tus's (which advertises Upload-Limit too), unless tus is off.
        return request.method == "OPTIONS" and "tus" not in self.settings.protocols

    def handle(self, request: UploadRequest) -> Outcome:
        interop: Interop | None = None
        try:
            interop = _interop_of(request)
            return self._route(interop, request)
        except TusFilterError as error:
            return Outcome(self._error_response(error, interop, request))

    def _route(self, interop: Interop, request: UploadRequest) -> Outcome:
        method = request.method
        if method == "OPTIONS":
            return Outcome(Response(200, upload_limit(self.settings, interop)))  # as tusd
        if not request.subpath:
            if method == "POST":
                return self._create(interop, request)
            raise MethodNotAllowed(COLLECTION_ALLOW)
        if method == "HEAD":
            return Outcome(self._head(interop, request))
        if method == "PATCH":
            return self._append(interop, request)
        if method == "DELETE":
            self.terminate(request)
            return Outcome(Response(204))
        raise MethodNotAllowed(UPLOAD_ALLOW)

    # -- responses ---------------------------------------------------------------------------------

    def render_error(self, status: int, error: TusFilterError) -> Response:
        return Response.text(status, f"{error.message}\n", {"X-Content-Type-Options": "nosniff"})

    def _error_response(
        self, error: TusFilterError, interop: Interop | None, request: UploadRequest
    ) -> Response:
        """:meth:`error_response`, plus what the request's interop version adds to errors.

        Errors are the upload protocol's, never the application's, so they say
        ``Upload-Complete: ?0``; a 413 carries the limits; an error the version
        has a problem type for gets an ``application/problem+json`` body.
        """
        response = self.error_response(error)
        if interop is not None:
            response.headers.update(interop.complete_header(False))
            if response.status == 413:
                response.headers.update(upload_limit(self.settings, interop))
            problem = _problem(error, interop)
            if problem is not None:
                response.body = json.dumps(problem).encode()
                response.headers["Content-Type"] = "application/problem+json"
        if request.method == "HEAD":
            response.body = b""
            response.headers.pop("Content-Type", None)
        return response

    # -- creation ----------------------------------------------------------------------------------

    def _create(self, interop: Interop, request: UploadRequest) -> Outcome:
        complete = _read_complete(interop, request)
        length = _length_of(request, complete, offset=0, known=None)
        if length is not None and too_large(self.settings, length):
            raise PayloadTooLarge(f"Upload-Length exceeds the maximum of {self.settings.max_size}")
        left, declared = room(self.settings, length, 0), request.body_length
        if declared is not None and left is not None and declared > left:
            raise PayloadTooLarge("the body is larger than the upload may be")
        metadata = parse_metadata(request.header("Upload-Metadata"))  # tus-js-client sends it
        record = UploadRecord(
            upload_id=self.storage.new_id(),
            protocol=self.name,
            length=length,
            filename=disposition_filename(request.header("Content-Disposition"))
            or filename_of(metadata),
            content_type=_content_type(request) or content_type_of(metadata),
            metadata=metadata,
            scope=self.scope_of(request),
        )
        self.run_on_create(request, self.info_of(record))
        self.storage.create(record)
        with self.storage.lock(record.upload_id) as lock:
            try:
                whole = append_body(self.settings, self.storage, request, record, lock)
                if not whole:
                    # No 104 under WSGI: the client never learned this upload's URL.
                    raise BadRequest("the request body ended early; nobody can resume it")
                completed = self._settle(record, complete=complete)
            except TusFilterError:
                self.storage.delete(record.upload_id, lock)
                raise
        headers = {
            "Location": f"{request.collection_url}/{record.upload_id}",
            **_state(interop, record),
            **upload_limit(self.settings, interop, record),
        }
        return _outcome(interop, Response(201, headers), completed)

    def _settle(self, record: UploadRecord, *, complete: bool) -> Upload | None:
        """Save ``record`` after a whole body; complete it if it is done (lock held)."""
        if complete and record.length is None:
            record.length = record.offset
        if record.length is not None and record.offset == record.length:
            return self.complete(record)
        self.storage.save(record)  # what arrived counts, even if the client erred
        if complete:
            raise InconsistentLength(
                f"the upload was declared complete at {record.offset} of {record.length} bytes"
            )
        return None

    # -- offset retrieval --------------------------------------------------------------------------

    def _head(self, interop: Interop, request: UploadRequest) -> Response:
        # No lock: records are replaced atomically, and a HEAD must not wait for a PATCH.
        record = self.own_record(request, request.subpath)
        headers = {**_state(interop, record), "Cache-Control": "no-store"}
        if record.length is not None:
            headers["Upload-Length"] = str(record.length)
        headers.update(upload_limit(self.settings, interop, record))
        return Response(204, headers)

    # -- append ------------------------------------------------------------------------------------

    def _append(self, interop: Interop, request: UploadRequest) -> Outcome:
        # What needs no record is checked first, before the lock and the body.
        media_type = interop.append_media_type
        if media_type is not None and request.content_type != media_type:
            raise UnsupportedMediaType(f"PATCH requires Content-Type: {media_type}")
        offset = parse_integer(request.header("Upload-Offset"))
        if offset is None:
            raise BadRequest("Upload-Offset must be a non-negative integer")
        complete = _read_complete(interop, request)

        self.own_record(request, request.subpath)  # a stranger's id: 404, without waiting
        # A request still holding the lock is most likely a dead client's: ask it to stop
        # (the draft's recommended approach to concurrency).
        with self.storage.lock(request.subpath, request_release=True) as lock:
            record = self.own_record(request, request.subpath)
            if offset != record.offset:
                raise OffsetConflict(
                    f"Upload-Offset is {offset}, the upload is at {record.offset}",
                    headers={"Upload-Offset": str(record.offset)},
                    expected=record.offset,
                    provided=offset,
                )
            if record.is_complete:
                if complete and request.body_length == 0:
                    # A retried completion whose answer was lost: nothing to hand off again.
                    return Outcome(Response(204, _state(interop, record)))
                raise AlreadyComplete()
            length = _length_of(request, complete, offset=record.offset, known=record.length)
            if length is not None and too_large(self.settings, length):
                raise PayloadTooLarge(f"the length exceeds the maximum of {self.settings.max_size}")
            new_length = length if record.length is None else None
            whole = append_body(
                self.settings, self.storage, request, record, lock, new_length=new_length
            )
            completed = self._settle(record, complete=complete and whole)
        return _outcome(interop, Response(204, _state(interop, record)), completed)


def upload_limit(
    settings: Settings, interop: Interop = LATEST, record: UploadRecord | None = None
) -> dict[str, str]:
    """``Upload-Limit`` for ``interop`` (none before interop 6), with ``record``'s lifetime.

    Also advertised by tus's OPTIONS answer: one OPTIONS answers for both.
    """
    if not interop.limits:
        return {}
    members: dict[str, int] = {}
    if settings.max_size is not None:
        members["max-size"] = settings.max_size
    expires = None if record is None else record.expires_at(settings.upload_valid_duration)
    if expires is not None:
        members[interop.age_limit] = max(int(expires - time.time()), 0)
    # "If the server does not apply any limits, it MUST use min-size=0."
    return {"Upload-Limit": serialize_dictionary(members or {"min-size": 0})}


def _state(interop: Interop, record: UploadRecord) -> dict[str, str]:
    """``Upload-Offset`` and the completeness field, the state every answer reports."""
    return {"Upload-Offset": str(record.offset), **interop.complete_header(record.is_complete)}


def _outcome(interop: Interop, response: Response, completed: Upload | None) -> Outcome:
    """A completing request's final response says ``Upload-Complete: ?1``, even when the
    application refuses the file: the client must not resume what was all received."""
    if completed is None:
        return Outcome(response)
    return Outcome(response, completed, kept_headers=interop.complete_header(True))


# -- request fields --------------------------------------------------------------------------------


def _interop_of(request: UploadRequest) -> Interop:
    """The request's interop version; without the field, the newest text."""
    raw = request.header(INTEROP_FIELD)
    if raw is None:
        return LATEST
    number = parse_integer(raw)
    interop = None if number is None else INTEROP_VERSIONS.get(number)
    if interop is None:
        served = f"{min(INTEROP_VERSIONS)} to {max(INTEROP_VERSIONS)}"
        raise BadRequest(f"{INTEROP_FIELD} {raw!r} is not served; this server speaks {served}")
    return interop


def _read_complete(interop: Interop, request: UploadRequest) -> bool:
    complete = interop.read_complete(request.header(interop.complete_field))
    if complete is None:
        raise BadRequest(f"{interop.complete_field} must be ?0 or ?1")
    return complete


def _length_of(
    request: UploadRequest, complete: bool, *, offset: int, known: int | None
) -> int | None:
    """The upload's length from every indication in the request and the record, or None.

    ``Upload-Length``, and ``Upload-Complete: ?1`` with a ``Content-Length``
    (offset plus the body), must agree with each other and with a length
    recorded before (draft: "their indicated values MUST match").
    """
    declared = request.body_length
    indications = {
        "Upload-Length": parse_integer(request.header("Upload-Length")),
        "the body completing the upload": offset + declared
        if complete and declared is not None
        else None,
        "the recorded length": known,
    }
    values = {value for value in indications.values() if value is not None}
    if len(values) > 1:
        said = ", ".join(
            f"{name}: {value}" for name, value in indications.items() if value is not None
        )
        raise InconsistentLength(f"inconsistent lengths ({said})")
    length = values.pop() if values else None
    if length is not None and length < offset:
        raise InconsistentLength(f"the length {length} is below the offset {offset}")
    return length


def disposition_filename(value: str | None) -> str | None:
    """The filename in a ``Content-Disposition`` (``filename*`` decoded), if any."""
    if not value:
        return None
    message = Message()
    message["Content-Disposition"] = value
    return message.get_filename() or None


def _content_type(request: UploadRequest) -> str | None:
    """The creation request's media type, the representation's (not partial-upload)."""
    media_type = request.content_type
    if media_type == PARTIAL_UPLOAD:
        return None
    return content_type_of({"content-type": media_type})


def _problem(error: TusFilterError, interop: Interop) -> dict[str, object] | None:
    """The RFC 9457 problem details for ``error``, if ``interop`` defines its type."""
    for cls, kind, title in _PROBLEMS:
        if isinstance(error, cls) and kind in interop.problems:
            problem: dict[str, object] = {
                "type": PROBLEM_BASE + kind,
                "title": title,
                "detail": error.message,
            }
            if isinstance(error, OffsetConflict):
                problem["expected-offset"] = error.expected
                problem["provided-offset"] = error.provided
            return problem
    return None
