"""The RecordStore contract (tus_filter.storage.base), run against every record store.

Then what only a store whose locks can be lost does (the version check of
``save``), and Redis failures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support.redis_faults import FAULTS, broken_redis
from tus_filter.errors import StorageUnavailable, UploadNotFound
from tus_filter.storage import FileRecords, RecordStore, StaleRecord, UploadExists, UploadRecord
from tus_filter.storage.redis import RedisRecords

ID = "ab" * 16
OTHER = "cd" * 16


@pytest.fixture
def redis_records(redis_url: str, redis_namespace: str) -> Iterator[RedisRecords]:
    with redis.Redis.from_url(redis_url) as client:
        yield RedisRecords(client, namespace=redis_namespace)


@pytest.fixture(params=["file", "redis"])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> RecordStore:
    if request.param == "file":
        return FileRecords(str(tmp_path))
    store: RedisRecords = request.getfixturevalue("redis_records")
    return store


def record(upload_id: str = ID, **fields: object) -> UploadRecord:
    return UploadRecord(upload_id=upload_id, protocol="tus", length=10, **fields)  # type: ignore[arg-type]


def test_a_created_record_loads_as_it_was(records: RecordStore) -> None:
    created = record(
        filename="ü.txt", metadata={"a": "b"}, data={"parts": [1, "x"]}, state={"n": [None]}
    )
    records.create(created)
    assert records.exists(ID)
    assert records.load(ID) == created


def test_an_unknown_record_is_not_found(records: RecordStore) -> None:
    assert not records.exists(ID)
    with pytest.raises(UploadNotFound):
        records.load(ID)


def test_create_never_replaces(records: RecordStore) -> None:
    records.create(record(offset=1))
    with pytest.raises(UploadExists):
        records.create(record(offset=2))
    assert records.load(ID).offset == 1


def test_one_of_many_racing_creates_wins(records: RecordStore) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def create(offset: int) -> None:
        start.wait()
        try:
            records.create(record(offset=offset))
            outcomes.append(f"created {offset}")
        except UploadExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=create, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [outcome for outcome in outcomes if outcome != "exists"]
    assert len(winners) == 1 and len(outcomes) == 8
    assert winners == [f"created {records.load(ID).offset}"]


def test_save_replaces_the_record_and_counts_the_save(records: RecordStore) -> None:
    records.create(record())
    loaded = records.load(ID)
    loaded.offset = 7
    records.save(loaded)
    assert loaded.version == 1
    again = records.load(ID)
    assert (again.offset, again.version) == (7, 1)
    again.offset = 9
    records.save(again)
    assert (records.load(ID).offset, records.load(ID).version) == (9, 2)


def test_save_after_delete_is_not_found(records: RecordStore) -> None:
    records.create(record())
    loaded = records.load(ID)
    records.delete(ID)
    with pytest.raises(UploadNotFound):
        records.save(loaded)
    assert loaded.version == 0  # nothing counted
    assert not records.exists(ID)  # and nothing recreated


def test_delete_removes_the_record_and_is_idempotent(records: RecordStore) -> None:
    records.create(record())
    records.delete(ID)
    records.delete(ID)
    assert not records.exists(ID)
    with pytest.raises(UploadNotFound):
        records.load(ID)
    records.create(record())  # the id is free again


def test_ids_lists_the_stored_records(records: RecordStore) -> None:
    assert list(records.ids()) == []
    for upload_id in (ID, OTHER, "ef" * 32):
        records.create(record(upload_id))
    records.delete(OTHER)
    assert sorted(records.ids()) == sorted([ID, "ef" * 32])


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda store, bad: store.load(bad), id="load"),
        pytest.param(lambda store, bad: store.create(record(bad)), id="create"),
        pytest.param(lambda store, bad: store.save(record(bad)), id="save"),
        pytest.param(lambda store, bad: store.exists(bad), id="exists"),
        pytest.param(lambda store, bad: store.delete(bad), id="delete"),
    ],
)
@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("../" + "a" * 30, id="dot-dot"),
        pytest.param("A" * 32, id="uppercase"),
        pytest.param("a" * 32 + "*", id="glob"),
        pytest.param("a" * 32 + "\n", id="trailing-newline"),
    ],
)
def test_foreign_ids_are_not_found(
    records: RecordStore, operation: Callable[[RecordStore, str], object], bad_id: str
) -> None:
    with pytest.raises(UploadNotFound):
        operation(records, bad_id)
    assert list(records.ids()) == []


# -- what only Redis records do --------------------------------------------------------------------


def test_a_save_over_a_newer_record_is_stale(redis_records: RedisRecords) -> None:
    """Two holders loaded the same version (a lock expired under one): the second saves nothing."""
    redis_records.create(record())
    first, second = redis_records.load(ID), redis_records.load(ID)
    first.offset = 5
    redis_records.save(first)
    second.offset = 3
    with pytest.raises(StaleRecord):
        redis_records.save(second)
    assert second.version == 0
    stored = redis_records.load(ID)
    assert (stored.offset, stored.version) == (5, 1)


def test_namespaces_do_not_share_records(redis_url: str, redis_records: RedisRecords) -> None:
    with redis.Redis.from_url(redis_url) as client:
        elsewhere = RedisRecords(client, namespace=redis_records.namespace + "-other")
        redis_records.create(record())
        assert not elsewhere.exists(ID)
        assert list(elsewhere.ids()) == []
        elsewhere.create(record())  # no UploadExists


def test_a_client_that_decodes_replies_works_alike(
    redis_url: str, redis_namespace: str
) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        store = RedisRecords(client, namespace=redis_namespace)
        store.create(record(filename="ü.txt"))
        assert store.load(ID).filename == "ü.txt"
        assert list(store.ids()) == [ID]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda store: store.load(ID), id="load"),
        pytest.param(lambda store: store.create(record(OTHER)), id="create"),
        pytest.param(lambda store: store.save(record()), id="save"),
        pytest.param(lambda store: store.exists(ID), id="exists"),
        pytest.param(lambda store: store.delete(ID), id="delete"),
        pytest.param(lambda store: list(store.ids()), id="ids"),
    ],
)
def test_redis_down_is_unavailable(
    tmp_path: Path, operation: Callable[[RedisRecords], object]
) -> None:
    with broken_redis(tmp_path, "stopped", _stored) as client, pytest.raises(StorageUnavailable):
        operation(RedisRecords(client, namespace="t"))


def _stored(client: redis.Redis) -> None:
    RedisRecords(client, namespace="t").create(record())


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda store: store.create(record(OTHER)), id="create"),
        pytest.param(lambda store: store.save(store.load(ID)), id="save"),
    ],
)
def test_a_write_redis_refuses_is_unavailable(
    tmp_path: Path, write: Callable[[RedisRecords], object], fault: str
) -> None:
    with broken_redis(tmp_path, fault, _stored) as client, pytest.raises(StorageUnavailable):
        write(RedisRecords(client, namespace="t"))
