"""Redis failures as domain errors, for every module that talks to Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis.exceptions

from .errors import StorageUnavailable

# What a client may retry: Redis is down, restarting, unreachable or slow
# (redis-py counts authentication and "loading" errors as connection errors),
# in a failover (the node turned replica refuses writes), or out of memory.
TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)


@contextmanager
def redis_unavailable() -> Iterator[None]:
    """Raise :class:`StorageUnavailable` (503) for a transient Redis failure."""
    try:
        yield
    except TRANSIENT as error:
        raise StorageUnavailable() from error  # the cause is for logs, not for clients
