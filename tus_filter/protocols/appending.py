"""Appending a request body at an upload's offset: shared by tus and the IETF draft.

Both protocols keep one offset per upload and append the body of a request
there, so they share the limits (``max_size``, the bytes left), the write
itself and the methods a 405 allows.  The caller of :func:`append_body`
holds the upload's lock and saves the record.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from typing import TYPE_CHECKING

from ..errors import BadRequest, ChecksumMismatch, PartlyStored, PayloadTooLarge
from ..incoming import UploadRequest
from ..locking import Lock
from ..storage import Storage, UploadRecord
from ..streams import BodyReader, Interruptible, is_buffered
from .tus_headers import Checksum

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("tus_filter")

#: ``Allow`` of a 405, on the collection and on an upload (the two protocols route alike).
COLLECTION_ALLOW = ["POST", "OPTIONS"]
UPLOAD_ALLOW = ["HEAD", "PATCH", "DELETE", "OPTIONS"]


def too_large(settings: Settings, length: int) -> bool:
    return settings.max_size is not None and length > settings.max_size


def room(settings: Settings, length: int | None, offset: int) -> int | None:
    """Bytes that may still be written: up to the length, or ``max_size`` if unknown."""
    if length is not None:
        return length - offset
    if settings.max_size is not None:
        return max(settings.max_size - offset, 0)
    return None


def append_body(
    settings: Settings,
    storage: Storage,
    request: UploadRequest,
    record: UploadRecord,
    lock: Lock,
    checksum: Checksum | None = None,
    *,
    new_length: int | None = None,
) -> bool:
    """Write the body at ``record.offset`` and update ``record``; return whether it was whole.

    ``lock`` is the upload's, held by the caller, who saves the record
    (but when the store fails after keeping some bytes: this saves them, then
    raises :class:`~tus_filter.errors.PartlyStored`, a 503).  The
    bytes that arrived count, even if the client went away early or a newer
    request asked for the lock (the write then stops at the next block, or
    while waiting for one), unless a checksum was given: then the chunk
    counts only if it is whole and its digest matches; otherwise the tail is
    cut off and the offset stays.  A body of unknown length (chunked) that
    runs past the room left is refused as a whole with 413.
    """
    length = new_length if new_length is not None else record.length
    left = room(settings, length, record.offset)
    declared = request.body_length
    if declared is not None and left is not None and declared > left:
        raise PayloadTooLarge("the body is larger than the bytes remaining")
    if checksum is not None and not checksum.can_match:
        raise ChecksumMismatch(
            f"Upload-Checksum: the digest has the wrong length for {checksum.algorithm}"
        )
    hasher = checksum.hasher() if checksum is not None else None
    reader = BodyReader(
        request.body,
        declared,
        limit=left if declared is None else None,
        hashers=(hasher,) if hasher is not None else (),
    )
    body = Interruptible(reader, lock.release_requested, buffered=is_buffered(request.body))

    verify = None
    if checksum is not None and hasher is not None:
        verify = functools.partial(_verify, checksum, hasher, reader, body)
    try:
        written = storage.data.append(record, body, verify=verify)
    except PartlyStored as failure:
        # The store failed after keeping the body's first bytes: count and
        # save them, so that the client's retry (after the 503) resumes there.
        _count(record, failure.appended, new_length)
        storage.save(record)
        raise
    complete = reader.complete and not body.interrupted
    _count(record, written, new_length)
    if not complete:
        log.info(
            "tus_filter: upload %s: body %s after %d of %s bytes",
            record.upload_id,
            "stopped for a newer request" if body.interrupted else "ended",
            written,
            declared,
        )
    return complete


def _verify(
    checksum: Checksum, hasher: hashlib._Hash, reader: BodyReader, body: Interruptible
) -> None:
    """Raise unless the body came whole and its digest is the checksum's."""
    if not (reader.complete and not body.interrupted):
        raise BadRequest("the body ended early; the checksum cannot be verified")
    if not hmac.compare_digest(hasher.digest(), checksum.digest):
        raise ChecksumMismatch("Upload-Checksum does not match the body; the chunk was discarded")


def _count(record: UploadRecord, written: int, new_length: int | None) -> None:
    record.offset += written
    if new_length is not None:
        record.length = new_length
    record.touched = time.time()
