"""Lockers of every backend, described by picklable values for child processes.

``LockerBackend("file", directory)`` or ``LockerBackend("redis", url,
namespace, ttl)``; ``backend.locker(timeout)`` is a context giving a
fresh :class:`~tus_filter.locking.Locker` and closing what it opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from tus_filter.locking import FileLocker, Locker
from tus_filter.redis_locking import RedisLocker


@dataclass(frozen=True)
class LockerBackend:
    kind: str  # "file" or "redis"
    where: str  # the lock directory, or the Redis URL
    namespace: str = ""
    ttl: float = 0.0  # Redis: the lock TTL

    @contextmanager
    def locker(self, timeout: float) -> Iterator[Locker]:
        if self.kind == "file":
            yield FileLocker(self.where, timeout)
            return
        client = redis.Redis.from_url(self.where)
        try:
            yield RedisLocker(client, namespace=self.namespace, timeout=timeout, ttl=self.ttl)
        finally:
            client.close()
