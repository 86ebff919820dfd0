"""Filesystem storage: one directory per upload, holding a JSON record and a data file.

Layout below ``tmp_file_dir``::

    uploads/<id[:2]>/<id>/info.json   the record (FileRecords), replaced atomically
    uploads/<id[:2]>/<id>/data        the bytes (FileData), written at offsets
    locks/<id[:2]>/<id>.lock          the upload's lock file (tus_filter.locking.FileLocker)

The data file is the assembled file from the start: tus appends land at
their offset, chunks are written in place at theirs (sparse while they
arrive), so completing an upload copies nothing.  Ids are checked by
:func:`~.base.valid_id` before a path is built, so no client string ever
reaches the filesystem.

Durability (the ``durability`` option): ``durable=True`` (``strict``) syncs
before a store method returns whatever a power cut must not take back:
written bytes (``fdatasync``), a record's new file (``fsync``) and the
directory entries a creation or rename changed (``fsync`` of the
directory).  ``durable=False`` (``relaxed``) leaves all of it in the page
cache for the kernel to write back (within about 30 seconds on Linux): it
survives the process, not the machine.  Records are replaced by rename in
both, so no reader ever sees half a record.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

from ..errors import StorageFull, UploadNotFound
from .base import (
    Capabilities,
    ChunkLayout,
    DataStore,
    RecordStore,
    StagedChunk,
    UploadExists,
    valid_id,
)
from .record import UploadRecord

_COPY_BLOCK = 1024 * 1024
_RECORD = "info.json"
_DATA = "data"


@contextmanager
def _os_errors() -> Iterator[None]:
    """Translate OS errors that mean something to a client into domain errors."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from error
        raise


def _sync_directories(*paths: str) -> None:
    """``fsync`` each directory, so the entries created or renamed in it survive a power cut."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Layout:
    """Paths below ``directory`` (shared by the record and the data store)."""

    def __init__(self, directory: str):
        self.uploads = os.path.join(directory, "uploads")
        os.makedirs(self.uploads, exist_ok=True)

    def sync_new_dir(self, upload_id: str) -> None:
        """Make the upload's directory, its shard and their entries durable (after a creation)."""
        directory = self.dir(upload_id)
        _sync_directories(directory, os.path.dirname(directory), self.uploads)

    def dir(self, upload_id: str) -> str:
        return os.path.join(self.uploads, upload_id[:2], valid_id(upload_id))

    def file(self, upload_id: str, name: str) -> str:
        return os.path.join(self.dir(upload_id), name)

    def ids(self) -> Iterator[str]:
        try:
            shards = os.listdir(self.uploads)
        except FileNotFoundError:
            return
        for shard in shards:
            try:
                names = os.listdir(os.path.join(self.uploads, shard))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                with suppress(UploadNotFound):
                    yield valid_id(name)


class FileRecords(RecordStore):
    """Records as ``info.json`` files, replaced by write, ``fsync``, rename and directory ``fsync``.

    :meth:`save` checks no version: ``flock`` locks are never lost.  With
    ``durable=False`` nothing is synced (see the module docstring).
    """

    def __init__(self, directory: str, *, durable: bool = True):
        self._paths = _Layout(directory)
        self._durable = durable

    def create(self, record: UploadRecord) -> None:
        path = self._paths.file(record.upload_id, _RECORD)
        with _os_errors():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temporary = self._write_temporary(path, record)
            try:
                os.link(temporary, path)  # fails if the name is taken: no record is replaced
            except FileExistsError:
                raise UploadExists() from None
            finally:
                os.unlink(temporary)
            if self._durable:
                self._paths.sync_new_dir(record.upload_id)

    def load(self, upload_id: str) -> UploadRecord:
        try:
            with open(self._paths.file(upload_id, _RECORD), encoding="utf-8") as handle:
                return UploadRecord.from_json(json.load(handle))
        except FileNotFoundError:
            raise UploadNotFound() from None

    def exists(self, upload_id: str) -> bool:
        return os.path.exists(self._paths.file(upload_id, _RECORD))

    def save(self, record: UploadRecord) -> None:
        path = self._paths.file(record.upload_id, _RECORD)
        record.version += 1
        with _os_errors():
            try:
                temporary = self._write_temporary(path, record)
            except FileNotFoundError:
                record.version -= 1
                raise UploadNotFound() from None  # deleted under a caller without the lock
            try:
                os.replace(temporary, path)
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(temporary)
            if self._durable:
                _sync_directories(os.path.dirname(path))  # the rename itself

    def _write_temporary(self, path: str, record: UploadRecord) -> str:
        temporary = f"{path}.{secrets.token_hex(4)}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(record.to_json(), handle, separators=(",", ":"))
                if self._durable:
                    handle.flush()
                    os.fsync(handle.fileno())
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return temporary

    def delete(self, upload_id: str) -> None:
        shutil.rmtree(self._paths.dir(upload_id), ignore_errors=True)

    def ids(self) -> Iterator[str]:
        return self._paths.ids()


