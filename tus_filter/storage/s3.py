"""S3 storage of upload bytes: one multipart upload per upload, parts at fixed offsets.

Keys below ``<prefix>/`` in the bucket::

    <id>                                 the assembled object (a multipart upload until then)
    .staging/<id>/piece-<start>-<token>  appended bytes shorter than a part, from <start>
    .staging/<id>/chunk-<index>-<tag>    a chunk smaller than a part, until its slot is built

S3 parts are immutable, at least 5 MiB (but the last) and at most 10,000 per
upload, so bytes reach their part in two ways:

  * **appends** (tus, the IETF draft): the part size is fixed at creation
    (8 MiB, or more so that 10,000 parts hold the length, or the size limit
    when the length is deferred), and part ``offset // part_size + 1`` holds
    the bytes at ``offset``: a retry, or a second host, replaces a part
    rather than adding one.  The bytes of a part that an append does not
    fill are staged as a *piece*, and the append that fills the part sends
    the pieces (read back) and its own bytes as one part.  An append that
    fills several parts uploads up to four at once;
  * **chunks** (flow.js, resumable.js, uid): a chunk of at least 5 MiB is a
    part of its own; smaller ones are grouped in *slots* of ``k`` consecutive
    chunks that make a part of at least 5 MiB, staged as objects until the
    slot is complete, when whoever counted its last chunk builds the part.

Everything the store must remember lives in ``record.data``, which the
caller saves atomically with the offset or the chunk bitmap: the multipart
upload id (``upload``), the part size (``part_size``), the ETags of the
appended parts (``parts``, part ``i + 1`` at index ``i``), the pieces of the
current part (``pieces``, ``[start, size, key]``), the pieces a part
now holds (``garbage``), deleted once a saved record says so, and whether
the object is complete (``assembled``).  A staged
object is deleted only when a saved record no longer needs it, so a change
the caller fails to save never loses a byte.

Bytes pass through a spool file in ``spool_dir`` (unlinked as it is made, so
always removed), never more than one block of them in memory per part in
flight.  botocore's
errors become domain errors in :func:`_s3_errors`.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import math
import os
import secrets
import tempfile
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from typing import Any, BinaryIO

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import PartlyStored, PayloadTooLarge, StorageUnavailable, UploadNotFound
from .base import Capabilities, ChunkLayout, DataStore, StagedChunk, valid_id
from .record import UploadRecord

log = logging.getLogger("tus_filter")

_MIB = 1024 * 1024
_BLOCK = _MIB  # the most bytes held in memory at once
_PART_MIN = 5 * _MIB  # S3's smallest part, but for the last one
_PART_MAX = 5 * 1024 * _MIB  # S3's largest part, and its largest copied range
_PARTS_MAX = 10_000
_APPEND_PART = 8 * _MIB  # @tus/s3-store's choice: few requests, little spooled
# Parts of one append uploading at once, and the spool bytes they may hold:
# sent one after another, a part waits for the store's answer to the one
# before it; a few at once keep the store busy (boto3's transfers send 10).
_PARTS_IN_FLIGHT = 4
_SPOOL_BUDGET = 4 * _APPEND_PART
_OBJECT_MAX = 5 * 1024 * 1024 * _MIB  # S3's largest object: a deferred length's worst case
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys

# Error codes that say the object or multipart upload does not exist.
_ABSENT = frozenset({"NoSuchKey", "NoSuchUpload", "NotFound", "404"})
# Answers that a retry will not change: the filter is misconfigured.  Never "absent".
_REFUSED = frozenset({
    "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "NoSuchBucket", "403",
})
# 4xx answers that mean "slow down" or "try again".
_TRANSIENT = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests",
    "RequestTimeout", "ServiceUnavailable", "InternalError",
})


@contextmanager
def _s3_errors(operation: str) -> Iterator[None]:
    """Map botocore's errors to domain errors (the one place that does).

    A missing object or multipart upload is :class:`UploadNotFound`; callers
    for whom absence is fine catch that.  Connection errors, timeouts, 5xx
    and throttling are :class:`StorageUnavailable` (the client retries); so
    is a refusal (access denied, no such bucket), which is logged as the
    misconfiguration it is and never taken for "absent".  Any other answer
    (a 4xx for a request this module got wrong) propagates as a server fault.
    """
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _ABSENT:
            raise UploadNotFound() from error
        if code in _REFUSED or status == 403:
            log.error("S3 refused %s (check the bucket and the credentials): %s", operation, error)
            raise StorageUnavailable() from error
        if status >= 500 or status == 429 or code in _TRANSIENT:
            log.warning("S3 %s failed, answering 503: %s", operation, error)
            raise StorageUnavailable() from error
        raise
    except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as error:
        log.error("S3 %s has no credentials: %s", operation, error)
        raise StorageUnavailable() from error
    except (BotoConnectionError, HTTPClientError, IncompleteReadError) as error:
        log.warning("S3 %s failed, answering 503: %s", operation, error)
        raise StorageUnavailable() from error


class _Blocks:
    """The caller's blocks, taken a bounded number of bytes at a time."""

    def __init__(self, blocks: Iterable[bytes]):
        self._blocks = iter(blocks)
        self._rest = memoryview(b"")
        self.taken = 0  # bytes given so far

    def take(self, limit: int) -> Iterator[memoryview]:
        """At most ``limit`` bytes, as they come; fewer once the blocks end."""
        while limit > 0:
            if not self._rest:
                block = next(self._blocks, None)
                if block is None:
                    return
                self._rest = memoryview(block)
                continue
            piece = self._rest[:limit]
            self._rest = self._rest[len(piece):]
            limit -= len(piece)
            self.taken += len(piece)
            yield piece


