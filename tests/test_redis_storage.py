"""The Storage facade over Redis records and locks, with the bytes on (shared) disk."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tus_filter.redis_locking import RedisLocker
from tus_filter.storage import FileData, StaleRecord, Storage, UploadRecord
from tus_filter.storage.redis import RedisRecords

ID = "ab" * 16
TTL = 0.5


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
def storage(tmp_path: Path, client: redis.Redis, redis_namespace: str) -> Storage:
    return Storage(
        RedisRecords(client, namespace=redis_namespace),
        FileData(str(tmp_path)),
        RedisLocker(client, namespace=redis_namespace, timeout=1, ttl=TTL),
        valid_duration=60,
    )


def _until(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_nothing_is_saved_under_a_lost_lock(
    storage: Storage, client: redis.Redis, redis_namespace: str
) -> None:
    storage.create(UploadRecord(upload_id=ID, protocol="tus", length=10))
    with storage.lock(ID) as lock:
        loaded = storage.load(ID)
        client.delete(f"{redis_namespace}:lock:{ID}")  # expired under a stalled holder
        _until(lock.lost, within=TTL)
        with storage.lock(ID, timeout=0):  # the next holder moves the upload on
            newer = storage.load(ID)
            newer.offset = 4
            storage.save(newer)
        loaded.offset = 2
        with pytest.raises(StaleRecord):
            storage.save(loaded)
    assert storage.load(ID).offset == 4


def test_a_deleted_upload_leaves_no_directory(storage: Storage, tmp_path: Path) -> None:
    """The data store removes the upload's directory when no record file shares it."""
    storage.create(UploadRecord(upload_id=ID, protocol="tus", length=10))
    with storage.lock(ID) as lock:
        storage.delete(ID, lock)
    assert not (tmp_path / "uploads" / ID[:2] / ID).exists()
