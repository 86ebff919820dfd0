"""What S3Data promises beyond the DataStore contract, against a real SeaweedFS.

Part numbers follow offsets, staged pieces outlive every record that needs
them, an outage is a 503 that the upload survives, memory stays bounded, and
the S3 requests an upload costs are counted (the manual quotes them).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
)

from tests.support.apps import sha256
from tests.support.services import S3_REGION
from tests.support.tus import Tus
from tus_filter.errors import PartlyStored, PayloadTooLarge, StorageUnavailable, UploadNotFound
from tus_filter.locking import FileLocker
from tus_filter.storage import ChunkLayout, FileRecords, Storage, UploadRecord
from tus_filter.storage.s3 import S3Data, _s3_errors

MIB = 1024 * 1024
PART = 8 * MIB


@pytest.fixture
def spool(tmp_path: Path) -> str:
    return str(tmp_path)


@pytest.fixture
def store(s3_client: Any, s3_bucket: str, spool: str) -> S3Data:
    return S3Data(s3_client, bucket=s3_bucket, prefix="up", spool_dir=spool, max_size=None)


@pytest.fixture
def requests(s3_client: Any) -> Iterator[Counter[str]]:
    """The S3 operations the client sends, by name (retries not counted)."""
    counted: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counted[model.name] += 1

    s3_client.meta.events.register("before-call.s3", count)
    yield counted
    s3_client.meta.events.unregister("before-call.s3", count)


def new(store: S3Data, length: int | None, protocol: str = "tus") -> UploadRecord:
    record = UploadRecord(upload_id=os.urandom(16).hex(), protocol=protocol, length=length)
    store.create(record)
    return record


def blocks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def append(store: S3Data, record: UploadRecord, data: bytes) -> None:
    record.offset += store.append(record, blocks(data))


def read(store: S3Data, record: UploadRecord) -> bytes:
    with store.open(record) as reader:
        return b"".join(iter(lambda: reader.read(MIB), b""))


def keys(client: Any, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def part_numbers(client: Any, bucket: str, record: UploadRecord) -> set[int]:
    parts = client.list_parts(
        Bucket=bucket, Key=f"up/{record.upload_id}", UploadId=record.data["upload"]
    )
    return {part["PartNumber"] for part in parts.get("Parts", [])}


@pytest.mark.parametrize(
    "length, max_size, part_size",
    [
        pytest.param(10, None, PART, id="small-length-8-MiB"),
        pytest.param(100 * 1024 * MIB, None, 10737419, id="large-length-10000-parts"),
        pytest.param(None, 1024 * MIB, PART, id="deferred-small-limit"),
        pytest.param(None, 200 * 1024 * MIB, 21474837, id="deferred-sized-for-the-limit"),
        pytest.param(None, None, 549755814, id="deferred-no-limit-5-TiB"),
    ],
)
def test_part_size_is_fixed_at_creation(
    s3_client: Any, s3_bucket: str, spool: str, length: int | None, max_size: int | None,
    part_size: int,
) -> None:
    store = S3Data(s3_client, bucket=s3_bucket, prefix="", spool_dir=spool, max_size=max_size)
    record = new(store, length)
    assert record.data["part_size"] == part_size
    assert -(-(length or max_size or 5 * 1024**4) // part_size) <= 10_000


def test_a_retried_append_replaces_its_part(
    store: S3Data, s3_client: Any, s3_bucket: str
) -> None:
    payload = os.urandom(PART + MIB)
    record = new(store, len(payload))
    append(store, record, payload[: 3 * MIB])
    saved = copy.deepcopy(record)
    append(store, record, payload[3 * MIB : PART + 10])  # fills part 1: never saved
    retry = saved
    append(store, retry, payload[3 * MIB : PART + 10])  # the client retries the same offset
    assert part_numbers(s3_client, s3_bucket, retry) == {1}
    append(store, retry, payload[PART + 10 :])
    store.assemble(retry)
    assert read(store, retry) == payload


def staged(client: Any, bucket: str, record: UploadRecord) -> list[str]:
    """The names of the upload's staged objects, without their random tokens."""
    prefix = f"up/.staging/{record.upload_id}/"
    return sorted(key[len(prefix) :].rsplit("-", 1)[0] for key in keys(client, bucket)
                  if key.startswith(prefix))