class _Range(io.RawIOBase):
    """``size`` bytes of a spool file from ``start``: a seekable request body for botocore."""

    def __init__(self, fd: int, start: int, size: int):
        self._fd = fd
        self._start = start
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._position, _BLOCK)
        if wanted <= 0:
            return 0
        # Straight into the caller's buffer: botocore reads every part twice
        # (its payload hash, then the send), so a copy here costs per byte.
        count = os.preadv(self._fd, [memoryview(buffer)[:wanted]], self._start + self._position)
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


class _Spool:
    """A scratch file, unlinked since it was made: bytes on their way to or from S3."""

    def __init__(self, fd: int):
        self._fd = fd

    def write(self, position: int, blocks: Iterable[bytes | memoryview]) -> int:
        """Write ``blocks`` from ``position``; return how many bytes were written."""
        written = 0
        for block in blocks:
            view = memoryview(block)
            while view:
                count = os.pwrite(self._fd, view, position + written)
                written += count
                view = view[count:]
        return written

    def body(self, start: int, size: int) -> _Range:
        return _Range(self._fd, start, size)


def _object_blocks(body: Any, operation: str) -> Generator[bytes, None, None]:
    """A GetObject body, a block at a time, closed at the end (errors mapped)."""
    try:
        while True:
            with _s3_errors(operation):
                block = body.read(_BLOCK)
            if not block:
                return
            yield block
    finally:
        body.close()


