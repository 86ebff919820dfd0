"""The DataStore contract, run against every backend: FileData and S3Data (SeaweedFS).

Each test drives a store the way the protocols do: it creates the bytes,
appends or writes chunks, counts what the store accepted in the record (the
caller's part), assembles, and reads the file back.  Sizes cross S3's part
boundaries (8 MiB parts for appends, 5 MiB slots for chunks), since that is
where an object store differs from a file.
"""

from __future__ import annotations

import copy
import os
import random
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tus_filter.errors import ChecksumMismatch, UploadNotFound
from tus_filter.storage import ChunkLayout, DataStore, FileData, UploadRecord
from tus_filter.storage.s3 import S3Data

MIB = 1024 * 1024
PART = 8 * MIB  # S3Data's part size for appends of known, small lengths


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DataStore:
    if request.param == "file":
        return FileData(str(tmp_path / "files"))
    spool = tmp_path / "spool"
    spool.mkdir()
    return S3Data(
        request.getfixturevalue("s3_client"), bucket=request.getfixturevalue("s3_bucket"),
        prefix="up/loads", spool_dir=str(spool), max_size=None,
    )


def new(store: DataStore, length: int | None, protocol: str = "tus") -> UploadRecord:
    record = UploadRecord(upload_id=os.urandom(16).hex(), protocol=protocol, length=length)
    store.create(record)
    return record


def blocks(data: bytes, size: int = 256 * 1024 + 3) -> Iterator[bytes]:
    """``data`` in odd-sized blocks, the way a request body arrives."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def append(store: DataStore, record: UploadRecord, data: bytes | Iterable[bytes]) -> int:
    """Append as a protocol does: count what the store took in the offset."""
    came = store.append(record, blocks(data) if isinstance(data, bytes) else data)
    record.offset += came
    return came


def read(store: DataStore, record: UploadRecord) -> bytes:
    with store.open(record) as reader:
        return b"".join(iter(lambda: reader.read(MIB), b""))


def test_appends_of_odd_sizes_across_parts_read_back_identical(store: DataStore) -> None:
    payload = os.urandom(2 * PART + 12345)
    record = new(store, len(payload))
    cuts = [0, 1, PART - 2, PART + 3 * MIB + 7, 2 * PART, 2 * PART + 1, len(payload)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        assert append(store, record, payload[start:end]) == end - start
    store.assemble(record)
    store.assemble(record)  # idempotent
    assert read(store, record) == payload


def test_deferred_length_assembles_what_came(store: DataStore) -> None:
    payload = os.urandom(3 * MIB + 5)
    record = new(store, None)
    append(store, record, payload[:MIB])
    append(store, record, payload[MIB:])
    record.length = record.offset
    store.assemble(record)
    assert read(store, record) == payload


def test_empty_upload_is_an_empty_file(store: DataStore) -> None:
    record = new(store, 0)
    assert append(store, record, b"") == 0
    store.assemble(record)
    assert read(store, record) == b""


@pytest.mark.parametrize(
    "length, sizes",
    [
        pytest.param(0, [], id="empty"),
        pytest.param(PART, [PART], id="one-whole-part"),
        pytest.param(PART + 3, [PART, 3], id="a-part-and-a-bit"),
    ],
)
def test_an_append_reads_its_blocks_to_the_end(
    store: DataStore, length: int, sizes: list[int]
) -> None:
    """The caller learns that a body is whole only when its reader reaches the end."""
    ended = []

    def body() -> Iterator[bytes]:
        for size in sizes:
            yield b"x" * size
        ended.append(True)

    record = new(store, length)
    assert append(store, record, body()) == length
    assert ended == [True]


def failing_verify() -> None:
    raise ChecksumMismatch()


@pytest.mark.parametrize(
    "start, size",
    [
        pytest.param(MIB, MIB, id="inside-a-part"),
        pytest.param(MIB, PART + MIB, id="across-a-part-boundary"),
    ],
)
def test_an_append_whose_verify_fails_adds_nothing(
    store: DataStore, start: int, size: int
) -> None:
    payload = os.urandom(2 * PART + 100)
    record = new(store, len(payload))
    append(store, record, payload[:start])
    before = copy.deepcopy(record)
    garbage = os.urandom(size)
    with pytest.raises(ChecksumMismatch):
        store.append(record, blocks(garbage), verify=failing_verify)
    assert record == before
    append(store, record, payload[start:])
    store.assemble(record)
    assert read(store, record) == payload


def test_an_append_whose_blocks_raise_adds_nothing(store: DataStore) -> None:
    payload = os.urandom(PART + 3 * MIB)
    record = new(store, len(payload))
    append(store, record, payload[:MIB])
    before = copy.deepcopy(record)

    def broken() -> Iterator[bytes]:
        yield os.urandom(PART)  # fills the first part
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.append(record, broken())
    assert record == before
    append(store, record, payload[MIB:])
    store.assemble(record)
    assert read(store, record) == payload


def test_an_append_that_ends_early_keeps_what_came(store: DataStore) -> None:
    payload = os.urandom(PART + MIB)
    record = new(store, len(payload))
    assert append(store, record, payload[: PART + 10]) == PART + 10  # the client sent less
    assert record.offset == PART + 10
    append(store, record, payload[PART + 10 :])
    store.assemble(record)
    assert read(store, record) == payload


@pytest.mark.parametrize(
    "resent",
    [
        pytest.param([], id="in-one-append"),
        pytest.param([MIB // 2, PART // 2], id="in-appends-that-stage-pieces"),
    ],
)
def test_appends_after_an_assembly_whose_record_was_not_saved(
    store: DataStore, resent: list[int]
) -> None:
    """The request that assembled died (or lost its lock) before saving its record.

    The saved record is the one before that request: the client resends the
    bytes from its offset, and the upload completes with them.
    """
    payload = os.urandom(2 * PART + MIB)
    record = new(store, len(payload))
    append(store, record, payload[: PART - MIB])  # a part's worth less a staged piece
    saved = copy.deepcopy(record)
    append(store, record, payload[record.offset :])
    store.assemble(record)  # never saved
    record = saved
    for size in resent:
        append(store, record, payload[record.offset : record.offset + size])
    append(store, record, payload[record.offset :])  # the rest
    assert record.offset == len(payload)
    store.assemble(record)
    assert read(store, record) == payload


def chunked(store: DataStore, total: int, chunk_size: int) -> tuple[UploadRecord, ChunkLayout]:
    layout = ChunkLayout(total=total, chunk_size=chunk_size, count=max(1, total // chunk_size))
    record = new(store, total, protocol="flow")
    return record, layout


class Counter:
    """The caller's bookkeeping: count a chunk the store kept whole, then tell the store."""

    def __init__(self, store: DataStore, record: UploadRecord, layout: ChunkLayout):
        self.store, self.record, self.layout = store, record, layout
        self.received: set[int] = set()
        self._lock = threading.Lock()

    def write(self, index: int, data: bytes) -> int:
        came = self.store.write_chunk(self.record, self.layout, index, blocks(data))
        if came == self.layout.size(index):
            self.count(index)
        return came

    def count(self, index: int, *, tell: bool = True) -> None:
        with self._lock:
            self.received.add(index)
        if tell:
            self.store.chunk_counted(self.record, self.layout, index, self.received.__contains__)


