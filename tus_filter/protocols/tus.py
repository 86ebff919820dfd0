"""tus 1.0.0: core protocol plus creation, creation-with-upload, creation-defer-length,
termination, expiration, checksum, concatenation and concatenation-unfinished.

Header values are parsed in :mod:`.tus_headers`; this module routes, validates
against the stored record and writes through :class:`~tus_filter.storage.Storage`.

Locking: PATCH, DELETE, the body of a creation-with-upload and the assembly
of a final upload hold the upload's lock around load → validate → write →
save.  A PATCH or DELETE that finds the lock held asks the holder to let go:
a PATCH polls for that while it writes and stops, keeping what it wrote.
HEAD reads without the lock (records are replaced atomically), so it never
waits behind a long PATCH; it reports the offset of the last finished write.
The only nested locks are "partial, then final" — never the other way — and
only one unfinished partial's lock is held at a time, so there is no cycle.
"""

from __future__ import annotations

import logging
import re

from ..errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    OffsetConflict,
    PayloadTooLarge,
    TusFilterError,
    UnsupportedMediaType,
    UnsupportedVersion,
    UploadExpired,
    UploadLocked,
    UploadNotFound,
)
from ..http import Response
from ..incoming import UploadRequest
from ..storage import UploadRecord
from ..upload import Upload
from .appending import COLLECTION_ALLOW, UPLOAD_ALLOW, append_body, room, too_large
from .base import Outcome, Protocol
from .ietf import upload_limit
from .tus_headers import (
    OFFSET_OCTET_STREAM,
    TUS_VERSION,
    Concat,
    content_type_of,
    filename_of,
    http_date,
    parse_checksum,
    parse_concat,
    parse_defer_length,
    parse_int,
    parse_metadata,
    upload_id_from_url,
)
from .tus_state import FINAL, PARTIAL, TusState

log = logging.getLogger("tus_filter")

_ID = re.compile(r"^[0-9a-f]{32}$")
_TUS_METHODS = ("HEAD", "PATCH", "DELETE", "POST")
_CREATION_HEADERS = ("Upload-Length", "Upload-Defer-Length", "Upload-Concat")