class _ObjectReader(io.RawIOBase):
    """A streaming reader of an object (:meth:`S3Data.open`), errors mapped."""

    def __init__(self, body: Any):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _s3_errors("GetObject"):
            data = self._body.read(min(len(buffer), _BLOCK))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _PartSender:
    """The parts of one append, uploaded a few at once from regions of its spool.

    A region is ``part_size`` bytes of the spool; there are as many as parts
    may be in flight (:data:`_SPOOL_BUDGET` bounds their bytes, but one is
    always allowed).  :meth:`region` gives the next part's region, waiting
    for the oldest upload first when every region is in use, and raises the
    error of any upload that failed, so a broken append stops reading its
    body.  Leaving the ``with`` block waits for every upload still running:
    no part of the append is sent after the request has moved on (to give
    up its lock, say).
    """

    def __init__(self, store: S3Data, record: UploadRecord, spool: _Spool, part_size: int):
        self._store = store
        self._record = record
        self._spool = spool
        self._part_size = part_size
        self._regions = max(1, min(_PARTS_IN_FLIGHT, _SPOOL_BUDGET // part_size))
        self._running: deque[tuple[int, Future[str]]] = deque()
        self._sent: list[tuple[int, str]] = []
        self._count = 0  # parts handed to send()

    def __enter__(self) -> _PartSender:
        # Threads of this append's own, started as parts come: a pool shared
        # by the process would not survive a fork (gunicorn --preload).
        self._pool = ThreadPoolExecutor(self._regions, thread_name_prefix="tus_filter-s3")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True)  # no more uploads than workers: each one has started

    def region(self) -> int:
        """The spool position of the next part's region, once no upload uses it."""
        while self._running and (
            len(self._running) == self._regions or self._running[0][1].done()
        ):
            self._collect()
        return (self._count % self._regions) * self._part_size

    def __len__(self) -> int:
        """How many parts were handed to :meth:`send`."""
        return self._count

    def send(self, number: int, region: int, size: int) -> None:
        """Start uploading ``size`` bytes of ``region`` as part ``number``."""
        future = self._pool.submit(
            self._store._upload_part, self._record, number, self._spool, size, region)
        self._running.append((number, future))
        self._count += 1

    def etags(self) -> list[tuple[int, str]]:
        """Wait for every upload; ``(part number, ETag)`` of each part sent, in order."""
        while self._running:
            self._collect()
        return self._sent

    def stored(self) -> list[tuple[int, str]]:
        """``(part number, ETag)`` of the parts stored so far, in order, up to the
        first one that failed or still runs (after the ``with`` block, none runs)."""
        while self._running and self._running[0][1].done() and (
            self._running[0][1].exception() is None
        ):
            self._collect()
        return self._sent

    def _collect(self) -> None:
        number, future = self._running[0]
        etag = future.result()  # the upload's error, if it failed
        self._running.popleft()
        self._sent.append((number, etag))


class _StagedObject(StagedChunk):
    """A staged chunk in a spool file; placed by :meth:`S3Data.write_chunk`."""

    def __init__(self, store: S3Data, record: UploadRecord, spool: _Spool, size: int):
        self._store = store
        self._record = record
        self._spool = spool
        self.size = size

    def place(self, layout: ChunkLayout, index: int) -> None:
        self._store._store_chunk(self._record, layout, index, self._spool)


class S3Data(DataStore):
    """Each upload's bytes in one S3 object, built as a multipart upload.

    ``client`` is a boto3 S3 client (thread-safe, shared); ``prefix`` has no
    leading or trailing ``/`` and may be empty; ``max_size`` sizes the parts
    of uploads whose length is deferred (``None``: S3's 5 TiB limit).
    """

    capabilities = Capabilities(local_paths=False, in_place_chunks=False)

    def __init__(
        self, client: Any, *, bucket: str, prefix: str, spool_dir: str, max_size: int | None
    ):
        self._client = client
        self._bucket = bucket
        self._root = f"{prefix}/" if prefix else ""
        self._spool_dir = spool_dir
        self._max_size = max_size

    # -- keys and requests ------------------------------------------------------------------

    def _key(self, upload_id: str) -> str:
        return self._root + valid_id(upload_id)

    def _staging(self, upload_id: str) -> str:
        return f"{self._root}.staging/{valid_id(upload_id)}/"

    def _piece_key(self, record: UploadRecord, start: int) -> str:
        # A fresh name each time: a request that lost its lock meanwhile (and
        # cannot save its record) never overwrites a piece a newer record lists.
        return f"{self._staging(record.upload_id)}piece-{start}-{secrets.token_hex(4)}"

    def _chunk_key(self, record: UploadRecord, index: int) -> str:
        # Named after the multipart upload too: a chunk still being written for
        # an upload that expired and started afresh under the same id (flow.js
        # and resumable.js ids come from the file) never lands in the new one.
        tag = hashlib.sha256(record.data["upload"].encode()).hexdigest()[:12]
        return f"{self._staging(record.upload_id)}chunk-{index}-{tag}"

    def _s3(self, operation: str, **params: Any) -> Any:
        """Call the client's ``operation`` (snake_case) on the bucket, errors mapped."""
        with _s3_errors(operation):
            return getattr(self._client, operation)(Bucket=self._bucket, **params)

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[Any]:
        """Every ``key`` item of a paginated listing, errors mapped."""
        pages = self._client.get_paginator(operation).paginate(Bucket=self._bucket, **params)
        with _s3_errors(operation):
            for page in pages:
                yield from page.get(key, [])

    def _upload_part(
        self, record: UploadRecord, number: int, spool: _Spool, size: int, start: int = 0
    ) -> str:
        """Upload ``size`` bytes of the spool from ``start`` as part ``number``; its ETag."""
        answer = self._s3(
            "upload_part", Key=self._key(record.upload_id), UploadId=record.data["upload"],
            PartNumber=number, Body=spool.body(start, size), ContentLength=size,
        )
        return str(answer["ETag"])

    def _put(self, key: str, spool: _Spool, start: int, size: int) -> None:
        self._s3("put_object", Key=key, Body=spool.body(start, size), ContentLength=size)

    def _fetch(self, key: str, spool: _Spool, position: int) -> None:
        """Copy object ``key`` into the spool at ``position``."""
        body = self._s3("get_object", Key=key)["Body"]
        with closing(_object_blocks(body, "GetObject")) as blocks:
            spool.write(position, blocks)

    def _delete(self, keys: list[str]) -> None:
        """Delete ``keys`` (missing ones are fine), in batches."""
        for first in range(0, len(keys), _DELETE_BATCH):
            batch = keys[first : first + _DELETE_BATCH]
            answer = self._s3(
                "delete_objects",
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            if answer.get("Errors"):
                log.warning("S3 DeleteObjects kept some keys: %s", answer["Errors"][:3])
                raise StorageUnavailable()

    def _delete_staged(self, upload_id: str) -> None:
        keys = [item["Key"] for item in self._pages(
            "list_objects_v2", "Contents", Prefix=self._staging(upload_id))]
        self._delete(keys)

    @contextmanager
    def _spool(self) -> Iterator[_Spool]:
        with tempfile.TemporaryFile(dir=self._spool_dir) as scratch:
            yield _Spool(scratch.fileno())

    # -- creation and appends ---------------------------------------------------------------

    def _append_part_size(self, total: int | None) -> int:
        bound = total if total is not None else (self._max_size or _OBJECT_MAX)
        return max(_APPEND_PART, math.ceil(bound / _PARTS_MAX))

    def create(self, record: UploadRecord) -> None:
        """Start the multipart upload and fix the part size of appends."""
        answer = self._s3("create_multipart_upload", Key=self._key(record.upload_id))
        record.data = {
            "upload": answer["UploadId"],
            "part_size": self._append_part_size(record.length),
            "parts": [],
            "pieces": [],
        }

    def append(
        self,
        record: UploadRecord,
        blocks: Iterable[bytes],
        *,
        verify: Callable[[], None] | None = None,
    ) -> int:
        """Stream ``blocks`` into parts; stage what is left short of a part as a piece.

        Parts filled here are uploaded as they fill (the part that reaches
        ``record.length`` too, however small); ``verify()`` runs before the
        last piece is staged and before ``record.data`` changes, so a failed
        check adds nothing (a part uploaded meanwhile is not in the record,
        and the next append replaces it).  When S3 fails mid-way, the parts
        stored before the failure are kept: :class:`PartlyStored` says how
        many bytes they hold (unless ``verify`` is given: a checksum counts
        the whole body or nothing).

        An upload whose object was assembled by a request that could not
        save its record (it died, or lost its lock, after completing the
        multipart upload) has no multipart upload and no pieces left, but
        its object holds every byte: the bytes the client sends again are
        counted (see :meth:`_count_resent`).
        """
        source = _Blocks(blocks)
        if record.data.get("assembled"):
            return self._count_resent(record, source, verify)
        try:
            return self._append(record, source, verify)
        except UploadNotFound:
            if record.length is None or not self._assembled(record, record.length):
                raise
            log.info("upload %s: assembled by a request that did not save it", record.upload_id)
            self._delete_staged(record.upload_id)  # pieces staged since: never needed
            return self._count_resent(record, source, verify)

    def _count_resent(
        self, record: UploadRecord, source: _Blocks, verify: Callable[[], None] | None
    ) -> int:
        """Count the blocks of an upload whose object is assembled already.

        They are bytes the client sent before, for the same offsets, to the
        request that assembled the object and then could not say so: they
        are not written again (an S3 object cannot change), only counted.
        """
        for _ in source.take((record.length or 0) - record.offset - source.taken):
            pass
        if next(source.take(1), None) is not None:
            raise PayloadTooLarge("the body is larger than the bytes remaining")
        if verify is not None:
            verify()
        record.data = {**record.data, "assembled": True}
        return source.taken

    def _append(
        self, record: UploadRecord, source: _Blocks, verify: Callable[[], None] | None
    ) -> int:
        data = copy.deepcopy(record.data)
        self._delete(data.pop("garbage", []))  # the saved record says they are in parts
        with self._spool() as spool:
            sender = _PartSender(self, record, spool, data["part_size"])
            try:
                with sender:
                    return self._send_parts(record, data, source, verify, spool, sender)
            except StorageUnavailable as error:
                stored = sender.stored()
                if verify is not None or not stored:
                    raise  # a checksum counts the whole body or nothing
                appended = self._keep_stored(record, stored)
                log.warning("upload %s: S3 failed after %d bytes were stored; they count",
                            record.upload_id, appended)
                raise PartlyStored(appended) from error

    def _keep_stored(self, record: UploadRecord, stored: list[tuple[int, str]]) -> int:
        """Add the ``stored`` parts to ``record.data``; return the bytes they add.

        ``stored`` are the first parts of the append, in order: the first
        one holds the pieces ``record.data`` lists, which become garbage (the
        garbage it listed before was deleted as the append began).
        """
        data = record.data
        end: int = stored[-1][0] * data["part_size"]
        if record.length is not None:
            end = min(end, record.length)
        record.data = {
            **data,
            "parts": _parts_with(data["parts"], stored),
            "pieces": [],
            "garbage": [key for _, _, key in data["pieces"]],
        }
        return end - record.offset

    def _send_parts(
        self,
        record: UploadRecord,
        data: dict[str, Any],
        source: _Blocks,
        verify: Callable[[], None] | None,
        spool: _Spool,
        sender: _PartSender,
    ) -> int:
        """Fill and send parts from ``source``, stage the rest as a piece, set ``record.data``."""
        part_size: int = data["part_size"]
        garbage: list[str] = []
        offset = record.offset
        while True:
            part_start = offset - offset % part_size
            part_end = part_start + part_size
            if record.length is not None:
                part_end = min(part_end, record.length)
            region = sender.region()
            if offset >= part_end:  # the upload's length: the blocks must end here
                came = 0
                if next(source.take(1), None) is not None:
                    raise PayloadTooLarge("the body is larger than the bytes remaining")
                break
            came = spool.write(region + offset - part_start, source.take(part_end - offset))
            if offset + came < part_end:
                break  # the blocks ended inside the part
            pieces: list[list[Any]] = data["pieces"]
            for start, _, key in pieces:
                self._fetch(key, spool, region + start - part_start)
            sender.send(part_start // part_size + 1, region, part_end - part_start)
            garbage += [key for _, _, key in pieces]
            data["pieces"] = []
            offset = part_end
        data["parts"] = _parts_with(data["parts"], sender.etags())
        if verify is not None:
            verify()
        if came:
            key = self._piece_key(record, offset)
            self._put(key, spool, region + offset - part_start, came)
            data["pieces"].append([offset, came, key])
            offset += came
        if garbage:
            data["garbage"] = garbage
        appended = offset - record.offset
        record.data = data
        return appended

    # -- chunks ------------------------------------------------------------------------------

    @staticmethod
    def _slot_chunks(layout: ChunkLayout) -> int:
        """How many consecutive chunks make one part (a slot): k of the module doc."""
        k = 1 if layout.chunk_size >= _PART_MIN else math.ceil(_PART_MIN / layout.chunk_size)
        return max(k, math.ceil(layout.count / _PARTS_MAX))

    def write_chunk(
        self, record: UploadRecord, layout: ChunkLayout, index: int, blocks: Iterable[bytes]
    ) -> int:
        """Spool the chunk; store it (as its part, or staged for its slot) only if complete."""
        with self._spool() as spool:
            came = spool.write(0, blocks)  # to their end, where the caller's reader checks them
            if came == layout.size(index):
                self._store_chunk(record, layout, index, spool)
        return came

    def _store_chunk(
        self, record: UploadRecord, layout: ChunkLayout, index: int, spool: _Spool
    ) -> None:
        size = layout.size(index)
        if self._slot_chunks(layout) == 1:
            try:
                self._upload_part(record, index + 1, spool, size)
            except UploadNotFound:
                # Assembled by a request that could not save its record: the
                # chunk is in the object already (see :meth:`append`).
                if not self._assembled(record, layout.total):
                    raise
        else:
            self._put(self._chunk_key(record, index), spool, 0, size)

    @contextmanager
    def stage(self, record: UploadRecord, blocks: Iterable[bytes]) -> Iterator[StagedChunk]:
        with self._spool() as spool:
            size = spool.write(0, blocks)
            yield _StagedObject(self, record, spool, size)

    def chunk_counted(
        self,
        record: UploadRecord,
        layout: ChunkLayout,
        index: int,
        received: Callable[[int], bool],
    ) -> None:
        """Build the chunk's slot part once every chunk of the slot is counted."""
        k = self._slot_chunks(layout)
        if k == 1:
            return  # the chunk is its part already
        slot = index // k
        if all(received(i) for i in self._slot_range(layout, slot, k)):
            try:
                self._build_slot(record, layout, slot, k)
            except UploadNotFound:
                # Its staged chunks went with an assembly whose record was not saved.
                if not self._assembled(record, layout.total):
                    raise

    @staticmethod
    def _slot_range(layout: ChunkLayout, slot: int, k: int) -> range:
        return range(slot * k, min((slot + 1) * k, layout.count))

    def _build_slot(self, record: UploadRecord, layout: ChunkLayout, slot: int, k: int) -> str:
        """Upload slot ``slot``'s part from its staged chunks; return its ETag."""
        chunks = self._slot_range(layout, slot, k)
        base = layout.start(chunks[0])
        with self._spool() as spool:
            for i in chunks:
                self._fetch(self._chunk_key(record, i), spool, layout.start(i) - base)
            size = layout.start(chunks[-1]) + layout.size(chunks[-1]) - base
            return self._upload_part(record, slot + 1, spool, size)

    # -- assembly ----------------------------------------------------------------------------

    def assemble(self, record: UploadRecord, layout: ChunkLayout | None = None) -> None:
        """Complete the multipart upload (a plain empty object for 0 bytes); idempotent.

        Appended: the pieces left become the last part.  Chunked: ListParts
        tells which slot parts are there with the right size; the others
        (left for assembly, or whose builder crashed) are built now.  Staged
        objects are deleted once the object is complete.  An upload whose
        object is complete already (concatenated, or assembled by a request
        that could not save its record) is left as it is.
        """
        if record.data.get("assembled"):
            return  # concatenated, or assembled by a request whose record was saved
        size = layout.total if layout is not None else record.offset
        try:
            if size == 0:
                self._complete_empty(record)
            elif layout is None:
                self._complete(record, self._appended_parts(record))
            else:
                self._complete(record, self._chunk_parts(record, layout))
        except UploadNotFound:
            if not self._assembled(record, size):
                raise
        self._delete_staged(record.upload_id)
        record.data = {**record.data, "assembled": True}

    def _appended_parts(self, record: UploadRecord) -> list[str]:
        parts: list[str] = list(record.data["parts"])
        pieces: list[list[Any]] = record.data["pieces"]
        if pieces:
            part_start: int = pieces[0][0]
            with self._spool() as spool:
                for start, _, key in pieces:
                    self._fetch(key, spool, start - part_start)
                part_size: int = record.data["part_size"]
                number = part_start // part_size + 1
                parts = parts[: number - 1]
                parts.append(self._upload_part(record, number, spool, record.offset - part_start))
        return parts

    def _chunk_parts(self, record: UploadRecord, layout: ChunkLayout) -> list[str]:
        k = self._slot_chunks(layout)
        stored: dict[tuple[int, int], str] = {}  # (number, size) -> ETag
        for part in self._pages(
            "list_parts", "Parts", Key=self._key(record.upload_id), UploadId=record.data["upload"]
        ):
            stored[(part["PartNumber"], part["Size"])] = part["ETag"]
        parts = []
        for slot in range(math.ceil(layout.count / k)):
            chunks = self._slot_range(layout, slot, k)
            size = layout.start(chunks[-1]) + layout.size(chunks[-1]) - layout.start(chunks[0])
            etag = stored.get((slot + 1, size))
            parts.append(etag if etag is not None else self._build_slot(record, layout, slot, k))
        return parts

    def _complete(self, record: UploadRecord, etags: list[str]) -> None:
        answer = self._s3(
            "complete_multipart_upload",
            Key=self._key(record.upload_id),
            UploadId=record.data["upload"],
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
            },
        )
        if "ETag" not in answer:
            # botocore turns a 200 with an <Error> body into a 500 (retried, then
            # StorageUnavailable); an answer without the object's ETag is no better.
            log.warning("S3 CompleteMultipartUpload answered without an ETag: %s", answer)
            raise StorageUnavailable()

    def _complete_empty(self, record: UploadRecord) -> None:
        # S3 cannot complete a multipart upload without parts: put an empty object.
        self._s3("put_object", Key=self._key(record.upload_id), Body=b"")
        self._abort(record.data["upload"], record.upload_id)

    def _abort(self, upload: str, upload_id: str) -> None:
        with suppress(UploadNotFound):
            self._s3("abort_multipart_upload", Key=self._key(upload_id), UploadId=upload)

    def _assembled(self, record: UploadRecord, size: int) -> bool:
        """Whether the assembled object is there with ``size`` bytes (an earlier assembly)."""
        try:
            answer = self._s3("head_object", Key=self._key(record.upload_id))
        except UploadNotFound:
            return False
        return int(answer["ContentLength"]) == size

    # -- concatenation -----------------------------------------------------------------------

    def concatenate(self, record: UploadRecord, sources: list[UploadRecord]) -> int:
        """Copy the sources' objects into parts, server-side when S3 allows it.

        UploadPartCopy needs every copied range but the last to be at least
        5 MiB: with such sources each one is copied in ranges of at most
        5 GiB; otherwise the bytes are streamed through the spool.
        Idempotent, like :meth:`assemble` (which does nothing after it).
        """
        sizes = []
        for source in sources:
            try:
                answer = self._s3("head_object", Key=self._key(source.upload_id))
            except UploadNotFound:
                raise UploadNotFound(f"partial upload {source.upload_id} is gone") from None
            sizes.append(int(answer["ContentLength"]))
        total = sum(sizes)
        try:
            if total == 0:
                self._complete_empty(record)
            else:
                self._complete(record, self._concatenated_parts(record, sources, sizes))
        except UploadNotFound:
            if not self._assembled(record, total):  # or an earlier call did it all
                raise
        record.data = {**record.data, "assembled": True}
        return total

    def _concatenated_parts(
        self, record: UploadRecord, sources: list[UploadRecord], sizes: list[int]
    ) -> list[str]:
        ranges = [
            (source, first, last)
            for source, size in zip(sources, sizes, strict=True)
            for first, last in _copy_ranges(size)
        ]
        if len(ranges) <= _PARTS_MAX and all(size >= _PART_MIN for size in sizes[:-1]):
            return [
                self._copy_part(record, number, source, first, last)
                for number, (source, first, last) in enumerate(ranges, 1)
            ]
        return self._stream_parts(record, sources, self._append_part_size(total=sum(sizes)))

    def _copy_part(
        self, record: UploadRecord, number: int, source: UploadRecord, first: int, last: int
    ) -> str:
        answer = self._s3(
            "upload_part_copy",
            Key=self._key(record.upload_id),
            UploadId=record.data["upload"],
            PartNumber=number,
            CopySource={"Bucket": self._bucket, "Key": self._key(source.upload_id)},
            CopySourceRange=f"bytes={first}-{last}",
        )
        return str(answer["CopyPartResult"]["ETag"])

    def _stream_parts(
        self, record: UploadRecord, sources: list[UploadRecord], part_size: int
    ) -> list[str]:
        """Download the sources in order and upload them again in parts of ``part_size``."""

        def blocks() -> Generator[bytes, None, None]:
            for source in sources:
                body = self._s3("get_object", Key=self._key(source.upload_id))["Body"]
                yield from _object_blocks(body, "GetObject")

        # Closed on the way out, also when an upload fails mid-way: the body
        # being read then goes back now, not whenever the garbage collector
        # gets to it (after its socket, maybe: an unclosed-socket warning).
        with closing(blocks()) as stream, self._spool() as spool, _PartSender(
            self, record, spool, part_size
        ) as sender:
            source = _Blocks(stream)
            while came := spool.write(region := sender.region(), source.take(part_size)):
                sender.send(len(sender) + 1, region, came)
            return [etag for _, etag in sender.etags()]

    # -- reading -----------------------------------------------------------------------------

    def open(self, record: UploadRecord) -> BinaryIO:
        body = self._s3("get_object", Key=self._key(record.upload_id))["Body"]
        return io.BufferedReader(_ObjectReader(body), _BLOCK)

    def location(self, record: UploadRecord) -> str:
        return f"s3://{self._bucket}/{self._key(record.upload_id)}"

    def local_path(self, record: UploadRecord) -> None:
        return None

    # -- removal -----------------------------------------------------------------------------

    def discard(self, record: UploadRecord) -> None:
        """Abort the multipart upload, delete the object and everything staged."""
        if "upload" in record.data:
            self._abort(record.data["upload"], record.upload_id)
        self._s3("delete_object", Key=self._key(record.upload_id))
        self._delete_staged(record.upload_id)

    def sweep(self, known: Callable[[str], bool], max_age: float) -> int:
        """Delete what uploads ``known`` denies left behind, once older than ``max_age``.

        Their multipart uploads (a crash between :meth:`create` and the
        record's first save), with their staged objects, and staged objects
        without a multipart upload (a chunk that arrived as its upload was
        removed).  Only keys of the shape this store makes count: other
        objects in the bucket are never touched.
        """
        cutoff = time.time() - max_age
        swept: set[str] = set()
        for upload in list(self._pages("list_multipart_uploads", "Uploads", Prefix=self._root)):
            upload_id = _id_or_none(upload["Key"][len(self._root) :])
            if upload_id is None or upload["Initiated"].timestamp() > cutoff or known(upload_id):
                continue
            self._abort(upload["UploadId"], upload_id)
            self._delete_staged(upload_id)
            swept.add(upload_id)
        staging = f"{self._root}.staging/"
        stale: dict[str, list[str]] = {}
        for item in self._pages("list_objects_v2", "Contents", Prefix=staging):
            upload_id = _id_or_none(item["Key"][len(staging) :].partition("/")[0])
            if upload_id is not None and item["LastModified"].timestamp() <= cutoff:
                stale.setdefault(upload_id, []).append(item["Key"])
        for upload_id, keys in stale.items():
            if upload_id not in swept and not known(upload_id):
                self._delete(keys)
                swept.add(upload_id)
        return len(swept)


def _parts_with(parts: list[str], sent: list[tuple[int, str]]) -> list[str]:
    """``parts`` (part ``i + 1``'s ETag at index ``i``) with each ``(number, ETag)`` of
    ``sent`` in its place, in order, dropping the parts after it."""
    for number, etag in sent:
        parts = parts[: number - 1] + [etag]
    return parts


def _id_or_none(name: str) -> str | None:
    """``name`` if it is an upload id (see :func:`valid_id`), else ``None``."""
    try:
        return valid_id(name)
    except UploadNotFound:
        return None


def _copy_ranges(size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges covering ``size`` bytes, as few as parts allow, of equal size."""
    if size == 0:
        return []
    count = math.ceil(size / _PART_MAX)
    step = math.ceil(size / count)
    return [(first, min(first + step, size) - 1) for first in range(0, size, step)]
