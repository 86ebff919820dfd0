"""Reading request bodies: a reader that can stop waiting for a stalled client."""

from __future__ import annotations

import io
import threading
import time

import pytest

from tests.support.tus import ThreadNotingBody
from tus_filter.errors import PayloadTooLarge
from tus_filter.streams import BLOCK_SIZE, BodyReader, Interruptible, is_buffered


class CountingStream(io.RawIOBase):
    """Endless zeros, counting reads; blocks forever once ``stall`` is set."""

    def __init__(self) -> None:
        self.reads = 0
        self.stall = threading.Event()
        self.unstall = threading.Event()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.stall.is_set():
            self.unstall.wait(10)
            return b""
        self.reads += 1
        return bytes(size if size and size > 0 else 1)


def test_blocks_pass_through_in_order() -> None:
    data = bytes(range(256)) * 4096
    body = Interruptible(BodyReader(io.BytesIO(data), len(data)), lambda: False)
    assert b"".join(body) == data
    assert not body.interrupted


def test_errors_of_the_reader_reach_the_caller() -> None:
    body = Interruptible(BodyReader(io.BytesIO(b"x" * 20), None, limit=10), lambda: False)
    with pytest.raises(PayloadTooLarge):
        list(body)


def test_stops_while_no_bytes_arrive() -> None:
    stream = CountingStream()
    stream.stall.set()
    stop = threading.Event()
    body = Interruptible(BodyReader(stream, 10 * BLOCK_SIZE), stop.is_set, poll=0.01)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    try:
        assert list(body) == []
        assert body.interrupted
        assert time.monotonic() - started < 1
    finally:
        stream.unstall.set()


def test_reads_at_most_two_blocks_ahead() -> None:
    """Never more than a couple of blocks in memory, however slow the writer."""
    stream = CountingStream()
    stop = threading.Event()
    body = iter(Interruptible(BodyReader(stream, 100 * BLOCK_SIZE), stop.is_set, poll=0.01))
    next(body)
    time.sleep(0.2)  # a slow write: the helper must not run ahead meanwhile
    assert stream.reads <= 3
    stop.set()
    assert list(body) == []


def test_a_buffered_body_is_read_without_a_helper_thread() -> None:
    data = bytes(3 * BLOCK_SIZE)
    stream = ThreadNotingBody(data)
    body = Interruptible(BodyReader(stream, len(data)), lambda: False, buffered=True)
    assert b"".join(body) == data
    assert stream.readers == {threading.current_thread().name}
    assert not body.interrupted


def test_a_buffered_body_still_stops_between_blocks() -> None:
    stream = ThreadNotingBody(bytes(10 * BLOCK_SIZE))
    stop = threading.Event()
    body = iter(Interruptible(BodyReader(stream, 10 * BLOCK_SIZE), stop.is_set, buffered=True))
    next(body)
    stop.set()
    assert list(body) == []
    assert stream.tell() == BLOCK_SIZE  # nothing more was read


@pytest.mark.parametrize(
    ("stream", "buffered"),
    [
        pytest.param(io.BytesIO(b"x"), True, id="bytes-in-memory"),
        pytest.param(CountingStream(), False, id="a-socket-like-stream"),
        pytest.param(object(), False, id="no-seekable-method"),
    ],
)
def test_is_buffered(stream: object, buffered: bool) -> None:
    assert is_buffered(stream) is buffered  # type: ignore[arg-type]