def test_a_piece_outlives_every_record_that_needs_it(
    store: S3Data, s3_client: Any, s3_bucket: str
) -> None:
    payload = os.urandom(2 * PART)
    record = new(store, len(payload))
    append(store, record, payload[:MIB])
    assert staged(s3_client, s3_bucket, record) == ["piece-0"]
    [[_, _, piece]] = record.data["pieces"]
    append(store, record, payload[MIB : PART + 5])  # part 1 holds the piece now
    assert record.data["garbage"] == [piece]
    assert piece in keys(s3_client, s3_bucket), "deleted before a saved record dropped it"
    append(store, record, payload[PART + 5 : PART + 9])  # the record that said so was saved
    assert staged(s3_client, s3_bucket, record) == [f"piece-{PART}", f"piece-{PART + 5}"]
    append(store, record, payload[PART + 9 :])
    store.assemble(record)
    assert keys(s3_client, s3_bucket) == [f"up/{record.upload_id}"]
    assert read(store, record) == payload


def test_a_request_that_lost_its_lock_never_overwrites_a_newer_piece(store: S3Data) -> None:
    payload = os.urandom(PART)
    record = new(store, len(payload))
    append(store, record, payload[:MIB])
    stale = copy.deepcopy(record)  # loaded by a request that stalls and loses its lock
    append(store, record, payload[MIB : 3 * MIB])  # the newer request's record is saved
    store.append(stale, blocks(os.urandom(MIB)))  # the stale one wakes up; its save will fail
    append(store, record, payload[3 * MIB :])
    store.assemble(record)
    assert read(store, record) == payload


class PartSpy:
    """Wraps ``store._upload_part``: counts uploads running at once, fails or delays some."""

    def __init__(self, store: S3Data, monkeypatch: pytest.MonkeyPatch,
                 fail: int | None = None, delay: float = 0.05):
        self._upload = store._upload_part
        self._lock = threading.Lock()
        self._fail = fail
        self._delay = delay
        self.running = 0
        self.most = 0
        monkeypatch.setattr(store, "_upload_part", self)

    def __call__(self, record: UploadRecord, number: int, *args: Any) -> str:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if number == self._fail:
                raise StorageUnavailable()
            time.sleep(self._delay)
            return self._upload(record, number, *args)
        finally:
            with self._lock:
                self.running -= 1


