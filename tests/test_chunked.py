"""The chunk engine shared by flow.js, resumable.js and uid: layout and exactly-once completion."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tus_filter.backends import file_storage
from tus_filter.config import Settings
from tus_filter.errors import BadRequest, UploadNotFound
from tus_filter.incoming import UploadRequest
from tus_filter.protocols.base import Outcome, Protocol
from tus_filter.protocols.chunked import ChunkState, ChunkStore, UniformCut
from tus_filter.storage import ChunkLayout, UploadRecord


@pytest.mark.parametrize(
    ("total", "count", "sizes"),
    [
        pytest.param(9, 3, range(3, 5), id="9-in-3-cut-at-3-or-4"),
        pytest.param(10, 2, range(5, 10), id="10-in-2-cut-at-5-to-9"),
        pytest.param(10, 6, range(2, 2), id="10-in-6-no-cut"),
        pytest.param(10, 1, range(10, 11), id="one-chunk-is-the-file"),
        pytest.param(0, 1, range(1, 2), id="empty-file-one-empty-chunk"),
        pytest.param(0, 2, range(1, 0), id="empty-file-in-two-no-cut"),
    ],
)
def test_uniform_cut_sizes(total: int, count: int, sizes: range) -> None:
    assert list(UniformCut(total, count).sizes) == list(sizes)


def test_every_client_cut_is_recognised_from_each_of_its_chunks() -> None:
    """Exhaustive for small files: a client cutting at S sends ceil(total / S) chunks."""
    for total in range(0, 40):
        for size in range(1, 42):
            count = max(1, -(-total // size))
            cut = UniformCut(total, count)
            pinned = size if count > 1 else cut.sizes[0]
            chunks = [min(size, total - i * size) for i in range(count)] if total else [0]
            assert sum(chunks) == total
            for index, length in enumerate(chunks):
                assert cut.size_of(index, length) == pinned, (total, size, index)
                assert cut.layout(pinned).size(index) == length


@pytest.mark.parametrize(
    ("cut", "index", "length"),
    [
        pytest.param(UniformCut(9, 3), 0, 2, id="too-small-leaves-a-fourth-chunk"),
        pytest.param(UniformCut(9, 3), 1, 5, id="too-large-leaves-the-last-empty"),
        pytest.param(UniformCut(9, 3), 2, 2, id="last-chunk-between-cuts"),
        pytest.param(UniformCut(9, 3), 2, 0, id="empty-last-chunk"),
        pytest.param(UniformCut(10, 1), 0, 9, id="single-chunk-short"),
    ],
)
def test_a_chunk_of_no_uniform_cut_states_the_rule(
    cut: UniformCut, index: int, length: int
) -> None:
    with pytest.raises(BadRequest, match=rf"chunk {index} has {length} bytes: "):
        cut.size_of(index, length)


class Engine(Protocol):
    """The smallest protocol: only the engine is under test."""

    name = "uid"
    methods = ("POST",)

    def recognizes(self, request: UploadRequest) -> bool:
        raise AssertionError("not used")

    def handle(self, request: UploadRequest) -> Outcome:
        raise AssertionError("not used")


#: The request the engine's loads check ownership against (the default scope: "").
REQUEST = UploadRequest(
    {"REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO()}, "", "http://localhost/files"
)


@pytest.mark.parametrize(
    ("layout", "sizes"),
    [
        pytest.param(ChunkLayout(25, 10, 2), [10, 15], id="floor-last-chunk-up-to-2C-1"),
        pytest.param(ChunkLayout(25, 10, 3), [10, 10, 5], id="ceil-last-chunk-rest"),
        pytest.param(ChunkLayout(0, 10, 1), [0], id="empty-file"),
        pytest.param(ChunkLayout(9, 3, 3), [3, 3, 3], id="exact"),
    ],
)
def test_layout(layout: ChunkLayout, sizes: list[int]) -> None:
    assert [layout.size(i) for i in range(layout.count)] == sizes
    starts = [layout.start(i) for i in range(layout.count)]
    assert starts == [i * layout.chunk_size for i in range(layout.count)]


def test_chunk_bitmap() -> None:
    state = ChunkState()
    for index in (0, 9, 17, 9):
        state.add_chunk(index)
    assert [i for i in range(20) if state.has_chunk(i)] == [0, 9, 17]
    assert state.chunks_received() == 3
    record = UploadRecord(upload_id="a" * 32, protocol="flowjs", length=0)
    state.store(record)
    assert ChunkState.of(UploadRecord.from_json(record.to_json())).has_chunk(17)


def two_chunks(upload_id: str) -> UploadRecord:
    """A new uid upload of 4 bytes in 2 chunks."""
    record = UploadRecord(upload_id=upload_id, protocol="uid", length=4)
    ChunkState(chunk_size=2, chunk_count=2).store(record)
    return record


def engine(tmp_path: Path, lock_timeout: float = 5) -> tuple[ChunkStore, UploadRecord]:
    storage = file_storage(str(tmp_path), valid_duration=60, lock_timeout=lock_timeout)
    chunks = ChunkStore(Engine(Settings(tmp_file_dir=str(tmp_path)), storage))
    record = chunks.open(REQUEST, "ab" * 16, lambda: two_chunks("ab" * 16))
    return chunks, record


LAYOUT = ChunkLayout(4, 2, 2)


def test_completes_exactly_once_and_never_writes_afterwards(tmp_path: Path) -> None:
    chunks, record = engine(tmp_path)
    assert chunks.write(record, 1, LAYOUT, [b"cd"]).completed is None
    result = chunks.write(record, 0, LAYOUT, [b"ab"])
    assert result.complete and result.completed is not None
    path = Path(result.completed.path)
    again = chunks.write(record, 0, LAYOUT, [b"XX"])  # a late re-send with other bytes
    assert again.complete and again.completed is None
    assert path.read_bytes() == b"abcd"
    assert chunks.finish_if_complete(record.upload_id, LAYOUT).completed is None


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        pytest.param([b"a"], "has 1 bytes", id="short"),
        pytest.param([b"ab", b"c"], "larger than", id="long"),
    ],
)
def test_wrong_sized_chunk_is_not_marked(tmp_path: Path, blocks: list[bytes], message: str) -> None:
    chunks, record = engine(tmp_path)
    with pytest.raises(Exception, match=message):
        chunks.write(record, 0, LAYOUT, blocks)
    current = chunks.find(REQUEST, record.upload_id)
    assert current is not None and not ChunkState.of(current).has_chunk(0)


def test_completion_waits_for_a_chunk_write_in_flight(tmp_path: Path) -> None:
    chunks, record = engine(tmp_path)
    chunks.write(record, 0, LAYOUT, [b"ab"])
    started, release = threading.Event(), threading.Event()

    def slow_resend() -> Iterator[bytes]:
        yield b"a"
        started.set()
        release.wait(5)
        yield b"b"

    resend = threading.Thread(target=chunks.write, args=(record, 0, LAYOUT, slow_resend()))
    resend.start()
    assert started.wait(5)
    finisher = threading.Thread(target=chunks.write, args=(record, 1, LAYOUT, [b"cd"]))
    finisher.start()
    time.sleep(0.2)
    assert not chunks.find(REQUEST, record.upload_id).is_complete  # type: ignore[union-attr]
    release.set()
    resend.join(5)
    finisher.join(5)
    assert chunks.find(REQUEST, record.upload_id).is_complete  # type: ignore[union-attr]
    assert Path(chunks.storage.data.path_of(record.upload_id)).read_bytes() == b"abcd"


@pytest.mark.parametrize("cleanup", [
    pytest.param(True, id="a-sweep-meanwhile-deletes-nothing-then-restarted"),
    pytest.param(False, id="expired-then-restarted"),
])
def test_a_chunk_written_into_a_replaced_upload_is_not_counted(
    tmp_path: Path, cleanup: bool
) -> None:
    """The upload expired and started afresh while a chunk was being written.

    The chunk's bytes went into the old file (truncated by the restart):
    counting it in the new upload would hand on a file with a hole.  A sweep
    meanwhile does not delete an upload with a chunk write in flight.
    """
    chunks, record = engine(tmp_path)
    storage = chunks.storage

    def replaced_midway() -> Iterator[bytes]:
        yield b"ab"
        stale = storage.load(record.upload_id)
        stale.touched -= 3600
        storage.save(stale)
        if cleanup:
            assert storage.cleanup() == 0
        fresh = chunks.open(REQUEST, record.upload_id, lambda: two_chunks(record.upload_id))
        assert chunks.write(fresh, 1, LAYOUT, [b"cd"]).completed is None

    with pytest.raises(UploadNotFound):
        chunks.write(record, 0, LAYOUT, replaced_midway())
    current = chunks.find(REQUEST, record.upload_id)
    assert current is not None and not current.is_complete
    state = ChunkState.of(current)
    assert not state.has_chunk(0) and state.has_chunk(1)
    assert chunks.write(current, 0, LAYOUT, [b"ab"]).completed is not None  # the retry
    assert Path(storage.data.path_of(record.upload_id)).read_bytes() == b"abcd"
