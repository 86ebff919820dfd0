"""The uid chunk protocol: numbered chunks of an upload named by a server-issued id.

The GBD WebSuite upload-helper model, made safe.  Every request is a
``POST`` to the collection URL (``upload_path`` itself) carrying::

    uploadUid    ""  on the first request, then the id the server answered
    fileName     the file's name: metadata only, never part of a path
    totalSize    the file's size in bytes
    chunkNumber  0-based; chunks may arrive in any order, and be re-sent
    chunkCount   how many chunks the file is cut into
    content      the chunk's bytes

in one of three transports, chosen by the ``Content-Type``; the parameters
travel in exactly one place (also in the query string → 400):

* ``multipart/form-data``: the fields, *then* a file part named ``content``
  (the fields are read before the file part streams to disk);
* ``application/json``: one object, the integers as JSON integers and
  ``content`` as standard padded base64 of at most ``MAX_JSON_CONTENT`` bytes;
* any other type (normally ``application/octet-stream``): the fields in the
  query string, the body is the chunk.

Chunks follow one uniform cut (``chunked.UniformCut``): every chunk but the
last has one size ``S`` with ``ceil(totalSize / S) == chunkCount``, chunk
``i`` starts at ``i * S`` and the last one ends at ``totalSize``.  Both the
client's own chunk size and ``ceil(totalSize / chunkCount)`` are such cuts.
The first chunk whose size is known fixes ``S`` (pinned in the record under
the lock; the last chunk implies ``S = (totalSize - len) / (chunkCount - 1)``);
later chunks must agree.  Octet-stream and JSON chunks are checked before a
byte is written.  A multipart chunk's size is known only once it has
streamed: with ``S`` pinned it streams into its range (never past it) and
counts only with exactly its size, and a re-sent chunk that is already
stored is staged and checked before it replaces the stored one; before ``S``
is pinned (the upload's first request) the chunk is staged, and copied to
the place its size implies.  Only a 0-byte file has an empty chunk (its one
chunk).  The first request (empty ``uploadUid``, any chunk number) creates
the upload; the answer is always
``200 {"uploadUid": ..., "complete": ...}``.  Later requests repeat
``fileName``/``totalSize``/``chunkCount`` at will, but must not change them.

A JSON body is read whole, so ``recognizes`` reads one only when its declared
``Content-Length`` is at most ``MAX_JSON_BODY``: a larger JSON body, or one
without a ``Content-Length``, is not a uid request and reaches the app
untouched.  Unknown and expired uploads are both 404 (the body says which),
and so is another protocol's upload or, with ``bind_to_scope``, another
scope's (:meth:`~tus_filter.protocols.base.Protocol.own_record`);
a lock timeout is 503 with ``Retry-After``: the client should simply retry.
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    BadRequest,
    PayloadTooLarge,
    UploadExpired,
    UploadLocked,
)
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
    UniformCut,
    check_filename,
    parse_decimal,
)

if TYPE_CHECKING:
    from ..config import Settings

MAX_JSON_CONTENT = 1024 * 1024  # decoded bytes of one base64 chunk: JSON bodies sit in memory
# The largest JSON body read at all: the base64 of MAX_JSON_CONTENT plus room
# for the other fields (a 255-byte fileName is at most ~1.5 KiB of JSON escapes).
MAX_JSON_BODY = 4 * -(-MAX_JSON_CONTENT // 3) + 64 * 1024

FIELDS = ("uploadUid", "fileName", "totalSize", "chunkNumber", "chunkCount")
_MARKERS = ("uploadUid", "chunkNumber", "chunkCount")  # all present: a uid request
_MAX_INTEGER = 10**15 - 1

_T = TypeVar("_T")


class UidProtocol(Protocol):
    """``POST {upload_path}`` with ``uploadUid`` / ``chunkNumber`` / ``chunkCount``."""

    name = "uid"
    methods = ("POST",)
    status_overrides = {UploadExpired: 404, UploadLocked: 503}

    def __init__(self, settings: Settings, storage: Storage):
        super().__init__(settings, storage)
        self.chunks = ChunkStore(self)

    def recognizes(self, request: UploadRequest) -> bool:
        if request.method != "POST" or request.subpath != "":
            return False
        if _has_markers(request.query):
            return True
        if request.content_type == "multipart/form-data":
            form = request.form()
            return form is not None and _has_markers(form.fields)
        if request.content_type == "application/json":
            data = _json_object(request)
            return data is not None and _has_markers(data)
        return False

    def handle(self, request: UploadRequest) -> Outcome:
        content = _content_of(request)
        chunk = _parse(content.fields)
        created = not chunk.upload_uid
        if created:
            cut = self._new_cut(chunk)
            size = _chunk_size(cut, chunk.number, content.size, pinned=None)
            record = self._create(request, chunk, cut, size)
        else:
            record = self._existing(request, chunk)
            state = ChunkState.of(record)
            cut = UniformCut(record.length or 0, state.chunk_count or 1)
            size = _chunk_size(cut, chunk.number, content.size, pinned=state.chunk_size)
            if size is not None and state.chunk_size is None:
                self._pin(record.upload_id, size)
        try:
            result = self._write(record, chunk.number, cut, size, content)
        except BaseException:
            if created:  # nobody was told this id: leave nothing behind
                self.discard(record.upload_id)
            raise
        answer = {"uploadUid": record.upload_id, "complete": result.complete}
        return Outcome(Response.json(200, answer), result.completed)

    # -- steps ----------------------------------------------------------------------------

    def _new_cut(self, chunk: _Chunk) -> UniformCut:
        total = _required(chunk.total_size, "totalSize")
        _required(chunk.file_name, "fileName")
        limit = self.settings.max_size
        if limit is not None and total > limit:
            raise PayloadTooLarge(f"totalSize {total} exceeds the maximum of {limit} bytes")
        if not 1 <= chunk.count <= MAX_CHUNKS:
            raise BadRequest(f"chunkCount must be from 1 to {MAX_CHUNKS}")
        cut = UniformCut(total, chunk.count)
        if not cut.sizes:
            raise BadRequest(
                f"chunkCount {chunk.count} does not fit totalSize {total}: no chunk size S "
                "gives ceil(totalSize / S) == chunkCount without empty chunks"
            )
        return cut

    def _create(
        self, request: UploadRequest, chunk: _Chunk, cut: UniformCut, size: int | None
    ) -> UploadRecord:
        record = UploadRecord(
            upload_id=self.storage.new_id(),
            protocol=self.name,
            length=cut.total,
            filename=chunk.file_name,
            scope=self.scope_of(request),
        )
        ChunkState(chunk_size=size, chunk_count=cut.count).store(record)
        self.run_on_create(request, self.info_of(record))
        self.storage.create(record)
        return record

    def _existing(self, request: UploadRequest, chunk: _Chunk) -> UploadRecord:
        """The upload ``chunk`` names; its repeated parameters must not change it."""
        record = self.own_record(request, chunk.upload_uid)  # not a storage id → 404
        repeated = (
            ("fileName", chunk.file_name, record.filename),
            ("totalSize", chunk.total_size, record.length),
            ("chunkCount", chunk.count, ChunkState.of(record).chunk_count),
        )
        for name, given, stored in repeated:
            if given is not None and given != stored:
                raise BadRequest(f"{name} differs from the value the upload was created with")
        return record

    def _pin(self, upload_id: str, size: int) -> None:
        """Record the chunk size a chunk implied; a contrary size already pinned is a 400."""

        def settle(state: ChunkState) -> bool:
            if state.chunk_size == size:
                return False
            if state.chunk_size is not None:
                raise BadRequest(_pinned_rule(state.chunk_size))
            state.chunk_size = size
            return True

        self.chunks.pin(upload_id, settle)

    def _write(
        self, record: UploadRecord, number: int, cut: UniformCut, size: int | None,
        content: _Content,
    ) -> ChunkResult:
        if size is not None:
            return self.chunks.write(
                record, number, cut.layout(size), content.blocks,
                stage_resent=content.size is None, rule=_rule(cut, size),
            )

        def place(length: int) -> ChunkLayout:
            implied = cut.size_of(number, length)
            self._pin(record.upload_id, implied)
            return cut.layout(implied)

        # A multipart chunk of an upload whose chunk size nobody has told yet
        # (its first request): where it goes follows from its size.
        return self.chunks.write_unplaced(
            record, number, content.blocks, limit=cut.sizes[-1], place=place, rule=cut.rule()
        )


def _chunk_size(
    cut: UniformCut, number: int, length: int | None, *, pinned: int | None
) -> int | None:
    """The upload's chunk size once chunk ``number`` of ``length`` bytes is accepted.

    ``None`` while unknown: no size pinned, and the chunk's length is known
    only once it has been read (multipart).  Checks the chunk against the
    pinned size, or against every size of the cut.
    """
    if number >= cut.count:
        raise BadRequest(f"chunkNumber must be below chunkCount ({cut.count})")
    if pinned is not None:
        expected = cut.layout(pinned).size(number)
        if length is not None and length != expected:
            raise BadRequest(
                f"chunk {number} has {length} bytes, expected {expected}: {_rule(cut, pinned)}"
            )
        return pinned
    if cut.count == 1:
        return cut.size_of(number, length) if length is not None else cut.sizes[0]
    return None if length is None else cut.size_of(number, length)


def _rule(cut: UniformCut, pinned: int) -> str:
    """The rule a chunk of an upload with chunk size ``pinned`` must follow."""
    return cut.rule() if cut.count == 1 else _pinned_rule(pinned)


def _pinned_rule(size: int) -> str:
    return (
        f"the upload's earlier chunks fixed its chunk size at {size} bytes; every chunk "
        "but the last has that size, and the last ends at totalSize"
    )


# -- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """One request's parameters, typed; ``None`` where a later chunk left one out."""

    upload_uid: str
    number: int
    count: int
    file_name: str | None
    total_size: int | None