def chunk_of(payload: bytes, layout: ChunkLayout, index: int) -> bytes:
    return payload[layout.start(index) : layout.start(index) + layout.size(index)]


@pytest.mark.parametrize(
    "total, chunk_size",
    [
        pytest.param(11 * MIB + 4321, MIB, id="small-chunks-grouped-in-slots"),
        pytest.param(2 * 5 * MIB + 3 * MIB, 5 * MIB, id="chunks-are-parts"),
    ],
)
def test_chunks_in_random_order_from_parallel_threads(
    store: DataStore, total: int, chunk_size: int
) -> None:
    payload = os.urandom(total)
    record, layout = chunked(store, total, chunk_size)
    counter = Counter(store, record, layout)
    order = list(range(layout.count))
    random.Random(8).shuffle(order)
    with ThreadPoolExecutor(4) as pool:
        sizes = list(pool.map(lambda i: counter.write(i, chunk_of(payload, layout, i)), order))
    assert sizes == [layout.size(i) for i in order]
    counter.write(order[0], chunk_of(payload, layout, order[0]))  # re-sent
    assert len(counter.received) == layout.count
    store.assemble(record, layout)
    store.assemble(record, layout)  # idempotent
    assert read(store, record) == payload


@pytest.mark.parametrize(
    "chunk_size", [pytest.param(MIB, id="staged-in-slots"), pytest.param(5 * MIB, id="parts")]
)
def test_chunks_after_an_assembly_whose_record_was_not_saved(
    store: DataStore, chunk_size: int
) -> None:
    """As for appends: the last chunk's request assembled, then died before saving.

    The saved record has every chunk but the last; the client resends it,
    and a copy of an earlier one.
    """
    payload = os.urandom(3 * 5 * MIB + 7)
    record, layout = chunked(store, len(payload), chunk_size)
    counter = Counter(store, record, layout)
    for i in range(layout.count):
        counter.write(i, chunk_of(payload, layout, i))
    saved = copy.deepcopy(record)
    store.assemble(record, layout)  # never saved
    counter = Counter(store, saved, layout)
    counter.received = set(range(layout.count - 1))
    assert counter.write(0, chunk_of(payload, layout, 0)) == layout.size(0)
    last = layout.count - 1
    assert counter.write(last, chunk_of(payload, layout, last)) == layout.size(last)
    store.assemble(saved, layout)
    assert read(store, saved) == payload


