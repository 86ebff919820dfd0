"""The filesystem storage contract: ids, atomic records, positional writes, expiry."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tus_filter.errors import StorageFull, UploadExpired, UploadNotFound
from tus_filter.storage import COMPLETE, FilesystemStorage, UploadExists, UploadRecord


@pytest.fixture
def storage(tmp_path: Path) -> FilesystemStorage:
    return FilesystemStorage(str(tmp_path), valid_duration=60, lock_timeout=1)


def new(storage: FilesystemStorage, **fields: object) -> UploadRecord:
    record = UploadRecord(upload_id=storage.new_id(), protocol="tus", length=10, **fields)  # type: ignore[arg-type]
    storage.create(record)
    return record


def test_new_ids_are_128_bit_hex_and_distinct(storage: FilesystemStorage) -> None:
    ids = {storage.new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(upload_id) == 32 and int(upload_id, 16) >= 0 for upload_id in ids)


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("../" + "a" * 30, id="dot-dot"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("A" * 32, id="uppercase"),
        pytest.param("a" * 31, id="too-short"),
        pytest.param("a" * 33, id="odd-length"),
        pytest.param("a" * 31 + "\x00", id="nul"),
        pytest.param("", id="empty"),
        pytest.param("a" * 32 + "\n", id="trailing-newline"),
    ],
)
def test_foreign_ids_are_not_found_without_touching_disk(
    storage: FilesystemStorage, tmp_path: Path, bad_id: str
) -> None:
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UploadNotFound):
        storage.load(bad_id)
    with pytest.raises(UploadNotFound):
        storage.data_path(bad_id)
    with pytest.raises(UploadNotFound):
        storage.lock(bad_id)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_record_round_trip(storage: FilesystemStorage) -> None:
    record = new(storage, filename="ü.txt", metadata={"a": "b"})
    loaded = storage.load(record.upload_id)
    assert loaded == record
    assert os.path.getsize(storage.data_path(record.upload_id)) == 0


def test_create_is_exclusive(storage: FilesystemStorage) -> None:
    record = new(storage)
    with pytest.raises(UploadExists):
        storage.create(record)


def test_save_replaces_atomically_and_leaves_no_temporaries(storage: FilesystemStorage) -> None:
    record = new(storage)
    record.offset = 7
    storage.save(record)
    directory = Path(storage.data_path(record.upload_id)).parent
    assert sorted(p.name for p in directory.iterdir()) == ["data", "info.json"]
    assert json.loads((directory / "info.json").read_text())["offset"] == 7


def test_write_at_offsets_builds_the_file_out_of_order(storage: FilesystemStorage) -> None:
    record = new(storage)
    assert storage.write_at(record.upload_id, 5, [b"56", b"789"]) == 5
    assert storage.write_at(record.upload_id, 0, [b"01234"]) == 5
    assert Path(storage.data_path(record.upload_id)).read_bytes() == b"0123456789"


def test_write_keeps_what_arrived_before_an_error(storage: FilesystemStorage) -> None:
    record = new(storage)

    def broken():  # type: ignore[no-untyped-def]
        yield b"abc"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        storage.write_at(record.upload_id, 0, broken())
    assert Path(storage.data_path(record.upload_id)).read_bytes() == b"abc"


def test_staged_bytes_reach_the_data_file_only_when_placed(storage: FilesystemStorage) -> None:
    record = new(storage)
    storage.write_at(record.upload_id, 0, [b"0123456789"])
    directory = Path(storage.data_path(record.upload_id)).parent
    with storage.staged(record.upload_id, iter([b"ab", b"c"])) as chunk:
        assert chunk.size == 3
        assert sorted(path.name for path in directory.iterdir()) == ["data", "info.json"]
        assert Path(storage.data_path(record.upload_id)).read_bytes() == b"0123456789"
        chunk.place(4)
    assert Path(storage.data_path(record.upload_id)).read_bytes() == b"0123abc789"
    with storage.staged(record.upload_id, iter([b"never placed"])):
        pass
    assert Path(storage.data_path(record.upload_id)).read_bytes() == b"0123abc789"


def test_staging_that_fails_leaves_nothing(storage: FilesystemStorage) -> None:
    record = new(storage)

    def broken() -> Any:
        yield b"abc"
        raise OSError("client went away")

    with pytest.raises(OSError, match="went away"), storage.staged(record.upload_id, broken()):
        pass
    directory = Path(storage.data_path(record.upload_id)).parent
    assert sorted(path.name for path in directory.iterdir()) == ["data", "info.json"]
    with pytest.raises(UploadNotFound), storage.staged("0" * 32, iter([b"x"])):
        pass


def test_truncate_drops_an_unverified_tail(storage: FilesystemStorage) -> None:
    record = new(storage)
    storage.write_at(record.upload_id, 0, [b"0123456789"])
    storage.truncate(record.upload_id, 4)
    assert Path(storage.data_path(record.upload_id)).read_bytes() == b"0123"


def test_concatenate_in_order(storage: FilesystemStorage) -> None:
    parts = [new(storage), new(storage)]
    storage.write_at(parts[0].upload_id, 0, [b"hello "])
    storage.write_at(parts[1].upload_id, 0, [b"world"])
    final = new(storage)
    ids = [parts[1].upload_id, parts[0].upload_id, parts[1].upload_id]
    assert storage.concatenate(final.upload_id, ids) == 16
    assert Path(storage.data_path(final.upload_id)).read_bytes() == b"worldhello world"


def test_delete_removes_record_data_and_lock_file(
    storage: FilesystemStorage, tmp_path: Path
) -> None:
    record = new(storage)
    with storage.lock(record.upload_id) as lock:
        storage.delete(record.upload_id, lock)
    with pytest.raises(UploadNotFound):
        storage.load(record.upload_id)
    assert not any(tmp_path.glob("locks/*/*.lock"))


@pytest.mark.parametrize(
    "upload_id",
    [
        pytest.param("0123456789abcdef" * 2, id="never-created"),
        pytest.param("", id="deleted-by-another-holder"),  # "": a real upload, deleted first
    ],
)
def test_a_lock_on_no_upload_leaves_no_lock_file(
    storage: FilesystemStorage, tmp_path: Path, upload_id: str
) -> None:
    """A PATCH or DELETE of an unknown id must not leave a file behind for ever."""
    if not upload_id:
        upload_id = new(storage).upload_id
        with storage.lock(upload_id) as lock:
            storage.delete(upload_id, lock)
    with storage.lock(upload_id), pytest.raises(UploadNotFound):
        storage.load(upload_id)
    assert not any(tmp_path.glob("locks/*/*.lock"))


def test_write_at_closes_its_descriptor_when_sync_fails(
    storage: FilesystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = new(storage)
    opened: list[int] = []
    closed: list[int] = []
    real_open, real_close = os.open, os.close

    def recording_open(*args: Any, **kwargs: Any) -> int:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    def recording_close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    def failing_sync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(os, "close", recording_close)
    monkeypatch.setattr(os, "fdatasync", failing_sync)
    with pytest.raises(StorageFull):
        storage.write_at(record.upload_id, 0, [b"abc"])
    try:
        assert opened and opened[0] in closed
    finally:
        for fd in set(opened) - set(closed):
            real_close(fd)


def test_expired_uploads_raise_expired_then_get_cleaned(storage: FilesystemStorage) -> None:
    stale = new(storage)
    stale.touched = time.time() - 61
    storage.save(stale)
    fresh = new(storage)
    done = new(storage)
    done.status, done.completed = COMPLETE, time.time() - 61
    storage.save(done)
    with pytest.raises(UploadExpired):
        storage.load(stale.upload_id)
    assert storage.load(stale.upload_id, allow_expired=True).upload_id == stale.upload_id
    assert storage.cleanup() == 2
    with pytest.raises(UploadNotFound):
        storage.load(stale.upload_id, allow_expired=True)
    assert storage.load(fresh.upload_id)


def test_cleanup_skips_uploads_a_request_holds(storage: FilesystemStorage) -> None:
    stale = new(storage)
    stale.touched = time.time() - 61
    storage.save(stale)
    with storage.lock(stale.upload_id):
        assert storage.cleanup() == 0
    assert storage.cleanup() == 1


def test_no_expiry_when_duration_is_zero(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), valid_duration=0, lock_timeout=1)
    record = new(storage)
    record.touched = 0
    storage.save(record)
    assert storage.load(record.upload_id)
    assert storage.cleanup() == 0


def test_chunk_bitmap() -> None:
    record = UploadRecord(upload_id="a" * 32, protocol="flowjs", length=0)
    for index in (0, 9, 17, 9):
        record.add_chunk(index)
    assert [i for i in range(20) if record.has_chunk(i)] == [0, 9, 17]
    assert record.chunks_received() == 3
    assert UploadRecord.from_json(record.to_json()).has_chunk(17)
