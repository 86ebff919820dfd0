"""Filesystem storage through the ``Storage`` facade: ids, atomic records, writes, expiry."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tus_filter.backends import file_storage
from tus_filter.errors import StorageFull, UploadExpired, UploadNotFound
from tus_filter.storage import COMPLETE, ChunkLayout, Storage, UploadExists, UploadRecord


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return file_storage(str(tmp_path), valid_duration=60, lock_timeout=1)


def path(storage: Storage, record: UploadRecord) -> str:
    local = storage.data.local_path(record)
    assert local is not None
    return local


def new(storage: Storage, **fields: object) -> UploadRecord:
    record = UploadRecord(upload_id=storage.new_id(), protocol="tus", length=10, **fields)  # type: ignore[arg-type]
    storage.create(record)
    return record


def test_new_ids_are_128_bit_hex_and_distinct(storage: Storage) -> None:
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
    storage: Storage, tmp_path: Path, bad_id: str
) -> None:
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UploadNotFound):
        storage.load(bad_id)
    with pytest.raises(UploadNotFound):
        storage.data.path_of(bad_id)  # type: ignore[attr-defined]
    with pytest.raises(UploadNotFound), storage.lock(bad_id):
        pass
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_record_round_trip(storage: Storage) -> None:
    record = new(storage, filename="ü.txt", metadata={"a": "b"})
    loaded = storage.load(record.upload_id)
    assert loaded == record
    assert os.path.getsize(path(storage, record)) == 0


def test_create_is_exclusive(storage: Storage) -> None:
    record = new(storage)
    with pytest.raises(UploadExists):
        storage.create(record)


def test_save_replaces_atomically_and_leaves_no_temporaries(storage: Storage) -> None:
    record = new(storage)
    record.offset = 7
    storage.save(record)
    directory = Path(path(storage, record)).parent
    assert sorted(p.name for p in directory.iterdir()) == ["data", "info.json"]
    assert json.loads((directory / "info.json").read_text())["offset"] == 7


def test_chunks_build_the_file_out_of_order(storage: Storage) -> None:
    record = new(storage)
    layout = ChunkLayout(10, 5, 2)
    assert storage.data.write_chunk(record, layout, 1, [b"56", b"789"]) == 5
    assert storage.data.write_chunk(record, layout, 0, [b"01234"]) == 5
    assert Path(path(storage, record)).read_bytes() == b"0123456789"


def test_an_append_that_fails_keeps_nothing(storage: Storage) -> None:
    record = new(storage)

    def broken():  # type: ignore[no-untyped-def]
        yield b"abc"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        storage.data.append(record, broken())
    assert Path(path(storage, record)).read_bytes() == b""
    assert record.offset == 0


def test_staged_bytes_reach_the_data_file_only_when_placed(storage: Storage) -> None:
    record = new(storage)
    storage.data.write_chunk(record, ChunkLayout(10, 10, 1), 0, [b"0123456789"])
    directory = Path(path(storage, record)).parent
    with storage.data.stage(record, iter([b"ab", b"c"])) as chunk:
        assert chunk.size == 3
        assert sorted(path.name for path in directory.iterdir()) == ["data", "info.json"]
        assert Path(path(storage, record)).read_bytes() == b"0123456789"
        chunk.place(ChunkLayout(10, 4, 3), 1)
    assert Path(path(storage, record)).read_bytes() == b"0123abc789"
    with storage.data.stage(record, iter([b"never placed"])):
        pass
    assert Path(path(storage, record)).read_bytes() == b"0123abc789"


def test_staging_that_fails_leaves_nothing(storage: Storage) -> None:
    record = new(storage)

    def broken() -> Any:
        yield b"abc"
        raise OSError("client went away")

    with pytest.raises(OSError, match="went away"), storage.data.stage(record, broken()):
        pass
    directory = Path(path(storage, record)).parent
    assert sorted(path.name for path in directory.iterdir()) == ["data", "info.json"]
    gone = UploadRecord(upload_id="0" * 32, protocol="tus", length=1)
    with pytest.raises(UploadNotFound), storage.data.stage(gone, iter([b"x"])):
        pass


def test_an_append_that_fails_verification_drops_its_tail(storage: Storage) -> None:
    record = new(storage)
    record.offset += storage.data.append(record, [b"0123"])

    def refuse() -> None:
        raise ValueError("checksum")

    with pytest.raises(ValueError, match="checksum"):
        storage.data.append(record, [b"456789"], verify=refuse)
    assert Path(path(storage, record)).read_bytes() == b"0123"


def test_concatenate_in_order(storage: Storage) -> None:
    parts = [new(storage), new(storage)]
    storage.data.append(parts[0], [b"hello "])
    storage.data.append(parts[1], [b"world"])
    final = new(storage)
    assert storage.data.concatenate(final, [parts[1], parts[0], parts[1]]) == 16
    assert Path(path(storage, final)).read_bytes() == b"worldhello world"


def test_delete_removes_record_data_and_lock_file(
    storage: Storage, tmp_path: Path
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
    storage: Storage, tmp_path: Path, upload_id: str
) -> None:
    """A PATCH or DELETE of an unknown id must not leave a file behind for ever."""
    if not upload_id:
        upload_id = new(storage).upload_id
        with storage.lock(upload_id) as lock:
            storage.delete(upload_id, lock)
    with storage.lock(upload_id), pytest.raises(UploadNotFound):
        storage.load(upload_id)
    assert not any(tmp_path.glob("locks/*/*.lock"))


def test_append_closes_its_descriptor_when_sync_fails(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
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
        storage.data.append(record, [b"abc"])
    try:
        assert opened and opened[0] in closed
    finally:
        for fd in set(opened) - set(closed):
            real_close(fd)


def test_expired_uploads_raise_expired_then_get_cleaned(storage: Storage) -> None:
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


def test_cleanup_skips_uploads_a_request_holds(storage: Storage) -> None:
    stale = new(storage)
    stale.touched = time.time() - 61
    storage.save(stale)
    with storage.lock(stale.upload_id):
        assert storage.cleanup() == 0
    assert storage.cleanup() == 1


def test_no_expiry_when_duration_is_zero(tmp_path: Path) -> None:
    storage = file_storage(str(tmp_path), valid_duration=0, lock_timeout=1)
    record = new(storage)
    record.touched = 0
    storage.save(record)
    assert storage.load(record.upload_id)
    assert storage.cleanup() == 0