def test_a_chunk_of_the_wrong_size_is_never_counted(store: DataStore) -> None:
    payload = os.urandom(6 * MIB)
    record, layout = chunked(store, len(payload), MIB)
    counter = Counter(store, record, layout)
    assert counter.write(2, b"short") == 5
    assert 2 not in counter.received
    for i in range(layout.count):
        counter.write(i, chunk_of(payload, layout, i))
    if not store.capabilities.in_place_chunks:
        # Kept only whole: a short copy sent after the good one replaces nothing.
        assert store.write_chunk(record, layout, 2, [b"short"]) == 5
    store.assemble(record, layout)
    assert read(store, record) == payload


def test_chunk_blocks_are_read_to_the_end(store: DataStore) -> None:
    """The caller's reader checks a chunk's body (its size, its framing) at the end."""
    ended = []

    def body() -> Iterator[bytes]:
        yield b"x" * MIB
        ended.append(True)

    record, layout = chunked(store, 6 * MIB, MIB)
    assert store.write_chunk(record, layout, 0, body()) == MIB
    with store.stage(record, body()) as staged:
        assert staged.size == MIB
    assert ended == [True, True]


def test_staged_bytes_placed_as_a_chunk(store: DataStore) -> None:
    payload = os.urandom(6 * MIB + 10)
    record, layout = chunked(store, len(payload), MIB)
    counter = Counter(store, record, layout)
    for i in range(1, layout.count):
        counter.write(i, chunk_of(payload, layout, i))
    with store.stage(record, blocks(chunk_of(payload, layout, 0))) as staged:
        assert staged.size == MIB
        staged.place(layout, 0)
    counter.count(0)
    with store.stage(record, blocks(b"never placed")) as staged:
        assert staged.size == 12
    store.assemble(record, layout)
    assert read(store, record) == payload


def test_a_slot_built_early_and_one_left_for_assembly(store: DataStore) -> None:
    payload = os.urandom(12 * MIB)
    record, layout = chunked(store, len(payload), MIB)
    counter = Counter(store, record, layout)
    for i in range(layout.count):
        came = store.write_chunk(record, layout, i, blocks(chunk_of(payload, layout, i)))
        assert came == layout.size(i)
        # The first slot learns its chunks are all there; the last ones never hear of it.
        counter.count(i, tell=i < 5)
    store.assemble(record, layout)
    assert read(store, record) == payload


def assembled(store: DataStore, payload: bytes) -> UploadRecord:
    record = new(store, len(payload))
    append(store, record, payload)
    store.assemble(record)
    return record


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([5 * MIB, 5 * MIB + 1, 7], id="server-side-copy"),
        pytest.param([3, MIB, 0, 5], id="streamed-copy"),
        pytest.param([MIB, 2 * PART + 3, PART], id="streamed-copy-of-several-parts"),
        pytest.param([0, 0], id="empty"),
    ],
)
def test_concatenate_in_order(store: DataStore, sizes: list[int]) -> None:
    payloads = [os.urandom(size) for size in sizes]
    sources = [assembled(store, payload) for payload in payloads]
    final = new(store, None)
    order = sources + sources[:1]
    assert store.concatenate(final, order) == sum(sizes) + sizes[0]
    final.offset = final.length = sum(sizes) + sizes[0]
    store.assemble(final)  # as for every upload that completes
    assert store.concatenate(final, order) == final.length  # a retry after a lost save
    assert read(store, final) == b"".join(payloads + payloads[:1])


def test_concatenate_a_missing_source_is_not_found(store: DataStore) -> None:
    source = assembled(store, b"abc")
    store.discard(source)
    with pytest.raises(UploadNotFound):
        store.concatenate(new(store, None), [source])


def test_where_the_bytes_are(store: DataStore) -> None:
    record = assembled(store, b"hello")
    location = store.location(record)
    if store.capabilities.local_paths:
        assert store.local_path(record) == location
        assert Path(location).read_bytes() == b"hello"
    else:
        assert store.local_path(record) is None
        assert location.startswith("s3://") and location.endswith(f"/up/loads/{record.upload_id}")


def test_discard_removes_everything(store: DataStore) -> None:
    appended = new(store, 3 * PART)
    append(store, appended, os.urandom(PART + MIB))  # a part and a staged piece
    record, layout = chunked(store, 6 * MIB, MIB)
    Counter(store, record, layout).write(0, os.urandom(MIB))  # a staged chunk
    done = assembled(store, b"finished")
    for each in (appended, record, done):
        store.discard(each)
        store.discard(each)  # no error if gone
        with pytest.raises(UploadNotFound):
            store.open(each)


def test_sweep_removes_only_old_unknown_uploads(store: DataStore) -> None:
    orphan = new(store, 10)
    kept = new(store, 10)
    assert store.sweep(lambda upload_id: upload_id == kept.upload_id, max_age=3600) == 0
    assert store.sweep(lambda upload_id: upload_id == kept.upload_id, max_age=0) == 1
    append(store, kept, b"0123456789")
    store.assemble(kept)
    assert read(store, kept) == b"0123456789"
    with pytest.raises(UploadNotFound):
        append(store, orphan, b"0123456789")
