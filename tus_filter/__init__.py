"""tus_filter: resumable, chunked uploads for any WSGI application.

Architecture, outside in::

    filter.TusFilter      WSGI edge: pass-through, hand-off to the app, over one handler
    handler.UploadHandler match upload_path, pick a protocol, CORS (views call it directly)
    protocols.*           strategies (ietf, tus, uid, flowjs, resumablejs): parse, validate, answer
    storage.Storage       an upload's record, bytes and lock together; expiry (no HTTP in it)
      RecordStore         records: files (FileRecords) or Redis (storage.redis.RedisRecords)
      DataStore           bytes: a local file (FileData) or S3 multipart uploads (storage.s3.S3Data)
      Locker              locks: flock (locking.FileLocker) or Redis (redis_locking.RedisLocker)
    backends.open_storage settings -> Storage, checking at startup that its services answer
    handoff               calls the app once per completed upload, merges its answer

Errors are one hierarchy (:mod:`tus_filter.errors`) rendered by each protocol
in one place (``Protocol.error_response``).
"""

from .errors import (
    ConfigError,
    Reject,
    TusFilterError,
    UploadExpired,
    UploadIncomplete,
    UploadLocked,
    UploadNotFound,
)
from .filter import TusFilter
from .handler import UploadHandler, UploadResult
from .upload import Upload, UploadInfo

__all__ = [
    "ConfigError",
    "Reject",
    "TusFilter",
    "TusFilterError",
    "Upload",
    "UploadExpired",
    "UploadHandler",
    "UploadIncomplete",
    "UploadInfo",
    "UploadLocked",
    "UploadNotFound",
    "UploadResult",
]