def test_an_append_uploads_several_parts_at_once(
    store: S3Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(store, monkeypatch)
    payload = os.urandom(6 * PART + 10)
    record = new(store, len(payload))
    append(store, record, payload)
    assert spy.most == 4
    assert len(record.data["parts"]) == 7 and all(record.data["parts"])  # the tail too
    store.assemble(record)
    assert read(store, record) == payload


def test_a_failed_part_stops_the_append_which_keeps_the_parts_before_it(
    store: S3Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = os.urandom(8 * PART)
    record = new(store, len(payload))
    append(store, record, payload[:MIB])  # a piece, which part 1 will hold
    [[_, _, piece]] = record.data["pieces"]
    taken = 0

    def counted(data: bytes) -> Iterator[bytes]:
        nonlocal taken
        for block in blocks(data, MIB):
            taken += len(block)
            yield block

    spy = PartSpy(store, monkeypatch, fail=3, delay=0.3)
    with pytest.raises(PartlyStored) as failure:
        store.append(record, counted(payload[MIB:]))
    assert spy.running == 0, "a part was still uploading after the append ended"
    assert taken <= 6 * PART, "the append read on after a part failed"
    assert failure.value.appended == 2 * PART - MIB  # parts 1 and 2, not 4 that came after 3
    assert len(record.data["parts"]) == 2 and record.data["pieces"] == []
    assert record.data["garbage"] == [piece]
    record.offset += failure.value.appended  # as the caller does, before it saves
    monkeypatch.undo()
    append(store, record, payload[record.offset :])
    store.assemble(record)
    assert read(store, record) == payload


@pytest.mark.parametrize(
    ("fail", "verify"),
    [
        pytest.param(1, None, id="the-first-part"),
        pytest.param(2, lambda: None, id="a-checksummed-body"),
    ],
)
def test_a_failed_append_that_stored_no_part_or_has_a_checksum_keeps_nothing(
    store: S3Data, monkeypatch: pytest.MonkeyPatch, fail: int, verify: Callable[[], None] | None
) -> None:
    payload = os.urandom(4 * PART)
    record = new(store, len(payload))
    before = copy.deepcopy(record)
    PartSpy(store, monkeypatch, fail=fail)
    with pytest.raises(StorageUnavailable) as failure:
        store.append(record, blocks(payload), verify=verify)
    assert not isinstance(failure.value, PartlyStored)
    assert record == before


def test_a_patch_that_s3_fails_mid_way_is_503_and_keeps_what_was_stored(
    make_tus: Callable[..., Tus], s3_endpoint: Any, s3_bucket: str, s3_credentials: None,
    redis_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tus = make_tus(storage=f"s3://{s3_bucket}/tus", s3_endpoint_url=s3_endpoint.url,
                   s3_region=S3_REGION, redis_url=redis_url)
    payload = os.urandom(4 * PART + 5)
    url = tus.create(len(payload))
    data = tus.filter.storage.data
    assert isinstance(data, S3Data)
    PartSpy(data, monkeypatch, fail=3)
    failed = tus.patch(url, 0, payload)
    assert failed.status_int == 503 and "Retry-After" in failed.headers, failed
    offset = int(tus.head(url).headers["Upload-Offset"])
    assert offset == 2 * PART
    monkeypatch.undo()
    done = tus.patch(url, offset, payload[offset:])
    assert done.headers["Upload-Offset"] == str(len(payload))
    [handoff] = tus.handoffs
    assert handoff["sha256"] == sha256(payload)


def test_a_streamed_copy_that_fails_gives_back_the_object_it_was_reading(
    store: S3Data, s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = []
    for size in (MIB, 6 * PART):  # a partial under 5 MiB: streamed, not copied server-side
        source = new(store, size)
        append(store, source, os.urandom(size))
        store.assemble(source)
        sources.append(source)
    bodies: list[Any] = []

    def keep_body(parsed: dict[str, Any], **_: Any) -> None:
        bodies.append(parsed["Body"])

    s3_client.meta.events.register("after-call.s3.GetObject", keep_body)
    PartSpy(store, monkeypatch, fail=1)  # seen while more parts are still to read
    try:
        with pytest.raises(StorageUnavailable):
            store.concatenate(new(store, None), sources)
    finally:
        s3_client.meta.events.unregister("after-call.s3.GetObject", keep_body)
    # (StreamingBody.close closes its urllib3 response, not itself.)
    assert bodies and all(body._raw_stream.closed for body in bodies)


def test_bytes_beyond_the_length_add_nothing(store: S3Data) -> None:
    record = new(store, 10)
    before = copy.deepcopy(record)
    with pytest.raises(PayloadTooLarge):
        store.append(record, [b"0123456789", b"!"])
    assert record == before


def test_discard_leaves_the_bucket_empty(store: S3Data, s3_client: Any, s3_bucket: str) -> None:
    appended = new(store, 3 * PART)
    append(store, appended, os.urandom(PART + MIB))
    record = new(store, 6 * MIB, protocol="flow")
    layout = ChunkLayout(total=6 * MIB, chunk_size=MIB, count=6)
    assert store.write_chunk(record, layout, 3, blocks(os.urandom(MIB))) == MIB
    assert len(keys(s3_client, s3_bucket)) == 2
    store.discard(appended)
    store.discard(record)
    assert keys(s3_client, s3_bucket) == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_sweep_removes_a_chunk_that_arrived_after_its_upload_went(
    store: S3Data, s3_client: Any, s3_bucket: str
) -> None:
    record = new(store, 6 * MIB, protocol="flow")
    layout = ChunkLayout(total=6 * MIB, chunk_size=MIB, count=6)
    s3_client.put_object(Bucket=s3_bucket, Key="up/.staging/not-an-id/x", Body=b"not ours")
    store.discard(record)
    assert store.write_chunk(record, layout, 2, blocks(os.urandom(MIB))) == MIB  # too late
    assert store.sweep(lambda upload_id: False, max_age=3600) == 0
    assert store.sweep(lambda upload_id: upload_id != record.upload_id, max_age=0) == 1
    assert keys(s3_client, s3_bucket) == ["up/.staging/not-an-id/x"]


def test_cleanup_leaves_nothing_of_expired_uploads_and_crashed_creations(
    store: S3Data, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    storage = Storage(
        FileRecords(str(tmp_path / "records")), store,
        FileLocker(str(tmp_path / "locks"), 1), valid_duration=1,
    )
    expired = UploadRecord(upload_id=storage.new_id(), protocol="tus", length=3 * PART)
    storage.create(expired)
    with storage.lock(expired.upload_id):
        expired.offset += store.append(expired, blocks(os.urandom(PART + MIB)))
        expired.touched -= 60
        storage.save(expired)
    new(store, 10)  # bytes whose record was never stored
    time.sleep(1.5)  # older than valid_duration, to S3's one-second clock
    assert storage.cleanup() == 1
    assert keys(s3_client, s3_bucket) == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_a_chunk_written_late_for_an_earlier_upload_of_the_same_id_is_not_used(
    store: S3Data
) -> None:
    layout = ChunkLayout(total=6 * MIB, chunk_size=MIB, count=6)
    old = new(store, 6 * MIB, protocol="flow")
    store.discard(old)  # it expired; the client starts afresh under the same id
    fresh = UploadRecord(upload_id=old.upload_id, protocol="flow", length=6 * MIB)
    store.create(fresh)
    payload = os.urandom(6 * MIB)
    for i in range(layout.count):
        store.write_chunk(fresh, layout, i, blocks(payload[i * MIB : (i + 1) * MIB]))
    store.write_chunk(old, layout, 0, blocks(os.urandom(MIB)))  # a slow writer of the old one
    store.assemble(fresh, layout)
    assert read(store, fresh) == payload


def test_a_slot_part_is_built_when_its_last_chunk_is_counted(
    store: S3Data, s3_client: Any, s3_bucket: str
) -> None:
    payload = os.urandom(7 * MIB)
    record = new(store, len(payload), protocol="flow")
    layout = ChunkLayout(total=len(payload), chunk_size=MIB, count=7)
    received: set[int] = set()
    for i in (4, 0, 1, 2, 3, 5):
        store.write_chunk(record, layout, i, blocks(payload[i * MIB : (i + 1) * MIB]))
        received.add(i)
        store.chunk_counted(record, layout, i, received.__contains__)
    assert part_numbers(s3_client, s3_bucket, record) == {1}  # chunks 0-4; chunk 6 is missing
    store.write_chunk(record, layout, 6, blocks(payload[6 * MIB :]))
    store.assemble(record, layout)
    assert keys(s3_client, s3_bucket) == [f"up/{record.upload_id}"]
    assert read(store, record) == payload


def test_memory_stays_within_a_few_blocks(store: S3Data) -> None:
    record = new(store, 2 * PART + 5)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        block = b"x" * (256 * 1024)
        record.offset += store.append(record, (block for _ in range(8 * 4 * 2)))
        record.offset += store.append(record, [b"12345"])
        store.assemble(record)
        with store.open(record) as reader:
            while reader.read(4 * MIB):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * MIB  # read(4 MiB) itself, one block and botocore's own


def test_an_outage_is_unavailable_and_the_upload_resumes(
    store: S3Data, s3_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payload = os.urandom(PART + MIB)
    record = new(store, len(payload))
    append(store, record, payload[: 3 * MIB])
    before = copy.deepcopy(record)
    s3_endpoint.stop()
    try:
        with pytest.raises(StorageUnavailable), caplog.at_level(logging.WARNING, "tus_filter"):
            store.append(record, blocks(payload[3 * MIB :]))
    finally:
        s3_endpoint.start()
    assert record == before
    assert "answering 503" in caplog.text
    retrying(lambda: append(store, record, payload[3 * MIB :]))  # as a client retries a 503
    store.assemble(record)
    assert read(store, record) == payload


def retrying(action: Callable[[], None], seconds: float = 20) -> None:
    """Run ``action`` until it does not raise StorageUnavailable (the server is still starting)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except StorageUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_refused_credentials_are_unavailable_not_absent(
    s3_endpoint: Any, s3_bucket: str, spool: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint.url, region_name="us-east-1",
        aws_access_key_id="nobody", aws_secret_access_key="wrong-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    store = S3Data(client, bucket=s3_bucket, prefix="", spool_dir=spool, max_size=None)
    record = UploadRecord(upload_id="a" * 32, protocol="tus", length=1)
    with caplog.at_level(logging.ERROR, "tus_filter"), pytest.raises(StorageUnavailable):
        store.open(record)
    assert "check the bucket and the credentials" in caplog.text


def test_a_missing_bucket_is_unavailable_not_absent(
    s3_client: Any, spool: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = S3Data(s3_client, bucket="no-such-bucket-here", prefix="", spool_dir=spool,
                   max_size=None)
    record = UploadRecord(upload_id="a" * 32, protocol="tus", length=1)
    with caplog.at_level(logging.ERROR, "tus_filter"), pytest.raises(StorageUnavailable):
        store.open(record)
    assert "check the bucket and the credentials" in caplog.text


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    "error, expected",
    [
        pytest.param(client_error("NoSuchKey", 404), UploadNotFound, id="no-such-key-is-absent"),
        pytest.param(client_error("NoSuchUpload", 404), UploadNotFound, id="no-such-upload"),
        pytest.param(client_error("404", 404), UploadNotFound, id="head-404"),
        pytest.param(client_error("AccessDenied", 403), StorageUnavailable,
                     id="access-denied-is-never-absent"),
        pytest.param(client_error("NoSuchBucket", 404), StorageUnavailable,
                     id="no-bucket-is-misconfiguration-not-absent"),
        pytest.param(client_error("SlowDown", 503), StorageUnavailable, id="slow-down"),
        pytest.param(client_error("Throttling", 400), StorageUnavailable, id="throttling-400"),
        pytest.param(client_error("InternalError", 500), StorageUnavailable, id="5xx"),
        pytest.param(client_error("Whatever", 502), StorageUnavailable, id="any-5xx"),
        pytest.param(EndpointConnectionError(endpoint_url="http://x"), StorageUnavailable,
                     id="connection-refused"),
        pytest.param(ConnectTimeoutError(endpoint_url="http://x"), StorageUnavailable,
                     id="timeout"),
        pytest.param(ReadTimeoutError(endpoint_url="http://x"), StorageUnavailable,
                     id="read-timeout"),
        pytest.param(IncompleteReadError(actual_bytes=1, expected_bytes=2), StorageUnavailable,
                     id="body-cut-short"),
        pytest.param(NoCredentialsError(), StorageUnavailable, id="no-credentials"),
        pytest.param(client_error("EntityTooSmall", 400), ClientError,
                     id="our-own-mistake-is-a-server-fault"),
    ],
)
def test_error_mapping(error: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected), _s3_errors("PutObject"):
        raise error


def tus_upload(store: S3Data, size: int, patch: int) -> None:
    record = new(store, size)
    payload = os.urandom(patch)
    while record.offset < size:
        append(store, record, payload[: size - record.offset])
    store.assemble(record)


def chunk_upload(store: S3Data, size: int, chunk: int) -> None:
    record = new(store, size, protocol="flow")
    layout = ChunkLayout(total=size, chunk_size=chunk, count=size // chunk)
    payload = os.urandom(chunk)
    received: set[int] = set()
    for i in range(layout.count):
        store.write_chunk(record, layout, i, blocks(payload))
        received.add(i)
        store.chunk_counted(record, layout, i, received.__contains__)
    store.assemble(record, layout)


@pytest.mark.parametrize(
    "upload, size, expected",
    [
        pytest.param(
            lambda store: tus_upload(store, 16 * MIB, PART), 16 * MIB,
            {"CreateMultipartUpload": 1, "UploadPart": 2, "CompleteMultipartUpload": 1,
             "ListObjectsV2": 1},
            id="tus-8-MiB-patches",
        ),
        pytest.param(
            lambda store: tus_upload(store, 16 * MIB, MIB), 16 * MIB,
            # Per 8 MiB part: 7 pieces put and read back, 1 part, 1 delete of the pieces.
            {"CreateMultipartUpload": 1, "PutObject": 14, "GetObject": 14, "UploadPart": 2,
             "DeleteObjects": 2, "CompleteMultipartUpload": 1, "ListObjectsV2": 1},
            id="tus-1-MiB-patches",
        ),
        pytest.param(
            lambda store: chunk_upload(store, 16 * MIB, MIB), 16 * MIB,
            # Per 5 MiB slot: 5 chunks put and read back, 1 part.
            {"CreateMultipartUpload": 1, "PutObject": 16, "GetObject": 16, "UploadPart": 4,
             "ListParts": 1, "CompleteMultipartUpload": 1, "ListObjectsV2": 1,
             "DeleteObjects": 1},
            id="flow-1-MiB-chunks",
        ),
        pytest.param(
            lambda store: chunk_upload(store, 16 * MIB, PART), 16 * MIB,
            {"CreateMultipartUpload": 1, "UploadPart": 2, "ListParts": 1,
             "CompleteMultipartUpload": 1, "ListObjectsV2": 1},
            id="flow-8-MiB-chunks",
        ),
    ],
)
def test_requests_per_upload(
    store: S3Data, requests: Counter[str], upload: Any, size: int, expected: dict[str, int]
) -> None:
    upload(store)
    assert dict(requests) == expected
