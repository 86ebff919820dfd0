"""Request bodies, read in fixed blocks: never a whole body in memory."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Protocol

from .errors import BadRequest, PayloadTooLarge

BLOCK_SIZE = 256 * 1024
#: How often a writer waiting for body bytes asks whether it should stop.
POLL_INTERVAL = 0.05


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


def body_length(environ: dict[str, Any]) -> int | None:
    """The declared body length; ``None`` when the body runs to EOF.

    A body without ``Content-Length`` is read to EOF only when the server says
    it is terminated (``wsgi.input_terminated``, set for chunked requests);
    otherwise PEP 3333 says it is empty.
    """
    raw = (environ.get("CONTENT_LENGTH") or "").strip()
    if raw:
        # ASCII digits only: int() also takes "١" (U+0661), and "²" passes isdigit() but not int().
        if not (raw.isascii() and raw.isdigit()):
            raise BadRequest("invalid Content-Length")
        return int(raw)
    return None if environ.get("wsgi.input_terminated") else 0


class BodyReader:
    """Iterate over at most ``length`` bytes of ``stream`` in blocks.

    * ``limit``: :class:`PayloadTooLarge` is raised as soon as the body is
      seen to be longer (callers check a declared length against the limit
      *before* reading, so this only fires for bodies of unknown length).
    * ``hashers`` are fed every byte yielded.
    * A client that disconnects early ends the iteration; ``complete`` then
      stays ``False`` and ``received`` says how much arrived.
    """

    def __init__(
        self,
        stream: IO[bytes],
        length: int | None,
        *,
        limit: int | None = None,
        hashers: tuple[Hasher, ...] = (),
    ):
        self._stream = stream
        self._length = length
        self._limit = limit
        self._hashers = hashers
        self.received = 0
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            wanted = BLOCK_SIZE
            if self._length is not None:
                wanted = min(wanted, self._length - self.received)
                if wanted == 0:
                    self.complete = True
                    return
            if self._limit is not None:
                wanted = min(wanted, self._limit - self.received + 1)
            try:
                block = self._stream.read(wanted)
            except OSError:
                return  # the client went away; what arrived so far stands
            if not block:
                self.complete = self._length is None
                return
            if self._limit is not None and self.received + len(block) > self._limit:
                raise PayloadTooLarge()
            self.received += len(block)
            for hasher in self._hashers:
                hasher.update(block)
            yield block


def is_buffered(stream: IO[bytes]) -> bool:
    """Whether the server received the whole body before calling the application.

    A seekable ``wsgi.input`` is a file or buffer of the server's (waitress
    spools every body before it calls the application), so reading it never
    waits for the client.  A socket stream (gunicorn) is not seekable.
    """
    seekable = getattr(stream, "seekable", None)
    try:
        return bool(seekable()) if callable(seekable) else False
    except (OSError, ValueError):  # closed, or a stream that cannot say
        return False


def drain(stream: IO[bytes], length: int | None) -> None:
    """Read and discard a body we do not need, so the connection can be reused."""
    for _ in BodyReader(stream, length):
        pass


class Interruptible:
    """Iterate ``blocks`` (a :class:`BodyReader`) on a helper thread, so waiting can be given up.

    Under a server that streams bodies (gunicorn), reading ``wsgi.input``
    blocks while the client sends nothing: a stalled client would keep the
    request, and the upload's lock, until a socket timeout.  Here a daemon
    thread reads, at most one block ahead of the caller (so at most three
    blocks are in memory), and the caller asks ``stop()`` before each block
    and every ``poll`` seconds while none arrives.  Once ``stop()`` says yes
    the iteration ends and ``interrupted`` is set; the helper drops the block
    it is reading when that read returns (a stalled client keeps it there
    until its connection closes) and never reads again.  Meanwhile the server
    may drain the rest of the body for keep-alive (gunicorn does, for up to
    five seconds); a read of both at once can only confuse that one client's
    connection, which the server then closes.  Errors raised by ``blocks``
    re-raise in the caller.

    ``buffered`` (see :func:`is_buffered`): the body is in the server's
    buffer already, so no read waits for the client; the blocks are then
    read in the caller's thread, asking ``stop()`` before each, and no
    helper thread is started.
    """

    def __init__(
        self, blocks: Iterable[bytes], stop: Callable[[], bool], *, poll: float = POLL_INTERVAL,
        buffered: bool = False,
    ):
        self._blocks = blocks
        self._buffered = buffered
        self._stop = stop
        self._poll = poll
        self._queue: queue.Queue[bytes | Exception | None] = queue.Queue(maxsize=1)
        self._abandoned = threading.Event()
        self.interrupted = False

    def __iter__(self) -> Iterator[bytes]:
        if self._buffered:
            yield from self._in_caller()
            return
        threading.Thread(target=self._pump, name="tus_filter-body", daemon=True).start()
        try:
            while (item := self._next()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self._abandoned.set()

    def _in_caller(self) -> Iterator[bytes]:
        blocks = iter(self._blocks)
        while not self._stop():
            block = next(blocks, None)
            if block is None:
                return
            yield block
        self.interrupted = True

    def _next(self) -> bytes | Exception | None:
        """The next block, an error, or ``None`` at the end or once stopped."""
        while True:
            if self._stop():
                self.interrupted = True
                return None
            try:
                return self._queue.get(timeout=self._poll)
            except queue.Empty:
                continue

    def _pump(self) -> None:
        try:
            for block in self._blocks:
                if not self._put(block):
                    return
        except Exception as error:  # handed to the caller, who raises it
            self._put(error)
            return
        self._put(None)

    def _put(self, item: bytes | Exception | None) -> bool:
        """Queue ``item`` unless the caller is gone; whether it was queued."""
        while not self._abandoned.is_set():
            try:
                self._queue.put(item, timeout=self._poll)
            except queue.Full:
                continue
            return True
        return False
