"""One exception hierarchy for everything that can go wrong with an upload.

Every error carries a default HTTP ``status``, a short machine ``code`` and a
human ``message``.  Storage raises the *domain* errors (``UploadNotFound``,
``UploadExpired``, ``UploadLocked``, ``StorageFull``...); protocols raise the
*request* errors (``BadRequest``, ``PayloadTooLarge``...).  Nothing renders an
error except :meth:`tus_filter.protocols.base.Protocol.error_response`, which
may map a class to another status for its client's retry table (resumable.js
retries a 413 a hundred times, so that protocol answers 400 instead).
"""

from __future__ import annotations


class TusFilterError(Exception):
    """Base class: an error with a suggested HTTP status."""

    status: int = 500
    code: str = "internal_error"
    default_message: str = "internal server error"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)


# -- domain errors raised by storage and locking ---------------------------------------------


class UploadNotFound(TusFilterError):
    status = 404
    code = "not_found"
    default_message = "upload not found"


class UploadExpired(UploadNotFound):
    """Past its expiry; still a kind of "not found" for code that does not care.

    ``upload_id`` names the expired upload, so that whoever catches the error
    can remove it at once (:meth:`~tus_filter.storage.Storage.discard_expired`).
    """

    status = 410
    code = "expired"
    default_message = "upload expired"

    def __init__(self, message: str | None = None, *, upload_id: str | None = None):
        super().__init__(message)
        self.upload_id = upload_id


class UploadLocked(TusFilterError):
    """The per-upload lock could not be taken within ``lock_timeout``: retryable."""

    status = 423
    code = "locked"
    default_message = "upload is locked by another request, retry later"


class UploadIncomplete(TusFilterError):
    """Raised by :meth:`TusFilter.get_upload` for an upload still in progress."""

    status = 409
    code = "incomplete"
    default_message = "upload is not complete"


class StorageFull(TusFilterError):
    status = 507
    code = "storage_full"
    default_message = "no space left for uploads"


class StorageUnavailable(TusFilterError):
    """A transient failure of the object store or of Redis: the client retries.

    A timeout, a refused connection, a 5xx or throttling answer.  Answered
    503 with ``Retry-After``; nothing acknowledged before it is lost.
    """

    status = 503
    code = "storage_unavailable"
    default_message = "storage is unavailable, retry later"


class PartlyStored(StorageUnavailable):
    """The store failed after it had stored the first ``appended`` bytes of an append.

    Raised by :meth:`~tus_filter.storage.DataStore.append` (S3: the parts
    uploaded before the one that failed) with ``record.data`` saying so.  The
    caller counts the bytes and saves the record before answering 503, so
    the client's retry resumes after them.
    """

    def __init__(self, appended: int):
        super().__init__()
        self.appended = appended


# -- request errors raised by protocols -------------------------------------------------------


class BadRequest(TusFilterError):
    status = 400
    code = "bad_request"
    default_message = "bad request"


class Forbidden(TusFilterError):
    status = 403
    code = "forbidden"
    default_message = "forbidden"


class MethodNotAllowed(TusFilterError):
    status = 405
    code = "method_not_allowed"
    default_message = "method not allowed"

    def __init__(self, allowed: list[str], message: str | None = None):
        super().__init__(message, headers={"Allow": ", ".join(allowed)})


class OffsetConflict(TusFilterError):
    """``expected`` is the upload's offset, ``provided`` the request's (when known)."""

    status = 409
    code = "offset_mismatch"
    default_message = "Upload-Offset does not match the current offset"

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        expected: int | None = None,
        provided: int | None = None,
    ):
        super().__init__(message, headers=headers)
        self.expected = expected
        self.provided = provided


class InconsistentLength(BadRequest):
    """Two indications of an upload's length disagree (IETF draft)."""

    code = "inconsistent_length"
    default_message = "inconsistent length values for upload"


class AlreadyComplete(BadRequest):
    """Data sent to an upload that is already complete (IETF draft)."""

    code = "completed"
    default_message = "upload is already completed"


class PayloadTooLarge(TusFilterError):
    status = 413
    code = "too_large"
    default_message = "upload exceeds the maximum size"


class UnsupportedMediaType(TusFilterError):
    status = 415
    code = "unsupported_media_type"
    default_message = "unsupported content type"


class UnsupportedVersion(TusFilterError):
    status = 412
    code = "unsupported_version"
    default_message = "unsupported tus version"


class ChecksumMismatch(TusFilterError):
    status = 460
    code = "checksum_mismatch"
    default_message = "checksum mismatch"


class HookFailed(TusFilterError):
    """An application hook broke its contract (raised, or returned the wrong type).

    A server fault, logged with the details; the client learns only that.
    """

    status = 500
    code = "hook_failed"
    default_message = "the server's upload configuration failed"


class Reject(TusFilterError):
    """Raised by an application hook to refuse an upload or a termination.

    ``status`` must be a 4xx status; ``message`` reaches the client.
    """

    code = "rejected"

    def __init__(self, status: int, message: str):
        if not 400 <= status < 500:
            raise ValueError(f"Reject status must be 4xx, got {status}")
        self.status = status
        super().__init__(message)


class ConfigError(ValueError):
    """A bad option, raised at construction (``loadapp()``) time, never per request."""
