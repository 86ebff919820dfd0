"""Uploads: a record store, a data store and a locker, put together.

Protocols speak to :class:`Storage` for records and locks, and to
``storage.data`` (a :class:`~.base.DataStore`) for bytes.  What every
backend shares lives here: the expiry rule, removal of expired uploads, and
the check that no state is saved under a lost lock.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from ..errors import UploadExpired, UploadLocked, UploadNotFound
from ..locking import Lock, Locker
from .base import DataStore, RecordStore, StaleRecord, valid_id
from .record import UploadRecord

_WRITERS = "w"  # the writers' lock of upload ``<id>`` is key ``<id>w``


class Storage:
    """Records, bytes and locks of uploads (see :mod:`tus_filter.storage.base`)."""

    def __init__(
        self, records: RecordStore, data: DataStore, locker: Locker, *, valid_duration: int
    ):
        self.records = records
        self.data = data
        self.locker = locker
        self.valid_duration = valid_duration
        self._held = threading.local()  # upload id -> the Lock this thread holds for it

    # -- locks ------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh random id of 128 bits."""
        return secrets.token_hex(16)

    @contextmanager
    def lock(
        self, upload_id: str, *, timeout: float | None = None, request_release: bool = False
    ) -> Iterator[Lock]:
        """Hold the upload's lock; raise ``UploadLocked`` after the timeout.

        ``request_release`` asks a holder busy with a long write to let go
        first; long writers poll ``Lock.release_requested()`` and save what
        they have.  Saves of the upload's record in this thread, while the
        lock is held, fail with :class:`StaleRecord` once the lock is lost.
        """
        valid_id(upload_id)  # before a lock is named after it
        with self.locker.hold(
            upload_id, timeout=timeout, request_release=request_release
        ) as lock:
            held = self._holds()
            outer = held.get(upload_id)
            held[upload_id] = lock
            try:
                yield lock
            finally:
                if self.locker.keys_outlive_holds and not self.records.exists(upload_id):
                    # No such upload (an unknown id, or deleted): leave no lock file behind.
                    lock.discard()
                if outer is None:
                    del held[upload_id]
                else:
                    held[upload_id] = outer

    def chunk_writers(
        self, upload_id: str, *, exclusive: bool
    ) -> AbstractContextManager[Lock | None]:
        """The lock that in-place chunk writers share and completion takes exclusively.

        Only for a data store that writes chunks in place
        (``capabilities.in_place_chunks``): completion waits for the writes
        in flight, so no byte lands in a file after it was handed to the
        application.  Other stores need no such lock (a context holding
        ``None``).  Take it before :meth:`lock`, never while holding it,
        except to complete.
        """
        valid_id(upload_id)
        if not self.data.capabilities.in_place_chunks:
            return contextlib.nullcontext()
        return self.locker.hold(upload_id + _WRITERS, shared=not exclusive)

    def _holds(self) -> dict[str, Lock]:
        held: dict[str, Lock] | None = getattr(self._held, "locks", None)
        if held is None:
            held = self._held.locks = {}
        return held

    # -- records ----------------------------------------------------------------------------

    def create(self, record: UploadRecord) -> None:
        """Prepare the bytes, then store the new record (``UploadExists`` if the id is taken)."""
        valid_id(record.upload_id)
        self.data.create(record)
        self.records.create(record)

    def load(self, upload_id: str, *, allow_expired: bool = False) -> UploadRecord:
        """The record; ``UploadNotFound``, or ``UploadExpired`` once past its expiry.

        The expiry is the record's own (:meth:`UploadRecord.expires_at`) or,
        if later, that of an unfinished upload in its ``finals``.
        """
        record = self.records.load(valid_id(upload_id))
        if not allow_expired and self._expired(record, time.time()):
            raise UploadExpired(upload_id=upload_id)
        return record

    def save(self, record: UploadRecord) -> None:
        """Save the record, unless this thread's lock for it is lost (:class:`StaleRecord`)."""
        lock = self._holds().get(record.upload_id)
        if lock is not None and lock.lost():
            raise StaleRecord("the upload's lock expired under this request, retry")
        self.records.save(record)

    def delete(self, upload_id: str, lock: Lock) -> None:
        """Remove the upload's bytes, its record and (through ``lock``) its lock."""
        try:
            record = self.records.load(valid_id(upload_id))
        except UploadNotFound:
            pass
        else:
            self.data.discard(record)
            self.records.delete(upload_id)
        lock.discard()
        if self.data.capabilities.in_place_chunks:
            # Nobody writes chunks of a deleted upload: forget its writers' lock,
            # unless a writer still holds it (it finds the upload gone).
            with contextlib.suppress(UploadLocked), self.locker.hold(
                upload_id + _WRITERS, timeout=0
            ) as writers:
                writers.discard()

    def _expired(self, record: UploadRecord, now: float) -> bool:
        """Past its own expiry and that of every unfinished upload waiting for it (``finals``)."""
        expires = record.expires_at(self.valid_duration)
        if expires is None or expires >= now:
            return False
        for waiting_id in record.finals:
            try:
                waiting = self.records.load(waiting_id)
            except UploadNotFound:
                continue
            if waiting.is_complete:
                continue  # assembled: it needs this one no more
            theirs = waiting.expires_at(self.valid_duration)
            if theirs is None or theirs >= now:
                return False
        return True

    # -- expiry -----------------------------------------------------------------------------

    def discard_expired(self, upload_id: str) -> bool:
        """Delete the upload if it is past its expiry and no request holds it.

        Whether it was deleted.  Never waits: an upload whose lock is held,
        or a chunk of which is being written (:meth:`chunk_writers`), is
        kept, and so is one a request revived meanwhile.
        """
        if self.valid_duration <= 0:
            return False
        try:
            with self.lock(upload_id, timeout=0) as lock:
                try:
                    self.load(upload_id)
                    return False  # touched meanwhile: alive again
                except UploadExpired:
                    with self._no_chunk_writer(upload_id):
                        self.delete(upload_id, lock)
                    return True
                except UploadNotFound:
                    return False  # gone already
        except UploadLocked:
            return False

    @contextmanager
    def _no_chunk_writer(self, upload_id: str) -> Iterator[None]:
        """Hold the writers' lock exclusively, without waiting (``UploadLocked`` if busy)."""
        if not self.data.capabilities.in_place_chunks:
            yield
            return
        with self.locker.hold(upload_id + _WRITERS, timeout=0) as writers:
            yield
            writers.discard()

    def cleanup(self) -> int:
        """Delete expired uploads that nobody holds; return how many were deleted.

        Bytes without a record (a crash between creating and saving an
        upload) go once they are older than ``upload_valid_duration``.
        """
        if self.valid_duration <= 0:
            return 0
        now = time.time()
        deleted = 0
        for upload_id in self.records.ids():
            try:
                record = self.records.load(upload_id)
            except UploadNotFound:
                continue
            if self._expired(record, now):
                deleted += self.discard_expired(upload_id)
        self.data.sweep(self._known, self.valid_duration)
        return deleted

    def _known(self, upload_id: str) -> bool:
        try:
            self.records.load(upload_id)
        except UploadNotFound:
            return False
        return True
