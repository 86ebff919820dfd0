"""Streaming ``multipart/form-data``: small fields in memory, the file part as a stream.

Chunk clients (flow.js, resumable.js, the uid protocol) send their
parameters as form fields *before* the file part.  :func:`read_form` reads
the fields, stops at the first part that carries a ``filename``, and hands
that part's payload over as an iterator of blocks, so a chunk is written to
disk as it arrives and never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TypeAlias

from multipart import MultipartError, MultipartSegment, PushMultipartParser

from .errors import BadRequest
from .streams import BodyReader

MAX_FIELD_BYTES = 64 * 1024  # one text field (a relative path is at most 4 KiB)
MAX_FIELDS_BYTES = 1024 * 1024  # all text fields of one request
MAX_SEGMENTS = 64

_Event: TypeAlias = "MultipartSegment | bytes | None"


@dataclass
class FilePart:
    """The file part of a form: its headers and a one-shot stream of its payload."""

    name: str
    filename: str
    content_type: str | None
    blocks: Iterator[bytes]


@dataclass
class Form:
    """Text fields (first value first) and the file part, if any."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    file: FilePart | None = None
    _events: Iterator[_Event] | None = None

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def finish(self) -> None:
        """Consume what follows the file part; only an epilogue may follow it."""
        if self.file is not None:
            for _ in self.file.blocks:
                pass
        try:
            for event in self._events or ():
                if isinstance(event, MultipartSegment):
                    raise BadRequest("form fields must come before the file part")
        except MultipartError as error:  # e.g. the body ends without its closing delimiter
            raise BadRequest(f"malformed multipart body: {error}") from None


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/form-data`` content type, else ``None``."""
    main, _, params = content_type.partition(";")
    if main.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"')
    return None


def read_form(stream: IO[bytes], length: int | None, boundary: str, raw: bytearray) -> Form:
    """Read fields up to the first file part; every byte read is appended to ``raw``.

    ``raw`` lets the caller replay what was consumed when the request turns
    out not to be an upload after all.
    """
    recording = [True]
    events = _events(stream, length, boundary, raw, recording)
    form = Form(_events=events)
    size = 0
    try:
        for event in events:
            if not isinstance(event, MultipartSegment):
                continue  # only segment starts reach this loop
            if event.filename is not None:
                form.file = FilePart(
                    event.name or "",
                    event.filename,
                    event.content_type,
                    _payload(events),
                )
                recording[0] = False  # the payload streams from here on
                return form
            value = bytearray()
            for chunk in _payload(events):
                value += chunk
                size += len(chunk)
                if len(value) > MAX_FIELD_BYTES or size > MAX_FIELDS_BYTES:
                    raise BadRequest("form field too large")
            try:
                text = value.decode(event.charset or "utf-8")
            except (UnicodeDecodeError, LookupError):
                raise BadRequest(f"form field {event.name!r} is not UTF-8") from None
            form.fields.setdefault(event.name or "", []).append(text)
    except MultipartError as error:
        raise BadRequest(f"malformed multipart body: {error}") from None
    return form


def _payload(events: Iterator[_Event]) -> Iterator[bytes]:
    """The payload blocks of the current segment, up to its end event."""
    try:
        for event in events:
            if event is None:
                return
            if isinstance(event, bytes):
                yield event
    except MultipartError as error:
        raise BadRequest(f"malformed multipart body: {error}") from None
    raise BadRequest("multipart body ended inside a part")


def _events(
    stream: IO[bytes], length: int | None, boundary: str, raw: bytearray, recording: list[bool]
) -> Iterator[_Event]:
    with PushMultipartParser(boundary, max_segment_count=MAX_SEGMENTS) as parser:
        for block in BodyReader(stream, length):
            if recording[0]:
                raw += block
            yield from parser.parse(block)
            if parser.closed:
                break
        else:
            yield from parser.parse(b"")
