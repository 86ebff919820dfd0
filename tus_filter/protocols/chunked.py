"""What the chunk-numbered protocols share: layout maths and exactly-once chunk bookkeeping.

flow.js, resumable.js and the uid protocol all cut a file of ``total`` bytes
into ``count`` chunks of ``chunk_size`` bytes, the last one taking the rest
(:class:`~tus_filter.storage.ChunkLayout`; the uid protocol accepts any
:class:`UniformCut`), and keep the same state of an upload in its record
(:class:`ChunkState`).  What a chunk teaches about the layout is pinned there
under the lock (:meth:`ChunkStore.pin`).  Chunks are written without
the upload's lock (``DataStore.write_chunk``: on disk straight into the
file at their offset, so parallel chunks really run in parallel), and
counted, under the lock, only after they were stored completely with
exactly their expected size.  A chunk whose place follows from its size, or
one of unknown size that would replace a stored chunk, is staged first
(``DataStore.stage``).  Completing an upload is a bookkeeping step whose
cost does not grow with the file: on disk there is nothing to concatenate,
on S3 only the last slot of chunks is still to be uploaded.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace

from ..errors import BadRequest, UploadExpired, UploadNotFound
from ..incoming import UploadRequest
from ..storage import ChunkLayout, UploadRecord
from ..upload import Upload
from .base import Protocol

MAX_CHUNKS = 100_000  # per upload, for every chunk protocol: the received bitmap stays < 13 KiB
MAX_FILENAME_BYTES = 255
_DECIMAL = re.compile(r"[0-9]{1,15}")


def parse_decimal(value: str, name: str) -> int:
    """A parameter sent as text: plain decimal digits, at most 15 of them."""
    if not _DECIMAL.fullmatch(value):
        raise BadRequest(f"{name} must be a decimal integer of at most 15 digits")
    return int(value)


def check_filename(value: str, name: str) -> None:
    """A bare file name, kept as metadata only, whose shape an application can still trust.

    1 to ``MAX_FILENAME_BYTES`` bytes of UTF-8, not ``.`` or ``..``, without
    ``/``, ``\\``, control characters or lone surrogates.
    """
    if (
        value in ("", ".", "..")
        or len(value.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES
        or any(char in "/\\" or unicodedata.category(char) in ("Cc", "Cs") for char in value)
    ):
        raise BadRequest(
            f"{name} must be a file name of 1 to {MAX_FILENAME_BYTES} bytes "
            "without '/', '\\' or control characters"
        )


@dataclass
class ChunkState:
    """What the chunk protocols keep of an upload, in ``UploadRecord.state``.

    ``chunk_size`` and ``chunk_count``, once known: the uid protocol may
    learn the size from a chunk, flow.js and resumable.js learn the count
    with ``layout`` (``"floor"`` or ``"ceil"``: how the last chunk is sized).
    ``received`` is a base64 bitmap of the counted chunks, bit ``i`` for
    chunk ``i`` (0-based).  :meth:`of` reads the state from a record,
    :meth:`store` writes it back (the caller saves the record).
    """

    chunk_size: int | None = None
    chunk_count: int | None = None
    layout: str | None = None
    received: str = ""

    @classmethod
    def of(cls, record: UploadRecord) -> ChunkState:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in record.state.items() if key in names})

    def store(self, record: UploadRecord) -> None:
        record.state = asdict(self)

    def _bitmap(self) -> bytearray:
        return bytearray(base64.b64decode(self.received)) if self.received else bytearray()

    def has_chunk(self, index: int) -> bool:
        bits = self._bitmap()
        return index // 8 < len(bits) and bool(bits[index // 8] & (1 << (index % 8)))

    def add_chunk(self, index: int) -> None:
        bits = self._bitmap()
        if index // 8 >= len(bits):
            bits.extend(bytes(index // 8 + 1 - len(bits)))
        bits[index // 8] |= 1 << (index % 8)
        self.received = base64.b64encode(bytes(bits)).decode()

    def chunks_received(self) -> int:
        return sum(bin(byte).count("1") for byte in self._bitmap())


@dataclass(frozen=True)
class UniformCut:
    """The ways of cutting ``total`` bytes into ``count`` chunks of one size but the last.

    A chunk size ``S`` fits when ``ceil(total / S) == count`` (every chunk
    non-empty); :attr:`sizes` are all that fit.  Chunk ``i`` of a chunk that
    is not the last starts at ``i * S``, the last ends at ``total``.  A single
    chunk is the whole file (its size is ``max(1, total)`` by convention), so
    a 0-byte file is one empty chunk.
    """

    total: int
    count: int

    @property
    def sizes(self) -> range:
        if self.count == 1:
            return range(max(1, self.total), max(1, self.total) + 1)
        smallest = -(-self.total // self.count)
        largest = (self.total - 1) // (self.count - 1)  # (count - 1) * S < total
        return range(max(1, smallest), largest + 1)

    def layout(self, chunk_size: int) -> ChunkLayout:
        return ChunkLayout(self.total, chunk_size, self.count)

    def size_of(self, index: int, length: int) -> int:
        """The chunk size that chunk ``index`` of ``length`` bytes implies; 400 if none fits."""
        if index < self.count - 1:
            size = length
        elif self.count == 1:
            size = self.sizes[0] if length == self.total else 0
        else:
            before, rest = divmod(self.total - length, self.count - 1)
            size = before if length > 0 and rest == 0 else 0
        if size not in self.sizes:
            raise BadRequest(f"chunk {index} has {length} bytes: {self.rule()}")
        return size

    def rule(self) -> str:
        """The cut rule, worded for an error message about a chunk that breaks it."""
        sizes = self.sizes
        if self.count == 1:
            return f"a single chunk is the whole file ({self.total} bytes)"
        return (
            "the chunks before the last must share one size S with "
            f"ceil(totalSize / S) == chunkCount (S from {sizes[0]} to {sizes[-1]} bytes), "
            "and the last chunk ends at totalSize"
        )


@dataclass(frozen=True)
class ChunkResult:
    """``complete``: the upload is finished (now or earlier).

    ``completed`` is set only for the one request that finished it: that
    request, and no other, hands the upload to the application.
    """

    complete: bool
    completed: Upload | None = None


class ChunkStore:
    """Chunk bookkeeping for ``protocol`` on top of its storage.

    :meth:`find` and :meth:`open` take the id a client named (or its key) and
    load it through :meth:`Protocol.own_record`; the other methods take a
    record obtained that way.
    """

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self.storage = protocol.storage

    def find(self, request: UploadRequest, upload_id: str) -> UploadRecord | None:
        """The live record, or ``None`` (unknown, deleted, not ours, or expired: then removed)."""
        try:
            return self.protocol.own_record(request, upload_id)
        except UploadExpired:
            self.storage.discard_expired(upload_id)
            return None
        except UploadNotFound:
            return None

    def open(
        self, request: UploadRequest, upload_id: str, new_record: Callable[[], UploadRecord]
    ) -> UploadRecord:
        """The live record for ``upload_id``, created from ``new_record()`` if there is none.

        An expired record under the same id is replaced: the client starts over.
        """
        record = self.find(request, upload_id)
        if record is not None:
            return record
        with self.storage.lock(upload_id):
            try:
                return self.protocol.own_record(request, upload_id)
            except UploadExpired:  # start afresh over the stale record
                stale = self.storage.load(upload_id, allow_expired=True)
                self.storage.data.discard(stale)
                record = new_record()
                record.version = stale.version
                self.storage.data.create(record)
                self.storage.save(record)
                return record
            except UploadNotFound:
                record = new_record()
                self.storage.create(record)
                return record

    def pin(self, upload_id: str, settle: Callable[[ChunkState], bool]) -> None:
        """Record what a chunk taught about the upload's layout, under its lock.

        ``settle(state)`` raises :class:`BadRequest` if the upload's state
        already holds something else, and returns whether it changed the state.
        """
        with self.storage.lock(upload_id):
            record = self.storage.load(upload_id)
            state = ChunkState.of(record)
            if not record.is_complete and settle(state):
                state.store(record)
                self.storage.save(record)

    def write(
        self, record: UploadRecord, index: int, layout: ChunkLayout, blocks: Iterable[bytes],
        *, stage_resent: bool = False, rule: str = "",
    ) -> ChunkResult:
        """Store chunk ``index`` from ``blocks``; it must be exactly ``layout.size(index)`` bytes.

        A chunk of the wrong size raises :class:`BadRequest` and is not counted.
        Bytes beyond the chunk's range are never written, and nothing is
        written once the upload is complete (see ``Storage.chunk_writers``).
        An uncounted chunk streams into its place; if its size turns out wrong,
        bytes of it may stay there, uncounted.  A chunk already counted is
        overwritten the same way, unless ``stage_resent`` (for chunks whose
        size is known only once read): then it is staged, and replaces the
        stored one only with exactly its size.
        ``rule`` (the protocol's cut rule) ends the message of a size error.
        """
        data = self.storage.data
        with self.storage.chunk_writers(record.upload_id, exclusive=False):
            current = self.storage.load(record.upload_id)
            if current.is_complete:
                _drain(blocks)  # a retry after a lost response is harmless
                return ChunkResult(True)
            expected = layout.size(index)
            bounded = _exactly(blocks, index, expected, rule)
            if stage_resent and ChunkState.of(current).has_chunk(index):
                with data.stage(current, bounded) as chunk:
                    _check_size(index, chunk.size, expected, rule)
                    chunk.place(layout, index)
            else:
                written = data.write_chunk(current, layout, index, bounded)
                _check_size(index, written, expected, rule)
        return self._count(record.upload_id, index, layout, created=current.created)

    def write_unplaced(
        self, record: UploadRecord, index: int, blocks: Iterable[bytes],
        *, limit: int, place: Callable[[int], ChunkLayout], rule: str = "",
    ) -> ChunkResult:
        """Store chunk ``index`` whose range is known only from its size.

        The chunk (at most ``limit`` bytes) is staged; ``place(size)`` checks
        the size, may pin the layout it implies (:meth:`pin`), and returns that
        layout; only then is the chunk stored in its place.  ``rule`` as
        for :meth:`write`.
        """
        with self.storage.chunk_writers(record.upload_id, exclusive=False):
            current = self.storage.load(record.upload_id)
            if current.is_complete:
                _drain(blocks)
                return ChunkResult(True)
            bounded = _exactly(blocks, index, limit, rule)
            with self.storage.data.stage(current, bounded) as chunk:
                layout = place(chunk.size)
                _check_size(index, chunk.size, layout.size(index))
                chunk.place(layout, index)
        return self._count(record.upload_id, index, layout, created=current.created)

    def _count(
        self, upload_id: str, index: int, layout: ChunkLayout, *, created: float
    ) -> ChunkResult:
        """Count chunk ``index`` as stored; complete the upload if it was the last one.

        ``created``: the ``created`` of the record the chunk was written for.  If
        the upload expired and started afresh (or was deleted and created again)
        meanwhile, the bytes went into the old upload: the chunk does not count.
        Once the count is saved, the data store may prepare the assembly
        (``DataStore.chunk_counted``), without the lock.

        ``layout`` is the request's; the chunk count is the record's: another
        chunk may have told it meanwhile (flow.js and resumable.js files that
        either layout fits), and the upload completes, and is assembled, in
        the layout it has now.  Chunk ``index`` is the same in both.
        """
        with self.storage.lock(upload_id):
            record = self.storage.load(upload_id)
            if record.created != created:
                raise UploadNotFound("the upload was replaced while the chunk was written")
            if record.is_complete:
                return ChunkResult(True)
            state = ChunkState.of(record)
            if state.chunk_count is not None and state.chunk_count != layout.count:
                layout = ChunkLayout(layout.total, layout.chunk_size, state.chunk_count)
            state.add_chunk(index)
            state.store(record)
            result = self._finish_or_save(record, state, layout)
        if not result.complete:
            self.storage.data.chunk_counted(record, layout, index, state.has_chunk)
        return result

    def finish_if_complete(self, upload_id: str, layout: ChunkLayout) -> ChunkResult:
        """Complete the upload if every chunk is stored (recovery through a test request)."""
        with self.storage.lock(upload_id):
            record = self.storage.load(upload_id)
            if record.is_complete:
                return ChunkResult(True)
            state = ChunkState.of(record)
            if state.chunks_received() < (state.chunk_count or 0):
                return ChunkResult(False)
            return self._finish_or_save(record, state, layout)

    def _finish_or_save(
        self, record: UploadRecord, state: ChunkState, layout: ChunkLayout
    ) -> ChunkResult:
        """``state`` is ``record``'s, already stored in it.

        The upload is assembled with the chunk count the record settled on:
        ``layout`` is the one the request's chunk implied, which may still
        have had the larger count of an unknown mode (a data store that
        builds the file from the layout, S3, needs the real one).
        """
        self.protocol.touch(record)
        if state.chunks_received() == state.chunk_count:
            final = replace(layout, count=state.chunk_count)
            # Wait for re-sent chunks still being written: the file is final from here on.
            with self.storage.chunk_writers(record.upload_id, exclusive=True):
                return ChunkResult(True, self.protocol.complete(record, final))
        self.storage.save(record)
        return ChunkResult(False)


def _check_size(index: int, written: int, expected: int, rule: str = "") -> None:
    if written != expected:
        message = f"chunk {index} has {written} bytes, expected {expected}"
        raise BadRequest(_with_rule(message, rule))


def _with_rule(message: str, rule: str) -> str:
    return f"{message}: {rule}" if rule else message


def _drain(blocks: Iterable[bytes]) -> None:
    for _ in blocks:
        pass


def _exactly(blocks: Iterable[bytes], index: int, expected: int, rule: str = "") -> Iterator[bytes]:
    """Pass ``blocks`` through, refusing (before writing) any byte beyond ``expected``."""
    seen = 0
    for block in blocks:
        seen += len(block)
        if seen > expected:
            message = f"chunk {index} is larger than {expected} bytes"
            raise BadRequest(_with_rule(message, rule))
        yield block
