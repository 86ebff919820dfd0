"""Request bodies, read in fixed blocks: never a whole body in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Protocol

from .errors import BadRequest, PayloadTooLarge

BLOCK_SIZE = 256 * 1024


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


def drain(stream: IO[bytes], length: int | None) -> None:
    """Read and discard a body we do not need, so the connection can be reused."""
    for _ in BodyReader(stream, length):
        pass