def _write_blocks(fd: int, offset: int, blocks: Iterable[bytes], *, durable: bool) -> int:
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

    def __init__(self, data_path: str, fd: int, size: int, *, durable: bool):
        self._data_path = data_path
        self._fd = fd
        self._durable = durable
        self.size = size

    def place(self, layout: ChunkLayout, index: int) -> None:
        with _os_errors():
            target = _open_data(self._data_path)
            try:
                _write_blocks(target, layout.start(index), self._blocks(), durable=self._durable)
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


class FileData(DataStore):
    """Each upload's bytes in one local data file, which is also the assembled file.

    With ``durable=False`` nothing is synced (see the module docstring).
    """

    capabilities = Capabilities(local_paths=True, in_place_chunks=True)

    def __init__(self, directory: str, *, durable: bool = True):
        self._paths = _Layout(directory)
        self._durable = durable

    def path_of(self, upload_id: str) -> str:
        """The data file of ``upload_id`` (whether or not it exists)."""
        return self._paths.file(upload_id, _DATA)

    def _data(self, record: UploadRecord) -> str:
        return self.path_of(record.upload_id)

    def create(self, record: UploadRecord) -> None:
        path = self._data(record)
        with _os_errors():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb"):
                pass
            if self._durable:
                self._paths.sync_new_dir(record.upload_id)

    def append(
        self,
        record: UploadRecord,
        blocks: Iterable[bytes],
        *,
        verify: Callable[[], None] | None = None,
    ) -> int:
        start = record.offset
        path = self._data(record)
        with _os_errors():
            fd = _open_data(path)
            try:
                os.ftruncate(fd, start)  # drop a tail an earlier append did not keep
                try:
                    written = _write_blocks(fd, start, blocks, durable=self._durable)
                    if verify is not None:
                        verify()
                except BaseException:
                    os.ftruncate(fd, start)
                    raise
            finally:
                os.close(fd)
        return written

    def write_chunk(
        self, record: UploadRecord, layout: ChunkLayout, index: int, blocks: Iterable[bytes]
    ) -> int:
        with _os_errors():
            fd = _open_data(self._data(record))
            try:
                return _write_blocks(fd, layout.start(index), blocks, durable=self._durable)
            finally:
                os.close(fd)

    @contextmanager
    def stage(self, record: UploadRecord, blocks: Iterable[bytes]) -> Iterator[StagedChunk]:
        # In the upload's directory (the data file's filesystem), unlinked at
        # once: only the descriptor holds it, so a crash leaves nothing behind.
        path = self._paths.file(record.upload_id, f"stage-{secrets.token_hex(8)}.tmp")
        with _os_errors():
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                raise UploadNotFound() from None
        try:
            os.unlink(path)
            with _os_errors():
                size = _write_blocks(fd, 0, blocks, durable=False)
            yield _StagedFile(self._data(record), fd, size, durable=self._durable)
        finally:
            os.close(fd)

    def chunk_counted(
        self,
        record: UploadRecord,
        layout: ChunkLayout,
        index: int,
        received: Callable[[int], bool],
    ) -> None:
        """Nothing to prepare: the chunk is in its place already."""

    def assemble(self, record: UploadRecord, layout: ChunkLayout | None = None) -> None:
        """Nothing to assemble: the data file is the file."""

    def concatenate(self, record: UploadRecord, sources: list[UploadRecord]) -> int:
        with _os_errors(), open(self._data(record), "wb") as target:
            for source in sources:
                try:
                    with open(self._data(source), "rb") as data:
                        shutil.copyfileobj(data, target, _COPY_BLOCK)
                except FileNotFoundError:
                    raise UploadNotFound(f"partial upload {source.upload_id} is gone") from None
            if self._durable:
                target.flush()
                os.fsync(target.fileno())
            return target.tell()

    def open(self, record: UploadRecord) -> BinaryIO:
        try:
            return open(self._data(record), "rb")
        except FileNotFoundError:
            raise UploadNotFound() from None

    def location(self, record: UploadRecord) -> str:
        return self._data(record)

    def local_path(self, record: UploadRecord) -> str:
        return self._data(record)

    def discard(self, record: UploadRecord) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self._data(record))
        # The directory goes with the bytes, unless a record file still shares
        # it (FileRecords deletes it with the record; other records live elsewhere).
        try:
            os.rmdir(self._paths.dir(record.upload_id))
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise

    def sweep(self, known: Callable[[str], bool], max_age: float) -> int:
        deleted = 0
        now = time.time()
        for upload_id in self._paths.ids():
            directory = self._paths.dir(upload_id)
            try:
                stale = os.stat(directory).st_mtime + max_age < now
            except FileNotFoundError:
                continue
            if stale and not known(upload_id):
                shutil.rmtree(directory, ignore_errors=True)
                deleted += 1
        return deleted
