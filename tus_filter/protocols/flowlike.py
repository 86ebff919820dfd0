"""The engine flow.js and resumable.js share: parameters, layout, test requests, chunk uploads.

Both libraries speak one protocol with two spellings (``flowChunkNumber``,
``resumableChunkNumber``...) and two retry tables; the subclasses in
``flow.py`` and ``resumable.py`` supply the spelling, the table and the few
places where the clients differ.  The numbered cases (F1-F27, R1-R12, §5.0)
are those of ``chunked-protocols-contract.md``.

Requests (GET/HEAD, POST/PUT/PATCH; anything else is 405):

* A **test request** asks whether chunk *n* is stored: 200 when it is, 204
  when it is not (404 would be fatal in flow.js), 200 once the upload is
  complete.  It never creates anything.  When it finds every chunk stored
  (a crash between the last write and completion) it completes the upload,
  exactly once, and that request is handed to the application.
* An **upload** carries chunk *n*, as the multipart file part or as the raw
  body.  It is written straight into the data file at ``(n-1) * chunkSize``
  and counted only once fully written with its expected size
  (:class:`~tus_filter.protocols.chunked.ChunkStore`); the request that
  stores the last missing chunk completes the upload.  Uploads for a
  completed upload are drained and answered 200 without writing.

Records are keyed by ``sha256`` of (protocol, scope, identifier, total size,
chunk size), ``scope`` being the ``scope`` hook's answer (by default
``REMOTE_USER`` or ``""``), so equal identifiers of different protocols,
users, sizes or chunk sizes never meet, and no client string ever reaches a
path.  The key binds the scope already: :attr:`binds_scope` is off.
``totalChunks`` is not part of the key: resumable.js 1.1.0 may send a
too-small value (R7).

A hook's :class:`~tus_filter.Reject` is answered with the hook's status when
the client gives up on it, else with ``refusal_status`` (``final_statuses``
are the client's ``permanentErrors``): any other status is retried.

Layout (§5.0): a file of ``T`` bytes in chunks of ``C`` has ``Nf = max(T//C, 1)``
chunks when the client rounds down (the default; the last chunk takes up to
``2C-1`` bytes) and ``Nc = max(ceil(T/C), 1)`` with ``forceChunkSize`` (the last
chunk takes at most ``C``).  Where the two differ, the *mode* is learnt from
``totalChunks`` or from the chunk itself and then pinned in the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qsl

from ..errors import BadRequest, MethodNotAllowed, PayloadTooLarge
from ..forms import MAX_FIELDS_BYTES, FilePart, Form
from ..http import Response
from ..incoming import UploadRequest
from ..storage import ChunkLayout, Storage, UploadRecord
from ..streams import BodyReader
from .base import Outcome, Protocol
from .chunked import (
    MAX_CHUNKS,
    ChunkResult,
    ChunkState,
    ChunkStore,
    check_filename,
    parse_decimal,
)

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("tus_filter")

MAX_IDENTIFIER_LENGTH = 1024
MAX_RELATIVE_PATH_BYTES = 4096
MAX_TYPE_LENGTH = 255
# What a multipart body may carry besides the chunk: the text fields (capped
# by the form reader) plus part headers and boundaries.
MULTIPART_ALLOWANCE = MAX_FIELDS_BYTES + 64 * 1024

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH")
TEST_METHODS = ("GET", "HEAD")
NO_STORE = {"Cache-Control": "no-store"}  # a cached test answer would skip a chunk forever

FLOOR = "floor"  # chunk count rounded down: the last chunk holds C..2C-1 bytes
CEIL = "ceil"  # forceChunkSize: the last chunk holds 1..C bytes

_IDENTIFIER = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_IDENTIFIER_LENGTH}}}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MEDIA_TYPE = re.compile(rf"[ -~]{{0,{MAX_TYPE_LENGTH}}}")


# -- parameters --------------------------------------------------------------------------------


def form_of(request: UploadRequest) -> Form | None:
    """The multipart form of an upload request (GET and HEAD bodies are ignored)."""
    return None if request.method in TEST_METHODS else request.form()


def has_marker(request: UploadRequest, marks: Callable[[set[str]], bool]) -> bool:
    """Whether the parameter names of the query string, or else of the form, ``marks`` say so.

    The query string is asked first, so a request it marks is claimed without
    reading the body: a multipart body that cannot be read is then refused
    (400) when the request is handled, not passed to the application.
    Undecodable bytes are replaced here for the same reason: the request is
    recognised, then refused when its query is read, since the application's
    200 would make the client skip a chunk.
    """
    query = parse_qsl(
        request.environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="replace"
    )
    if marks({name for name, _ in query}):
        return True
    form = form_of(request)
    return form is not None and marks(set(form.fields))


class Parameters:
    """The request's parameters: the query string and, for multipart bodies, the form fields.

    Within one source the first value of a name wins (R12).  A name present
    in both with different values is a bad request (F26, R2): resumable.js
    sends every multipart parameter twice, and they must agree.
    """

    def __init__(self, query: dict[str, list[str]], fields: dict[str, list[str]] | None):
        self.query = query
        self.fields = fields or {}

    def names(self) -> set[str]:
        return set(self.query) | set(self.fields)

    def text(self, name: str) -> str | None:
        in_query = self.query.get(name)
        in_form = self.fields.get(name)
        if in_query and in_form and in_query[0] != in_form[0]:
            raise BadRequest(f"{name}: the query string and the form disagree")
        if in_form:
            return in_form[0]
        return in_query[0] if in_query else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise BadRequest(f"{name} is missing")
        return value

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        return parse_decimal(value, name)

    def required_integer(self, name: str) -> int:
        value = self.integer(name)
        if value is None:
            raise BadRequest(f"{name} is missing")
        return value


@dataclass(frozen=True)
class ChunkParams:
    """The validated parameters of one request (F5-F12, R1)."""

    number: int  # 1-based
    chunk_size: int
    total: int
    identifier: str
    filename: str
    relative_path: str
    total_chunks: int | None
    current_size: int | None
    type: str | None  # resumableType; flow.js has none


def read_params(params: Parameters, prefix: str, *, with_type: bool) -> ChunkParams:
    """Read and validate ``<prefix>ChunkNumber`` & co.; raise :class:`BadRequest`."""
    number = params.required_integer(prefix + "ChunkNumber")
    chunk_size = params.required_integer(prefix + "ChunkSize")
    total = params.required_integer(prefix + "TotalSize")
    identifier = params.required(prefix + "Identifier")
    filename = params.required(prefix + "Filename")
    relative_path = params.text(prefix + "RelativePath")
    total_chunks = params.integer(prefix + "TotalChunks")
    current_size = params.integer(prefix + "CurrentChunkSize")
    media_type = params.text(prefix + "Type") if with_type else None
    if number < 1:
        raise BadRequest(f"{prefix}ChunkNumber must be at least 1")
    if chunk_size < 1:
        raise BadRequest(f"{prefix}ChunkSize must be at least 1")
    if not _IDENTIFIER.fullmatch(identifier):
        raise BadRequest(
            f"{prefix}Identifier must be 1 to {MAX_IDENTIFIER_LENGTH} of A-Z a-z 0-9 _ -"
        )
    check_filename(filename, prefix + "Filename")
    if relative_path is None:
        relative_path = filename
    check_relative_path(relative_path, prefix + "RelativePath")
    if media_type is not None:
        check_media_type(media_type, prefix + "Type")
    return ChunkParams(
        number, chunk_size, total, identifier, filename, relative_path,
        total_chunks, current_size, media_type,
    )


def check_relative_path(value: str, name: str) -> None:
    """A relative path of plain segments: no ``..``, ``.``, empty segment or ``\\`` (F12)."""
    segments = value.split("/")
    if (
        len(value.encode("utf-8", "surrogatepass")) > MAX_RELATIVE_PATH_BYTES
        or "\\" in value
        or _CONTROL.search(value)
        or any(segment in ("", ".", "..") for segment in segments)
    ):
        raise BadRequest(
            f"{name} must be a relative path of at most {MAX_RELATIVE_PATH_BYTES} bytes "
            "without '..', '.', empty segments, '\\' or control characters"
        )


def check_media_type(value: str, name: str) -> None:
    if not _MEDIA_TYPE.fullmatch(value):
        raise BadRequest(f"{name} must be printable ASCII of at most {MAX_TYPE_LENGTH} characters")


def record_key(protocol: str, scope: str, identifier: str, total: int, chunk_size: int) -> str:
    """The storage id of an upload: 64 hex digits, unambiguous over its inputs."""
    material = json.dumps([protocol, scope, identifier, total, chunk_size])
    return hashlib.sha256(material.encode()).hexdigest()


# -- layout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The two ways the clients cut ``total`` bytes into chunks of ``chunk_size`` (§1.2)."""

    total: int
    chunk_size: int

    @property
    def floor_count(self) -> int:
        return max(self.total // self.chunk_size, 1)

    @property
    def ceil_count(self) -> int:
        return max(-(-self.total // self.chunk_size), 1)

    @property
    def ambiguous(self) -> bool:
        """Whether the modes differ (otherwise both give the same chunks)."""
        return self.floor_count != self.ceil_count

    @property
    def largest_chunk(self) -> int:
        """No chunk of either mode is longer: ``min(T, 2C-1)``."""
        return min(self.total, 2 * self.chunk_size - 1)

    def count(self, mode: str | None) -> int:
        """Chunks in ``mode``; while the mode is unknown, the larger count."""
        return self.floor_count if mode == FLOOR else self.ceil_count

    def layout(self, mode: str | None) -> ChunkLayout:
        return ChunkLayout(self.total, self.chunk_size, self.count(mode))

    def mode_of_chunk(self, number: int, size: int | None) -> str | None:
        """What chunk ``number`` of ``size`` bytes tells about the mode (§5.0 inference)."""
        if not self.ambiguous:
            return FLOOR  # one layout: nothing to learn
        if number == self.ceil_count:
            return CEIL  # only forceChunkSize has this many chunks
        if number == self.floor_count and size is not None:
            if size == self.chunk_size:
                return CEIL
            if size == self.chunk_size + self.total % self.chunk_size:
                return FLOOR
        return None


@dataclass(frozen=True)
class ChunkPlan:
    """Where a request's chunk stands in the upload.

    ``mode`` is ``None`` while neither the record, the request's
    ``totalChunks`` nor the chunk itself tells it; ``expected`` (the chunk's
    size) is then ``None`` only for chunk ``Nf`` sent without its size.
    """

    mode: str | None
    expected: int | None


def plan_chunk(
    shape: Shape, params: ChunkParams, *, hinted: str | None, pinned: str | None
) -> ChunkPlan:
    """Check chunk number and size against every source of the mode (F7-F10, R7)."""
    if shape.ceil_count > MAX_CHUNKS:
        raise BadRequest(f"more than {MAX_CHUNKS} chunks: use a larger chunk size")
    from_chunk = shape.mode_of_chunk(params.number, params.current_size)
    modes = {mode for mode in (pinned, hinted, from_chunk) if mode is not None}
    if len(modes) > 1:
        raise BadRequest("the chunk contradicts the upload's chunk count or earlier chunks")
    mode = modes.pop() if modes else None
    if params.number > shape.count(mode):
        raise BadRequest(f"chunk number {params.number} is beyond the last chunk")
    expected: int | None = shape.layout(mode).size(params.number - 1)
    if mode is None and params.number == shape.floor_count:
        expected = None  # C or C + T%C: only its size can tell
    if params.current_size is not None:
        if expected is None:
            raise BadRequest(f"chunk {params.number} has a size that fits no layout")
        if params.current_size != expected:
            raise BadRequest(f"chunk {params.number} must be {expected} bytes")
    return ChunkPlan(mode, expected)


# -- the protocol ------------------------------------------------------------------------------


class FlowLikeProtocol(Protocol):
    """The shared request handling; subclasses say how their client differs."""

    methods = ("GET", "POST", "PUT", "PATCH")
    #: Whether ``<prefix>Type`` is read (resumable.js sends the file's MIME type).
    reads_type: ClassVar[bool] = False

    def __init__(self, settings: Settings, storage: Storage):
        super().__init__(settings, storage)
        self.chunks = ChunkStore(self)

    @property
    def binds_scope(self) -> bool:
        return False  # the scope is part of the record key (see the module docstring)

    # -- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    def prefix(self, params: Parameters) -> str:
        """The prefix of the parameter names (``flow``, ``<namespace>resumable``)."""

    @abstractmethod
    def is_test(self, request: UploadRequest, form: Form | None) -> bool:
        """Whether a POST/PUT/PATCH is a test request (GET and HEAD always are)."""

    @abstractmethod
    def mode_hint(self, shape: Shape, total_chunks: int | None) -> str | None:
        """The mode the client's ``totalChunks`` implies, if it can be trusted."""

    def metadata_of(self, params: ChunkParams) -> dict[str, str]:
        return {"identifier": params.identifier, "relativePath": params.relative_path}

    # -- responses --------------------------------------------------------------------------

    def essential_headers(self) -> dict[str, str]:
        return dict(NO_STORE)

    @staticmethod
    def answer(number: int, complete: bool) -> Response:
        return Response.json(200, {"chunk": number, "complete": complete}, dict(NO_STORE))

    # -- handling ---------------------------------------------------------------------------

    def handle(self, request: UploadRequest) -> Outcome:
        if request.method not in ALLOWED_METHODS:
            raise MethodNotAllowed(list(ALLOWED_METHODS))
        form = form_of(request)
        params = Parameters(request.query, form.fields if form is not None else None)
        chunk = read_params(params, self.prefix(params), with_type=self.reads_type)
        if self.settings.max_size is not None and chunk.total > self.settings.max_size:
            raise PayloadTooLarge(f"the file is larger than {self.settings.max_size} bytes")
        shape = Shape(chunk.total, chunk.chunk_size)
        hinted = self.mode_hint(shape, chunk.total_chunks)
        plan = plan_chunk(shape, chunk, hinted=hinted, pinned=None)
        scope = self.scope_of(request)
        key = record_key(self.name, scope, chunk.identifier, chunk.total, chunk.chunk_size)
        if request.method in TEST_METHODS or self.is_test(request, form):
            return self._test(request, key, chunk, shape, hinted)
        return self._upload(request, form, key, chunk, shape, hinted, plan)

    def _test(
        self, request: UploadRequest, key: str, chunk: ChunkParams, shape: Shape,
        hinted: str | None,
    ) -> Outcome:
        """F1-F3, R3, R4: 200 stored or complete, 204 absent; complete a finished set."""
        record = self.chunks.find(request, key)
        if record is None:
            return Outcome(Response(204, dict(NO_STORE)))
        if record.is_complete:
            return Outcome(self.answer(chunk.number, True))
        state = ChunkState.of(record)
        plan_chunk(shape, chunk, hinted=hinted, pinned=state.layout)
        if not state.has_chunk(chunk.number - 1):
            return Outcome(Response(204, dict(NO_STORE)))
        result = ChunkResult(False)
        if state.chunks_received() >= (state.chunk_count or 0):
            # recovery after a crash; every chunk is counted, so the layout is pinned
            result = self.chunks.finish_if_complete(key, shape.layout(state.layout))
        return Outcome(self.answer(chunk.number, result.complete), result.completed)

    def _upload(
        self, request: UploadRequest, form: Form | None, key: str,
        chunk: ChunkParams, shape: Shape, hinted: str | None, plan: ChunkPlan,
    ) -> Outcome:
        """F13-F22, R5-R8: store the chunk; the request storing the last one completes."""
        limit = shape.largest_chunk + (MULTIPART_ALLOWANCE if form is not None else 0)
        length = request.body_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"a chunk of this upload is at most {shape.largest_chunk} bytes")
        if plan.expected is None:
            raise BadRequest(f"chunk {chunk.number} needs its CurrentChunkSize")
        if form is not None:
            if form.file is None:
                raise BadRequest("the form has no file part")
            blocks = _file_then_finish(form.file, form)
            chunk_type = form.file.content_type
        else:
            blocks = iter(BodyReader(request.body, length))
            chunk_type = request.header("Content-Type")
        content_type = chunk.type or chunk_type or None
        if content_type is not None:
            check_media_type(content_type, "Content-Type")

        def new_record() -> UploadRecord:
            record = UploadRecord(
                upload_id=key,
                protocol=self.name,
                length=chunk.total,
                filename=chunk.filename,
                content_type=content_type,
                metadata=self.metadata_of(chunk),
                scope=self.scope_of(request),
            )
            ChunkState(
                chunk_size=chunk.chunk_size, chunk_count=shape.count(plan.mode), layout=plan.mode
            ).store(record)
            self.run_on_create(request, self.info_of(record))
            return record

        record = self.chunks.open(request, key, new_record)
        if not record.is_complete:
            pinned = ChunkState.of(record).layout
            plan = plan_chunk(shape, chunk, hinted=hinted, pinned=pinned)
            if plan.mode is not None and pinned != plan.mode:
                self._pin(key, shape, plan.mode)
        result = self.chunks.write(record, chunk.number - 1, shape.layout(plan.mode), blocks)
        return Outcome(self.answer(chunk.number, result.complete), result.completed)

    def _pin(self, key: str, shape: Shape, mode: str) -> None:
        """Record the layout mode once learnt; a concurrent contrary pin is a bad request."""

        def settle(state: ChunkState) -> bool:
            if state.layout == mode:
                return False
            if state.layout is not None:
                raise BadRequest("the chunk contradicts the upload's earlier chunks")
            state.layout = mode
            state.chunk_count = shape.count(mode)
            return True

        self.chunks.pin(key, settle)


def _file_then_finish(part: FilePart, form: Form) -> Iterator[bytes]:
    """The file part's blocks, then the check that nothing but an epilogue follows it.

    Running the check inside the iteration puts it before the chunk is counted.
    """
    yield from part.blocks
    form.finish()
