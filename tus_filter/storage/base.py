"""The storage contract every protocol is written against.

Protocols validate, storage only stores.  Storage never sees a header or a
client string used as a path: it receives ids it generated itself (or
hex digests derived from client values) and records built by protocols.

What callers guarantee:
  * they hold :meth:`Storage.lock` for an upload around every
    load → validate → :meth:`Storage.save` sequence that must not interleave
    with another request's (positional chunk writes to disjoint ranges may run
    without the lock; only the bookkeeping after them needs it);
  * they pass :meth:`Storage.write_at` ranges they have validated.

What storage guarantees:
  * ids that are not storage ids raise :class:`UploadNotFound` without
    touching the filesystem;
  * :meth:`Storage.save` replaces a record atomically, so a reader never sees
    a half-written record, with or without the lock;
  * :meth:`Storage.write_at` returns only after the bytes are durable;
  * OS errors surface as domain errors (``StorageFull``, ``UploadNotFound``).
"""

from __future__ import annotations

import base64
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import TusFilterError
from ..locking import Lock

UPLOADING = "uploading"
COMPLETE = "complete"


class UploadExists(TusFilterError):
    """:meth:`Storage.create` lost a race: a record with that id exists."""

    status = 409
    code = "exists"
    default_message = "upload already exists"


@dataclass
class UploadRecord:
    """What is known about one upload; stored as a small JSON document.

    Fields a protocol does not use stay at their defaults.  ``touched`` is the
    time of the last request that changed the upload: unfinished uploads
    expire ``upload_valid_duration`` seconds after it, finished ones that long
    after ``completed``.  An upload named in ``finals`` lives at least as long
    as every unfinished upload listed there (a tus partial, while a final
    that names it waits for its other partials).
    """

    upload_id: str
    protocol: str
    length: int | None
    filename: str | None = None
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = UPLOADING
    created: float = field(default_factory=time.time)
    touched: float = field(default_factory=time.time)
    completed: float | None = None
    scope: str = ""  # ``Protocol.scope_of`` the creating request (``bind_to_scope``)
    # tus
    offset: int = 0
    raw_metadata: str | None = None
    concat: str | None = None  # "partial" or "final"
    concat_header: str | None = None  # the final's Upload-Concat, echoed on HEAD
    parts: list[str] = field(default_factory=list)  # a final's partials, in order
    finals: list[str] = field(default_factory=list)  # finals naming this partial: see above
    # chunk-numbered protocols (flow.js, resumable.js, uid)
    chunk_size: int | None = None
    chunk_count: int | None = None
    layout: str | None = None  # "floor" or "ceil": how the last chunk is sized
    received: str = ""  # base64 bitmap of stored chunks, bit i = chunk i (0-based)

    @property
    def is_complete(self) -> bool:
        return self.status == COMPLETE

    def expires_at(self, valid_duration: int) -> float | None:
        if valid_duration <= 0:
            return None
        start = self.completed if self.completed is not None else self.touched
        return start + valid_duration

    # -- chunk bitmap ---------------------------------------------------------------------

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

    # -- serialisation --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadRecord:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


class StagedChunk(ABC):
    """Bytes set aside by :meth:`Storage.staged`; ``size`` of them."""

    size: int

    @abstractmethod
    def place(self, offset: int) -> None:
        """Copy the staged bytes into the data file from ``offset`` (durable on return)."""


class Storage(ABC):
    """Upload records, data files and per-upload locks (see the module docstring)."""

    @abstractmethod
    def new_id(self) -> str:
        """A fresh random id of at least 128 bits."""

    @abstractmethod
    def lock(
        self, upload_id: str, *, timeout: float | None = None, request_release: bool = False
    ) -> AbstractContextManager[Lock]:
        """Hold the upload's lock; raise ``UploadLocked`` after the timeout.

        ``request_release`` asks a holder busy with a long write to let go
        first (see :mod:`tus_filter.locking`); long writers poll
        ``Lock.release_requested()`` and save what they have.
        """

    @abstractmethod
    def chunk_writers(
        self, upload_id: str, *, exclusive: bool
    ) -> AbstractContextManager[Lock]:
        """The lock chunk writers share and completion takes exclusively.

        Positional writes of chunks run without :meth:`lock`, so completion
        holds this exclusively to wait for writes in flight: no byte lands in
        a file after it was handed to the application.  Take it before
        :meth:`lock`, never while holding it, except to complete.
        """

    @abstractmethod
    def create(self, record: UploadRecord) -> None:
        """Store a new record and an empty data file; ``UploadExists`` if the id is taken."""

    @abstractmethod
    def load(self, upload_id: str, *, allow_expired: bool = False) -> UploadRecord:
        """The record; ``UploadNotFound``, or ``UploadExpired`` once past its expiry.

        The expiry is the record's own (:meth:`UploadRecord.expires_at`) or,
        if later, that of an unfinished upload in its ``finals``.
        """

    @abstractmethod
    def save(self, record: UploadRecord) -> None:
        """Atomically replace the record."""

    @abstractmethod
    def write_at(self, upload_id: str, offset: int, blocks: Iterable[bytes]) -> int:
        """Write ``blocks`` into the data file from ``offset``; return the bytes written.

        If ``blocks`` raises, the bytes written so far stay written and the
        error propagates; the caller decides whether they count.
        """

    @abstractmethod
    def staged(
        self, upload_id: str, blocks: Iterable[bytes]
    ) -> AbstractContextManager[StagedChunk]:
        """Write ``blocks`` aside, not into the data file, until their place is known.

        For a chunk whose size, and so whether and where it belongs, is known
        only once it has been read whole.  The staged bytes are gone when the
        context ends; if ``blocks`` raises, the error propagates and nothing
        is left behind.
        """

    @abstractmethod
    def truncate(self, upload_id: str, size: int) -> None:
        """Cut the data file back to ``size`` bytes (drops an unverified tail)."""

    @abstractmethod
    def concatenate(self, upload_id: str, source_ids: list[str]) -> int:
        """Fill the data file with the sources' data files in order; return its size."""

    @abstractmethod
    def delete(self, upload_id: str, lock: Lock) -> None:
        """Remove the record, the data file and (through ``lock``) the lock file."""

    @abstractmethod
    def data_path(self, upload_id: str) -> str:
        """Where the upload's bytes are (the hand-off's ``Upload.path``)."""

    @abstractmethod
    def discard_expired(self, upload_id: str) -> bool:
        """Delete the upload if it is past its expiry and no request holds it.

        Whether it was deleted.  Never waits: an upload whose lock is held, or
        a chunk of which is being written (:meth:`chunk_writers`), is kept, and
        so is one a request revived meanwhile.
        """

    @abstractmethod
    def cleanup(self) -> int:
        """Delete expired uploads that nobody holds; return how many were deleted."""
