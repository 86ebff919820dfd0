"""Upload records in Redis, for hosts that share no disk.

Below ``namespace`` ``N``::

    N:record:<id>   the record, as the JSON of UploadRecord.to_json
    N:records       the set of stored ids (for ids(), without KEYS or SCAN)

Creating and deleting change both keys in one Lua script.  Saving is a
compare-and-set on ``version`` (also in Lua): Redis locks can be lost (their
TTL ran out under a stalled holder), so a save checks that the stored record
is still the one that was loaded, and saves nothing otherwise
(:class:`~.base.StaleRecord`).  Transient Redis failures raise
:class:`~tus_filter.errors.StorageUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import redis

from ..errors import UploadNotFound
from ..redis_errors import redis_unavailable
from .base import RecordStore, StaleRecord, UploadExists, valid_id
from .record import UploadRecord

# KEYS: record, ids; ARGV: id, JSON.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: record; ARGV: the version loaded, JSON.  1 saved, 0 stale, -1 gone.
_SAVE = """
local stored = redis.call('GET', KEYS[1])
if not stored then
  return -1
end
if cjson.decode(stored)['version'] ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

# KEYS: record, ids; ARGV: id.
_DELETE = """
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


class RedisRecords(RecordStore):
    """Records as JSON strings in Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis, *, namespace: str):
        self.client = client
        self.namespace = namespace
        self._ids = f"{namespace}:records"
        self._create = client.register_script(_CREATE)
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)

    def _key(self, upload_id: str) -> str:
        return f"{self.namespace}:record:{valid_id(upload_id)}"

    def create(self, record: UploadRecord) -> None:
        key = self._key(record.upload_id)
        with redis_unavailable():
            created = self._create(
                keys=[key, self._ids], args=[record.upload_id, _dump(record)]
            )
        if not created:
            raise UploadExists()

    def load(self, upload_id: str) -> UploadRecord:
        key = self._key(upload_id)
        with redis_unavailable():
            stored = self.client.get(key)
        if stored is None:
            raise UploadNotFound()
        return UploadRecord.from_json(json.loads(stored))

    def exists(self, upload_id: str) -> bool:
        key = self._key(upload_id)
        with redis_unavailable():
            return bool(self.client.exists(key))

    def save(self, record: UploadRecord) -> None:
        """Replace the record if it is still ``record.version``; then count the save."""
        key = self._key(record.upload_id)
        loaded = record.version
        record.version += 1
        try:
            with redis_unavailable():
                saved = self._save(keys=[key], args=[loaded, _dump(record)])
        except BaseException:
            record.version = loaded
            raise
        if saved != 1:
            record.version = loaded
            raise UploadNotFound() if saved == -1 else StaleRecord()

    def delete(self, upload_id: str) -> None:
        key = self._key(upload_id)
        with redis_unavailable():
            self._delete(keys=[key, self._ids], args=[upload_id])

    def ids(self) -> Iterator[str]:
        with redis_unavailable():
            for member in self.client.sscan_iter(self._ids):
                text = member.decode() if isinstance(member, bytes) else member
                try:
                    yield valid_id(text)
                except UploadNotFound:
                    continue


def _dump(record: UploadRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))
