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

Chunk ``i`` covers ``[i * C, i * C + size(i))`` with ``C = ceil(totalSize /
chunkCount)`` and the last chunk taking the rest; ``chunkCount`` must make
every chunk non-empty (``chunkCount == max(1, ceil(totalSize / C))``), except
the single empty chunk of a 0-byte file.  The first request (empty
``uploadUid``, any chunk number) creates the upload; the answer is always
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
from typing import Any, TypeVar

from ..config import Settings
from ..errors import (
    BadRequest,
    PayloadTooLarge,
    UploadExpired,
    UploadLocked,
)
from ..http import Response
from ..incoming import UploadRequest
from ..storage import Storage, UploadRecord
from ..streams import BodyReader
from .base import Outcome, Protocol
from .chunked import MAX_CHUNKS, ChunkStore, Layout, check_filename, parse_decimal

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
            layout = self._new_layout(chunk)
            _check_chunk(chunk.number, layout, content.size)
            record = self._create(request, chunk, layout)
        else:
            record = self._existing(request, chunk)
            layout = Layout(record.length or 0, record.chunk_size or 1, record.chunk_count or 1)
            _check_chunk(chunk.number, layout, content.size)
        try:
            result = self.chunks.write(record, chunk.number, layout, content.blocks)
        except BaseException:
            if created:  # nobody was told this id: leave nothing behind
                self.discard(record.upload_id)
            raise
        answer = {"uploadUid": record.upload_id, "complete": result.complete}
        return Outcome(Response.json(200, answer), result.completed)

    # -- steps ----------------------------------------------------------------------------

    def _new_layout(self, chunk: _Chunk) -> Layout:
        total = _required(chunk.total_size, "totalSize")
        _required(chunk.file_name, "fileName")
        limit = self.settings.max_size
        if limit is not None and total > limit:
            raise PayloadTooLarge(f"totalSize {total} exceeds the maximum of {limit} bytes")
        return layout_for(total, chunk.count)

    def _create(self, request: UploadRequest, chunk: _Chunk, layout: Layout) -> UploadRecord:
        record = UploadRecord(
            upload_id=self.storage.new_id(),
            protocol=self.name,
            length=layout.total,
            filename=chunk.file_name,
            chunk_size=layout.chunk_size,
            chunk_count=layout.count,
            layout="ceil",
            scope=self.scope_of(request),
        )
        self.run_on_create(request, self.info_of(record))
        self.storage.create(record)
        return record

    def _existing(self, request: UploadRequest, chunk: _Chunk) -> UploadRecord:
        """The upload ``chunk`` names; its repeated parameters must not change it."""
        record = self.own_record(request, chunk.upload_uid)  # not a storage id → 404
        repeated = (
            ("fileName", chunk.file_name, record.filename),
            ("totalSize", chunk.total_size, record.length),
            ("chunkCount", chunk.count, record.chunk_count),
        )
        for name, given, stored in repeated:
            if given is not None and given != stored:
                raise BadRequest(f"{name} differs from the value the upload was created with")
        return record

def layout_for(total: int, count: int) -> Layout:
    """The layout of ``count`` chunks over ``total`` bytes; none but a 0-byte file's is empty."""
    if not 1 <= count <= MAX_CHUNKS:
        raise BadRequest(f"chunkCount must be from 1 to {MAX_CHUNKS}")
    chunk_size = max(1, -(-total // count))
    if count != max(1, -(-total // chunk_size)):
        raise BadRequest(
            f"chunkCount {count} does not fit totalSize {total}: chunks of {chunk_size} bytes "
            "would leave the last ones empty"
        )
    return Layout(total, chunk_size, count)


def _check_chunk(number: int, layout: Layout, declared_size: int | None) -> None:
    if number >= layout.count:
        raise BadRequest(f"chunkNumber must be below chunkCount ({layout.count})")
    expected = layout.size(number)
    if declared_size is not None and declared_size != expected:
        raise BadRequest(f"chunk {number} must be {expected} bytes, got {declared_size}")


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
