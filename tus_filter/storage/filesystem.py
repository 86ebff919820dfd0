"""Filesystem storage: one directory per upload, a JSON record and a data file.

Layout below ``tmp_file_dir``::

    uploads/<id[:2]>/<id>/info.json   the record, replaced atomically (write + rename)
    uploads/<id[:2]>/<id>/data        the bytes, written at offsets (sparse while chunks arrive)
    locks/<id[:2]>/<id>.lock          the per-upload lock file (see ``tus_filter.locking``)

Ids are lowercase hex (32 or 64 digits); anything else is rejected before a
path is built, so no client string can ever reach the filesystem.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from ..errors import StorageFull, UploadExpired, UploadLocked, UploadNotFound
from ..locking import FileLocker, Lock
from .base import StagedChunk, Storage, UploadExists, UploadRecord

_ID = re.compile(r"(?:[0-9a-f]{32}|[0-9a-f]{64})\Z")  # \Z: "$" would allow a final "\n"
_COPY_BLOCK = 1024 * 1024
_WRITERS = "w"  # ``chunk_writers`` lock file: ``<id>w.lock`` beside ``<id>.lock``


@contextmanager
def _os_errors() -> Iterator[None]:
    """Translate OS errors that mean something to a client into domain errors."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from error
        raise


def _write_blocks(fd: int, offset: int, blocks: Iterable[bytes], *, durable: bool = True) -> int:
    """Write ``blocks`` from ``offset``; return the bytes written (``fdatasync``-ed if durable)."""
    written = 0
    try:
        for block in blocks:
            view = memoryview(block)
            while view:
                count = os.pwrite(fd, view, offset + written)
                written += count
                view = view[count:]
    finally:
        if durable:
            os.fdatasync(fd)
    return written