class _Fields(ABC):
    """Named parameters from one place of the request."""

    @abstractmethod
    def text(self, name: str) -> str | None: ...

    @abstractmethod
    def integer(self, name: str) -> int | None: ...


class _TextFields(_Fields):
    """Query string or form fields: strings, the first of repeated names wins."""

    def __init__(self, values: Mapping[str, list[str]]):
        self.values = values

    def text(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found else None

    def integer(self, name: str) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        return parse_decimal(raw, name)


class _JsonFields(_Fields):
    """A JSON object: strings must be JSON strings, integers JSON integers (not booleans)."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data

    def text(self, name: str) -> str | None:
        if name not in self.data:
            return None
        value = self.data[name]
        if not isinstance(value, str):
            raise BadRequest(f"{name} must be a JSON string")
        return value

    def integer(self, name: str) -> int | None:
        if name not in self.data:
            return None
        value = self.data[name]
        if type(value) is not int or not 0 <= value <= _MAX_INTEGER:
            raise BadRequest(f"{name} must be a JSON integer from 0 to {_MAX_INTEGER}")
        return value


def _parse(fields: _Fields) -> _Chunk:
    file_name = fields.text("fileName")
    if file_name is not None:
        check_filename(file_name, "fileName")
    return _Chunk(
        upload_uid=_required(fields.text("uploadUid"), "uploadUid"),
        number=_required(fields.integer("chunkNumber"), "chunkNumber"),
        count=_required(fields.integer("chunkCount"), "chunkCount"),
        file_name=file_name,
        total_size=fields.integer("totalSize"),
    )


def _required(value: _T | None, name: str) -> _T:
    if value is None:
        raise BadRequest(f"missing {name}")
    return value


# -- transports -------------------------------------------------------------------------------


@dataclass
class _Content:
    """A request's parameters and its chunk: ``size`` is known up front, or ``None``."""

    fields: _Fields
    size: int | None
    blocks: Iterable[bytes]


def _content_of(request: UploadRequest) -> _Content:
    if request.content_type == "application/json":
        _no_query_fields(request, "the JSON object")
        data = _json_object(request)
        if data is None:
            raise BadRequest(f"the body must be a JSON object of at most {MAX_JSON_BODY} bytes")
        if "content" not in data:
            raise BadRequest("missing content")
        chunk = _decode_base64(data["content"])
        return _Content(_JsonFields(data), len(chunk), (chunk,))
    if request.content_type == "multipart/form-data":
        _no_query_fields(request, "the form fields")
        form = request.form()
        if form is None:
            raise BadRequest("multipart body without a boundary")
        part = form.file
        if part is None or part.name != "content":
            raise BadRequest("the chunk must be a file part named 'content', after the fields")
        return _Content(_TextFields(form.fields), None, _then(part.blocks, form.finish))
    return _Content(
        _TextFields(request.query),
        request.body_length,
        BodyReader(request.body, request.body_length),
    )


def _has_markers(fields: Mapping[str, Any]) -> bool:
    return all(name in fields for name in _MARKERS)


def _no_query_fields(request: UploadRequest, where: str) -> None:
    if any(name in request.query for name in FIELDS):
        raise BadRequest(f"send the uid parameters in {where}, not in the query string")


def _json_object(request: UploadRequest) -> dict[str, Any] | None:
    """The JSON object body; ``None`` if it is something else or too large to read."""
    length = request.body_length
    if length is None or length > MAX_JSON_BODY:
        return None  # not read: passes through untouched
    data = request.json()
    return data if isinstance(data, dict) else None


def _decode_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise BadRequest("content must be a base64 JSON string")
    if len(value) > 4 * -(-MAX_JSON_CONTENT // 3):
        raise PayloadTooLarge(
            f"a JSON chunk holds at most {MAX_JSON_CONTENT} bytes; "
            "send larger chunks as multipart or application/octet-stream"
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("content is not valid base64") from None


def _then(blocks: Iterable[bytes], after: Callable[[], None]) -> Iterator[bytes]:
    """``blocks``, then ``after()`` once they are exhausted (before the chunk is marked)."""
    yield from blocks
    after()
