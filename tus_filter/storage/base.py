"""The storage contract: records, bytes and locks, as three separate parts.

Protocols validate, storage only stores.  Storage never sees a header or a
client string used as a key: it receives ids it generated itself (or hex
digests derived from client values, see :func:`valid_id`) and records built
by protocols.  An upload is three things, each behind its own contract:

  * its **record** (:class:`RecordStore`): a small document of what is known
    about the upload, loaded and saved whole;
  * its **bytes** (:class:`DataStore`): appended at an offset (tus, the IETF
    draft) or put chunk by chunk (flow.js, resumable.js, uid), then
    assembled into one file or object that the application receives;
  * its **lock** (:class:`~tus_filter.locking.Locker`), held around every
    load → validate → write → save sequence that must not interleave with
    another request's.

:class:`~tus_filter.storage.uploads.Storage` puts the three together and
adds what every backend shares (expiry, cleanup).

What callers guarantee:
  * they hold the upload's lock around every load → save sequence; chunk
    writes (:meth:`DataStore.write_chunk`) may run without it, only the
    bookkeeping after them needs it;
  * they pass ranges and sizes they validated against the record.

What backends guarantee:
  * ids that :func:`valid_id` refuses raise :class:`UploadNotFound` at once;
  * a record is replaced atomically: a reader never sees half of one;
  * bytes are durable when a method returns: an acknowledged byte survives
    a crash of the process (and, for files, a power cut);
  * backend failures surface as domain errors: :class:`StorageFull` for a
    full disk, :class:`StorageUnavailable` for a transient failure (a
    timeout, a 5xx answer, a refused connection), which a client may retry.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import TusFilterError, UploadLocked, UploadNotFound
from .record import UploadRecord

_ID = re.compile(r"(?:[0-9a-f]{32}|[0-9a-f]{64})\Z")  # \Z: "$" would allow a final "\n"


def valid_id(upload_id: str) -> str:
    """``upload_id`` if it can be a storage id (32 or 64 lowercase hex digits), else 404."""
    if not _ID.match(upload_id):
        raise UploadNotFound()
    return upload_id


class UploadExists(TusFilterError):
    """:meth:`RecordStore.create` lost a race: a record with that id exists."""

    status = 409
    code = "exists"
    default_message = "upload already exists"


class StaleRecord(UploadLocked):
    """:meth:`RecordStore.save` found a newer record than the one loaded.

    Another request changed the upload meanwhile (its lock had expired
    under this one): nothing was saved, and the client may retry.
    """

    default_message = "the upload changed under this request, retry"


@dataclass(frozen=True)
class ChunkLayout:
    """Chunk ``i`` (0-based) covers ``[i * chunk_size, i * chunk_size + size(i))``.

    ``count`` chunks of ``chunk_size`` bytes cover ``total`` bytes, the
    last one taking the rest (it may be smaller or larger than the others).
    """

    total: int
    chunk_size: int
    count: int

    def start(self, index: int) -> int:
        return index * self.chunk_size

    def size(self, index: int) -> int:
        if index < self.count - 1:
            return self.chunk_size
        return self.total - (self.count - 1) * self.chunk_size


class RecordStore(ABC):
    """Upload records, by id."""

    @abstractmethod
    def create(self, record: UploadRecord) -> None:
        """Store a new record; :class:`UploadExists` if the id is taken."""

    @abstractmethod
    def load(self, upload_id: str) -> UploadRecord:
        """The record as last saved; :class:`UploadNotFound` if there is none."""

    @abstractmethod
    def exists(self, upload_id: str) -> bool:
        """Whether a record is stored under ``upload_id`` (cheaper than :meth:`load`)."""

    @abstractmethod
    def save(self, record: UploadRecord) -> None:
        """Replace the record atomically and count the save in ``record.version``.

        A store whose locks can be lost (Redis) raises :class:`StaleRecord`
        and saves nothing if the stored record is not the ``version`` that
        was loaded; a store whose locks cannot be lost (``flock``) may skip
        that check.  :class:`UploadNotFound` if the record was deleted.
        """

    @abstractmethod
    def delete(self, upload_id: str) -> None:
        """Remove the record (no error if it is gone already)."""

    @abstractmethod
    def ids(self) -> Iterator[str]:
        """Every stored id (for cleanup; may include ids deleted meanwhile)."""


@dataclass(frozen=True)
class Capabilities:
    """What a :class:`DataStore` can do, for the code that must adapt to it.

    ``local_paths``: the assembled bytes are a local file (``Upload.path``).
    ``in_place_chunks``: chunks are written straight into the assembled file,
    so completion must wait for chunk writes in flight (the writers' lock,
    :meth:`Storage.chunk_writers <tus_filter.storage.uploads.Storage.chunk_writers>`).
    """

    local_paths: bool
    in_place_chunks: bool


class StagedChunk(ABC):
    """Bytes set aside by :meth:`DataStore.stage`; ``size`` of them."""

    size: int

    @abstractmethod
    def place(self, layout: ChunkLayout, index: int) -> None:
        """Store the staged bytes as chunk ``index`` of ``layout`` (durable on return)."""


class DataStore(ABC):
    """The bytes of uploads.  Every method takes the upload's record.

    A method may change ``record.data`` (and only that); the caller saves
    the record afterwards, so that the change and the protocol's own
    (a new offset, a chunk marked as received) land together.  A change the
    caller does not save must not lose bytes: a store keeps what an earlier
    saved record refers to until a later saved record no longer does.
    """

    capabilities: Capabilities

    @abstractmethod
    def create(self, record: UploadRecord) -> None:
        """Prepare for a new upload's bytes, before its record is first stored."""

    @abstractmethod
    def append(
        self,
        record: UploadRecord,
        blocks: Iterable[bytes],
        *,
        verify: Callable[[], None] | None = None,
    ) -> int:
        """Append ``blocks`` at ``record.offset``; return how many bytes were appended.

        The caller adds the count to ``record.offset`` and saves the record.
        When ``blocks`` is exhausted, ``verify()`` (a checksum) runs before
        the bytes are kept; if it or ``blocks`` raises, none of this call's
        bytes count, ``record`` is as it was, and the error propagates.  A
        store that fails after it has kept some bytes, and without
        ``verify``, may raise :class:`~tus_filter.errors.PartlyStored` with
        their count instead, ``record.data`` updated for them.
        ``blocks`` that simply end early keep what they gave.  A store reads
        ``blocks`` to their end even once it has what it needs: the caller's
        reader checks a body's framing and length only there.
        """

    @abstractmethod
    def write_chunk(
        self, record: UploadRecord, layout: ChunkLayout, index: int, blocks: Iterable[bytes]
    ) -> int:
        """Store ``blocks`` as chunk ``index`` of ``layout``; return how many bytes came.

        ``blocks`` never give more than ``layout.size(index)`` bytes (the
        caller bounds them); the caller counts the chunk only with exactly
        that many, and a chunk that is not counted is never part of the
        assembled file (a store that cannot write in place keeps a chunk
        only with exactly its size, so that a bad copy never replaces a
        good one).  Writing a chunk again replaces it.  If ``blocks``
        raises, the error propagates.  Needs no lock (see the module doc).
        """

    @abstractmethod
    def stage(
        self, record: UploadRecord, blocks: Iterable[bytes]
    ) -> AbstractContextManager[StagedChunk]:
        """Set ``blocks`` aside until their place is known (from their size).

        The staged bytes are gone when the context ends; if ``blocks``
        raises, the error propagates and nothing is left behind.
        """

    @abstractmethod
    def chunk_counted(
        self,
        record: UploadRecord,
        layout: ChunkLayout,
        index: int,
        received: Callable[[int], bool],
    ) -> None:
        """Chunk ``index`` was counted (the record that says so is saved).

        ``received(i)`` tells which chunks are counted so far.

        Called without the lock, so a store may prepare the assembly
        (upload an S3 part whose chunks are all there) while other chunks
        arrive.  Must be idempotent and safe to run on several hosts at once.
        """

    @abstractmethod
    def assemble(self, record: UploadRecord, layout: ChunkLayout | None = None) -> None:
        """Make the upload's bytes final, once all of them are there.

        ``layout`` for chunked uploads (every chunk counted), ``None`` for
        appended ones (``record.offset == record.length``).  Under the lock;
        the record is saved as complete afterwards.  Idempotent: after
        :meth:`concatenate`, or after a first call, it does nothing more.
        """

    @abstractmethod
    def concatenate(self, record: UploadRecord, sources: list[UploadRecord]) -> int:
        """Make ``record``'s bytes the sources' assembled bytes, in order; return the size."""

    @abstractmethod
    def open(self, record: UploadRecord) -> BinaryIO:
        """A streaming binary reader of the assembled bytes (the caller closes it)."""

    @abstractmethod
    def location(self, record: UploadRecord) -> str:
        """Where the assembled bytes are: a local path or an ``s3://bucket/key`` URL."""

    @abstractmethod
    def local_path(self, record: UploadRecord) -> str | None:
        """The assembled bytes as a local file (``Upload.path``), or ``None``."""

    @abstractmethod
    def discard(self, record: UploadRecord) -> None:
        """Delete every byte of the upload, staged or assembled (no error if gone)."""

    @abstractmethod
    def sweep(self, known: Callable[[str], bool], max_age: float) -> int:
        """Delete bytes older than ``max_age`` seconds of uploads ``known(id)`` denies.

        What a crash between :meth:`create` and the record's first save left
        behind; return how many uploads' bytes were deleted.
        """