def _open_data(path: str) -> int:
    """A descriptor for writing the data file at ``path``; ``UploadNotFound`` if it is gone."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UploadNotFound() from None


class _StagedFile(StagedChunk):
    """A staged chunk in an unlinked scratch file beside the data file."""

    def __init__(self, data_path: str, fd: int, size: int):
        self._data_path = data_path
        self._fd = fd
        self.size = size

    def place(self, offset: int) -> None:
        with _os_errors():
            target = _open_data(self._data_path)
            try:
                _write_blocks(target, offset, self._blocks())
            finally:
                os.close(target)

    def _blocks(self) -> Iterator[bytes]:
        position = 0
        while position < self.size:
            block = os.pread(self._fd, min(_COPY_BLOCK, self.size - position), position)
            if not block:
                raise OSError(errno.EIO, "staged chunk shorter than written")
            position += len(block)
            yield block


class FilesystemStorage(Storage):
    def __init__(self, directory: str, *, valid_duration: int, lock_timeout: float):
        self.directory = directory
        self.valid_duration = valid_duration
        self._uploads = os.path.join(directory, "uploads")
        self._locker = FileLocker(os.path.join(directory, "locks"), lock_timeout)
        os.makedirs(self._uploads, exist_ok=True)

    # -- paths ----------------------------------------------------------------------------

    def _dir(self, upload_id: str) -> str:
        if not _ID.match(upload_id):
            raise UploadNotFound()
        return os.path.join(self._uploads, upload_id[:2], upload_id)

    def data_path(self, upload_id: str) -> str:
        return os.path.join(self._dir(upload_id), "data")

    def _record_path(self, upload_id: str) -> str:
        return os.path.join(self._dir(upload_id), "info.json")

    # -- records --------------------------------------------------------------------------

    def new_id(self) -> str:
        return secrets.token_hex(16)

    def lock(  # type: ignore[no-untyped-def]
        self, upload_id: str, *, timeout: float | None = None, request_release: bool = False
    ):
        directory = self._dir(upload_id)  # validate before a lock file is named after it
        return self._hold(upload_id, directory, timeout, request_release)

    @contextmanager
    def _hold(
        self, upload_id: str, directory: str, timeout: float | None, request_release: bool
    ) -> Iterator[Lock]:
        with self._locker.hold(
            upload_id, timeout=timeout, request_release=request_release
        ) as lock:
            try:
                yield lock
            finally:
                if not os.path.isdir(directory):
                    # No such upload (an unknown id, or deleted): leave no lock file behind.
                    lock.discard()

    def chunk_writers(self, upload_id: str, *, exclusive: bool):  # type: ignore[no-untyped-def]
        self._dir(upload_id)
        return self._locker.hold(upload_id + _WRITERS, shared=not exclusive)

    def create(self, record: UploadRecord) -> None:
        directory = self._dir(record.upload_id)
        with _os_errors():
            os.makedirs(os.path.dirname(directory), exist_ok=True)
            try:
                os.mkdir(directory)
            except FileExistsError:
                if os.path.exists(self._record_path(record.upload_id)):
                    raise UploadExists() from None
                # a crash between mkdir and the record: reuse the directory
            with open(self.data_path(record.upload_id), "wb"):
                pass
            self.save(record)

    def load(self, upload_id: str, *, allow_expired: bool = False) -> UploadRecord:
        record = self._read(upload_id)
        if not allow_expired and self._expired(record, time.time()):
            raise UploadExpired(upload_id=upload_id)
        return record

    def _read(self, upload_id: str) -> UploadRecord:
        try:
            with open(self._record_path(upload_id), encoding="utf-8") as handle:
                return UploadRecord.from_json(json.load(handle))
        except FileNotFoundError:
            raise UploadNotFound() from None

    def _expired(self, record: UploadRecord, now: float) -> bool:
        """Past its own expiry and that of every unfinished upload waiting for it (``finals``)."""
        expires = record.expires_at(self.valid_duration)
        if expires is None or expires >= now:
            return False
        for waiting_id in record.finals:
            try:
                waiting = self._read(waiting_id)
            except UploadNotFound:
                continue
            if waiting.is_complete:
                continue  # assembled: it needs this one no more
            theirs = waiting.expires_at(self.valid_duration)
            if theirs is None or theirs >= now:
                return False
        return True

    def save(self, record: UploadRecord) -> None:
        path = self._record_path(record.upload_id)
        temporary = f"{path}.{secrets.token_hex(4)}.tmp"
        with _os_errors():
            try:
                with open(temporary, "w", encoding="utf-8") as handle:
                    json.dump(record.to_json(), handle, separators=(",", ":"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
            except FileNotFoundError:
                raise UploadNotFound() from None  # deleted under a caller without the lock
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)

    # -- data -----------------------------------------------------------------------------

    def write_at(self, upload_id: str, offset: int, blocks: Iterable[bytes]) -> int:
        with _os_errors():
            fd = _open_data(self.data_path(upload_id))
            try:
                return _write_blocks(fd, offset, blocks)
            finally:
                os.close(fd)

    @contextmanager
    def staged(self, upload_id: str, blocks: Iterable[bytes]) -> Iterator[StagedChunk]:
        # In the upload's directory (the data file's filesystem), unlinked at
        # once: only the descriptor holds it, so a crash leaves nothing behind.
        path = os.path.join(self._dir(upload_id), f"stage-{secrets.token_hex(8)}.tmp")
        with _os_errors():
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                raise UploadNotFound() from None
        try:
            os.unlink(path)
            with _os_errors():
                size = _write_blocks(fd, 0, blocks, durable=False)
            yield _StagedFile(self.data_path(upload_id), fd, size)
        finally:
            os.close(fd)

    def truncate(self, upload_id: str, size: int) -> None:
        with _os_errors():
            os.truncate(self.data_path(upload_id), size)

    def concatenate(self, upload_id: str, source_ids: list[str]) -> int:
        with _os_errors(), open(self.data_path(upload_id), "wb") as target:
            for source_id in source_ids:
                try:
                    with open(self.data_path(source_id), "rb") as source:
                        shutil.copyfileobj(source, target, _COPY_BLOCK)
                except FileNotFoundError:
                    raise UploadNotFound(f"partial upload {source_id} is gone") from None
            target.flush()
            os.fsync(target.fileno())
            return target.tell()

    def delete(self, upload_id: str, lock: Lock) -> None:
        shutil.rmtree(self._dir(upload_id), ignore_errors=True)
        with suppress(FileNotFoundError):
            # Nobody writes chunks of a deleted upload: its writers' lock file can go.
            os.unlink(self._locker.path_for(upload_id + _WRITERS))
        lock.discard()

    # -- expiry ---------------------------------------------------------------------------

    def cleanup(self) -> int:
        deleted = 0
        if self.valid_duration <= 0:
            return deleted
        now = time.time()
        for upload_id in self._all_ids():
            try:
                record = self.load(upload_id, allow_expired=True)
            except UploadNotFound:
                if self._orphan_is_stale(upload_id, now):
                    self._delete_orphan(upload_id)
                continue
            if self._expired(record, now):
                deleted += self.discard_expired(upload_id)
        return deleted

    def _all_ids(self) -> Iterator[str]:
        try:
            shards = os.listdir(self._uploads)
        except FileNotFoundError:
            return
        for shard in shards:
            try:
                names = os.listdir(os.path.join(self._uploads, shard))
            except (FileNotFoundError, NotADirectoryError):
                continue
            yield from (name for name in names if _ID.match(name))

    def _orphan_is_stale(self, upload_id: str, now: float) -> bool:
        """A directory without a record (a crash inside ``create``) older than the TTL."""
        try:
            return os.stat(self._dir(upload_id)).st_mtime + self.valid_duration < now
        except FileNotFoundError:
            return False

    def discard_expired(self, upload_id: str) -> bool:
        if self.valid_duration <= 0:
            return False
        try:
            with self.lock(upload_id, timeout=0) as lock:
                try:
                    self.load(upload_id)
                    return False  # touched meanwhile: alive again
                except UploadExpired:
                    # Chunk writes run without the lock: delete only if none is in flight.
                    with self._locker.hold(upload_id + _WRITERS, timeout=0):
                        self.delete(upload_id, lock)
                    return True
                except UploadNotFound:
                    return False  # gone already
        except UploadLocked:
            return False

    def _delete_orphan(self, upload_id: str) -> None:
        """Delete a directory without a record, unless a request holds it (inside ``create``)."""
        try:
            with self.lock(upload_id, timeout=0) as lock:
                if not os.path.exists(self._record_path(upload_id)):
                    self.delete(upload_id, lock)
        except UploadLocked:
            pass