class TusProtocol(Protocol):
    """tus 1.0.0 (https://tus.io/protocols/resumable-upload)."""

    name = "tus"
    methods = ("POST", "HEAD", "PATCH", "DELETE", "OPTIONS")
    expose_headers = (
        "Location",
        "Upload-Offset",
        "Upload-Length",
        "Upload-Defer-Length",
        "Upload-Expires",
        "Upload-Metadata",
        "Upload-Concat",
        "Tus-Resumable",
        "Tus-Version",
        "Tus-Extension",
        "Tus-Max-Size",
        "Tus-Checksum-Algorithm",
    )

    # -- recognition and routing -------------------------------------------------------------------

    def recognizes(self, request: UploadRequest) -> bool:
        method = _method(request)
        if method == "GET":
            return False  # downloads are the application's business, never tus
        if method == "OPTIONS" or request.header("Tus-Resumable") is not None:
            return True
        if request.header("X-HTTP-Method-Override") is not None:
            return True
        if request.subpath:
            return bool(_ID.match(request.subpath)) and method in _TUS_METHODS
        return method == "POST" and any(request.header(h) is not None for h in _CREATION_HEADERS)

    def handle(self, request: UploadRequest) -> Outcome:
        method = _method(request)
        try:
            return self._route(method, request)
        except TusFilterError as error:
            response = self.error_response(error)
            if method == "HEAD":
                response.body = b""
                response.headers.pop("Content-Type", None)
            return Outcome(response)

    def _route(self, method: str, request: UploadRequest) -> Outcome:
        if method == "OPTIONS":
            return Outcome(self._options())
        version = (request.header("Tus-Resumable") or "").strip()
        if version != TUS_VERSION:
            raise UnsupportedVersion(
                f"Tus-Resumable {version!r} is not supported; use {TUS_VERSION}",
                headers={"Tus-Version": TUS_VERSION},
            )
        if not request.subpath:
            if method == "POST":
                return self._create(request)
            raise MethodNotAllowed(COLLECTION_ALLOW)
        if method == "HEAD":
            return Outcome(self._head(request))
        if method == "PATCH":
            return self._patch(request)
        if method == "DELETE":
            return Outcome(self._delete(request))
        raise MethodNotAllowed(UPLOAD_ALLOW)

    # -- responses ---------------------------------------------------------------------------------

    def essential_headers(self) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION}

    def render_error(self, status: int, error: TusFilterError) -> Response:
        return Response.text(status, f"{error.message}\n", {"X-Content-Type-Options": "nosniff"})

    @property
    def extensions(self) -> list[str]:
        """``Tus-Extension``, derived from what is enabled."""
        names = [
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "termination",
            "concatenation",
            "concatenation-unfinished",
        ]
        if self.settings.checksum_algorithms:
            names.append("checksum")
        if self.settings.expires:
            names.append("expiration")
        return names

    def _options(self) -> Response:
        headers = {
            **self.essential_headers(),
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": ",".join(self.extensions),
        }
        if self.settings.max_size is not None:
            headers["Tus-Max-Size"] = str(self.settings.max_size)
        if self.settings.checksum_algorithms:
            headers["Tus-Checksum-Algorithm"] = ",".join(self.settings.checksum_algorithms)
        if "ietf" in self.settings.protocols:
            headers.update(upload_limit(self.settings))  # the draft's discovery, same path
        # 200, as tusd: the spec allows 204 too, but waitress closes the connection after a 204.
        return Response(200, headers)

    def _headers(self, record: UploadRecord, *, offset: bool = True) -> dict[str, str]:
        """Tus-Resumable, Upload-Offset and, while it can expire, Upload-Expires."""
        headers = self.essential_headers()
        if offset:
            headers["Upload-Offset"] = str(record.offset)
        expires = record.expires_at(self.settings.upload_valid_duration)
        if not record.is_complete and expires is not None:
            headers["Upload-Expires"] = http_date(expires)
        return headers

    # -- HEAD --------------------------------------------------------------------------------------

    def _head(self, request: UploadRequest) -> Response:
        # No lock: records are replaced atomically, and a HEAD must not wait
        # for (or interrupt) a long PATCH.  It reports the last saved offset.
        record = self.own_record(request, request.subpath)
        state = TusState.of(record)
        final_pending = state.concat == FINAL and not record.is_complete
        headers = self._headers(record, offset=not final_pending)
        headers["Cache-Control"] = "no-store"
        if record.length is not None:
            headers["Upload-Length"] = str(record.length)
        elif state.concat != FINAL:
            headers["Upload-Defer-Length"] = "1"
        if state.raw_metadata:
            headers["Upload-Metadata"] = state.raw_metadata
        if state.concat == PARTIAL:
            headers["Upload-Concat"] = PARTIAL
        elif state.concat == FINAL and state.concat_header:
            headers["Upload-Concat"] = state.concat_header
        return Response(200, headers)

    # -- POST (creation) ---------------------------------------------------------------------------

    def _create(self, request: UploadRequest) -> Outcome:
        concat = parse_concat(request.header("Upload-Concat"))
        raw_metadata = request.header("Upload-Metadata")
        metadata = parse_metadata(raw_metadata)
        if concat is not None and concat.final:
            return self._create_final(request, concat, metadata)

        length_header = request.header("Upload-Length")
        deferred = parse_defer_length(request.header("Upload-Defer-Length"))
        if length_header is not None and deferred:
            raise BadRequest("send either Upload-Length or Upload-Defer-Length, not both")
        if length_header is None and not deferred:
            raise BadRequest("Upload-Length or Upload-Defer-Length: 1 is required")
        length = None if deferred else parse_int("Upload-Length", length_header or "")
        if length is not None and too_large(self.settings, length):
            raise PayloadTooLarge(f"Upload-Length exceeds the maximum of {self.settings.max_size}")

        with_upload = request.content_type == OFFSET_OCTET_STREAM
        checksum = None
        if with_upload:
            checksum = parse_checksum(
                request.header("Upload-Checksum"), self.settings.checksum_algorithms
            )
            left = room(self.settings, length, 0)
            declared = request.body_length
            if declared is not None and left is not None and declared > left:
                raise PayloadTooLarge("the body is larger than Upload-Length")
        elif _has_body(request):
            raise UnsupportedMediaType(f"a creation body must be {OFFSET_OCTET_STREAM}")

        partial = concat is not None
        record = self._new_record(
            request, length, metadata, raw_metadata, concat=PARTIAL if partial else None
        )
        self.run_on_create(request, self.info_of(record))
        self.storage.create(record)

        completed: Upload | None = None
        if with_upload or length == 0:
            with self.storage.lock(record.upload_id) as lock:
                if with_upload:
                    try:
                        append_body(self.settings, self.storage, request, record, lock, checksum)
                    except TusFilterError:
                        # Nobody has the URL yet: a refused first chunk leaves no upload.
                        self.storage.delete(record.upload_id, lock)
                        raise
                completed = self._finish_if_complete(record)
        headers = self._headers(record, offset=with_upload)
        headers["Location"] = f"{request.collection_url}/{record.upload_id}"
        if partial:
            headers["Upload-Concat"] = PARTIAL
        return Outcome(Response(201, headers), completed)

    def _create_final(
        self, request: UploadRequest, concat: Concat, metadata: dict[str, str]
    ) -> Outcome:
        if request.header("Upload-Length") is not None:
            raise BadRequest("a final upload must not send Upload-Length")
        if request.header("Upload-Defer-Length") is not None:
            raise BadRequest("a final upload must not send Upload-Defer-Length")
        if _has_body(request):
            raise Forbidden("a final upload cannot carry data")
        part_ids = [self._partial_id(url, request) for url in concat.urls]
        partials = {part_id: self._load_partial(request, part_id) for part_id in part_ids}
        lengths = [partials[part_id].length for part_id in part_ids]
        length = None if None in lengths else sum(n or 0 for n in lengths)
        if length is not None and too_large(self.settings, length):
            raise PayloadTooLarge(
                f"the partial uploads exceed the maximum of {self.settings.max_size}"
            )
        raw_metadata = request.header("Upload-Metadata")
        concat_header = (request.header("Upload-Concat") or "").strip()
        record = self._new_record(
            request,
            length,
            metadata,
            raw_metadata,
            concat=FINAL,
            concat_header=concat_header,
            parts=part_ids,
        )
        self.run_on_create(request, self.info_of(record))
        self.storage.create(record)
        try:
            for part_id in partials:
                self._await_partial(request, part_id, record.upload_id)
            try:
                completed = self._settle_final(record.upload_id)
            except UploadLocked:
                completed = None  # a partial's PATCH holds the final: it is settling it
        except UploadNotFound as error:  # a partial was deleted or expired meanwhile
            self.discard(record.upload_id)
            raise BadRequest(f"Upload-Concat: {error.message}") from None
        except TusFilterError:  # UploadLocked on a busy partial (423: retry), BadRequest...
            self.discard(record.upload_id)
            raise
        record = self.storage.load(record.upload_id)
        headers = self._headers(record, offset=record.is_complete)
        headers["Location"] = f"{request.collection_url}/{record.upload_id}"
        headers["Upload-Concat"] = concat_header  # as received, like HEAD
        return Outcome(Response(201, headers), completed)

    def _new_record(
        self,
        request: UploadRequest,
        length: int | None,
        metadata: dict[str, str],
        raw_metadata: str | None,
        *,
        concat: str | None,
        concat_header: str | None = None,
        parts: list[str] | None = None,
    ) -> UploadRecord:
        """A fresh upload's record, with a new id; ``concat`` is PARTIAL, FINAL or None."""
        record = UploadRecord(
            upload_id=self.storage.new_id(),
            protocol=self.name,
            length=length,
            filename=filename_of(metadata),
            content_type=content_type_of(metadata),
            metadata=metadata,
            scope=self.scope_of(request),
        )
        TusState(
            raw_metadata=raw_metadata.strip() if raw_metadata and raw_metadata.strip() else None,
            concat=concat,
            concat_header=concat_header,
            parts=parts if parts is not None else [],
        ).store(record)
        return record

    def _partial_id(self, url: str, request: UploadRequest) -> str:
        part_id = upload_id_from_url(url, request.collection_url, self.settings.upload_path)
        if part_id is None or not _ID.match(part_id):
            raise BadRequest(f"Upload-Concat: {url!r} is not an upload URL of this server")
        return part_id

    def _load_partial(self, request: UploadRequest, part_id: str) -> UploadRecord:
        try:
            partial = self.own_record(request, part_id)
        except UploadNotFound as error:
            if isinstance(error, UploadExpired):
                self.storage.discard_expired(part_id)
            raise BadRequest(f"Upload-Concat: upload {part_id}: {error.message}") from None
        if TusState.of(partial).concat != PARTIAL:
            raise BadRequest(f"Upload-Concat: upload {part_id} is not a partial upload")
        return partial

    def _await_partial(self, request: UploadRequest, part_id: str, final_id: str) -> None:
        """Register ``final_id`` with a partial it names.

        A partial lives as long as an unfinished final in its ``finals`` (the
        storage's expiry rule), so a finished partial cannot expire while its
        final waits for a slower one.  One final at a time may wait for an
        unfinished partial (concatenation-unfinished), so that the PATCH
        completing the partial completes at most one final (a request hands
        at most one upload to the application).
        """
        with self.storage.lock(part_id):
            partial = self.own_record(request, part_id)
            if partial.is_complete:
                # Finals that are gone or assembled need it no more: the list stays short.
                partial.finals = [
                    f for f in partial.finals if f != final_id and self._waits(f)
                ] + [final_id]
                self.storage.save(partial)
                return
            waiting = [f for f in partial.finals if f != final_id and self._exists(f)]
            if waiting:
                raise BadRequest(
                    f"Upload-Concat: unfinished upload {part_id} is already part of "
                    "another unfinished final upload"
                )
            partial.finals = [final_id]
            self.storage.save(partial)

    def _settle_final(self, final_id: str) -> Upload | None:
        """Under the final's lock: assemble and complete it once every partial is complete.

        Otherwise keep it alive (it expires like any unfinished upload) and
        fill in its length once every partial's length is known.
        """
        with self.storage.lock(final_id):
            final = self.storage.load(final_id)
            if final.is_complete:
                return None
            partials = [self.storage.load(part_id) for part_id in TusState.of(final).parts]
            if all(partial.is_complete for partial in partials):
                final.length = final.offset = self.storage.data.concatenate(final, partials)
                return self.complete(final)
            lengths = [partial.length for partial in partials]
            if final.length is None and None not in lengths:
                final.length = sum(n or 0 for n in lengths)
            self.touch(final)
            self.storage.save(final)
            return None

    def _exists(self, upload_id: str) -> bool:
        try:
            self.storage.load(upload_id)
        except UploadNotFound:
            return False
        return True

    def _waits(self, final_id: str) -> bool:
        """Whether ``final_id`` is a live final that is not assembled yet."""
        try:
            return not self.storage.load(final_id).is_complete
        except UploadNotFound:
            return False

    # -- PATCH -------------------------------------------------------------------------------------

    def _patch(self, request: UploadRequest) -> Outcome:
        # Everything that needs no record is checked first, before the lock
        # and before a byte of the body is read (order as tusd, case 58).
        if request.content_type != OFFSET_OCTET_STREAM:
            raise UnsupportedMediaType(f"PATCH requires Content-Type: {OFFSET_OCTET_STREAM}")
        offset_header = request.header("Upload-Offset")
        if offset_header is None:
            raise BadRequest("Upload-Offset is required")
        offset = parse_int("Upload-Offset", offset_header)
        length_header = request.header("Upload-Length")
        new_length = None if length_header is None else parse_int("Upload-Length", length_header)
        checksum = parse_checksum(
            request.header("Upload-Checksum"), self.settings.checksum_algorithms
        )
        declared = request.body_length

        upload_id = request.subpath
        self.own_record(request, upload_id)  # a stranger's id: 404, without waiting for its lock
        # A PATCH still holding the lock is most likely a dead client's: ask it to stop.
        with self.storage.lock(upload_id, request_release=True) as lock:
            record = self.own_record(request, upload_id)
            concat = TusState.of(record).concat
            if concat == FINAL:
                raise Forbidden("a final upload cannot be patched")
            if offset != record.offset:
                raise OffsetConflict(f"Upload-Offset is {offset}, the upload is at {record.offset}")
            if record.is_complete:
                if _has_body(request):
                    raise PayloadTooLarge("the upload is already complete")
                return Outcome(Response(204, self._headers(record)))
            if new_length is not None:
                self._check_declared_length(record, new_length, declared)
            append_body(
                self.settings, self.storage, request, record, lock, checksum, new_length=new_length
            )
            completed = self._finish_if_complete(record)
        if concat == PARTIAL and record.finals:
            final_completed = self._settle_finals_quietly(record)
            completed = completed or final_completed
        return Outcome(Response(204, self._headers(record)), completed)

    def _check_declared_length(
        self, record: UploadRecord, new_length: int, declared: int | None
    ) -> None:
        if record.length is not None:
            raise BadRequest("Upload-Length is already known and cannot be changed")
        if new_length < record.offset:
            raise BadRequest(f"Upload-Length {new_length} is below the offset {record.offset}")
        if too_large(self.settings, new_length):
            raise PayloadTooLarge(f"Upload-Length exceeds the maximum of {self.settings.max_size}")
        if declared is not None and record.offset + declared > new_length:
            raise PayloadTooLarge("the body is larger than the declared Upload-Length")
        if record.finals and self.settings.max_size is not None:
            for final_id in record.finals:
                self._check_final_size(final_id, record.upload_id, new_length)

    def _check_final_size(self, final_id: str, part_id: str, part_length: int) -> None:
        """A deferred partial's length must not push a waiting final over ``max_size``."""
        try:
            final = self.storage.load(final_id)
            total = 0
            for other in TusState.of(final).parts:
                total += part_length if other == part_id else self.storage.load(other).length or 0
        except UploadNotFound:
            return
        if too_large(self.settings, total):
            raise PayloadTooLarge(
                f"the final upload would exceed the maximum of {self.settings.max_size}"
            )

    def _settle_finals_quietly(self, partial: UploadRecord) -> Upload | None:
        """Settle the final waiting for this partial; the partial's PATCH succeeded anyway."""
        completed = None
        for final_id in partial.finals:
            try:
                completed = self._settle_final(final_id) or completed
            except TusFilterError as error:
                # UploadLocked: another partial's PATCH is settling it.  NotFound: a
                # partial or the final itself was deleted or expired.
                log.info("tus_filter: final upload %s not settled: %s", final_id, error.message)
        return completed

    def _finish_if_complete(self, record: UploadRecord) -> Upload | None:
        """Save ``record``; complete it if its last byte arrived (lock held).

        A partial completes without a hand-off: the application sees only the
        final upload it belongs to.
        """
        if record.is_complete or record.length is None or record.offset != record.length:
            self.storage.save(record)
            return None
        upload = self.complete(record)
        return None if TusState.of(record).concat == PARTIAL else upload

    # -- DELETE (termination) ----------------------------------------------------------------------

    def _delete(self, request: UploadRequest) -> Response:
        self.terminate(request)
        return Response(204, self.essential_headers())


def _method(request: UploadRequest) -> str:
    """The effective method: ``X-HTTP-Method-Override`` wins over the real one (spec MUST)."""
    override = request.header("X-HTTP-Method-Override")
    if override is not None and override.strip():
        return override.strip().upper()
    return request.method


def _has_body(request: UploadRequest) -> bool:
    """Whether the request carries body bytes (reads one byte of a chunked body)."""
    declared = request.body_length
    if declared is not None:
        return declared > 0
    try:
        return bool(request.body.read(1))
    except OSError:
        return False
