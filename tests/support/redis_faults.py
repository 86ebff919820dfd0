"""Ways a Redis server fails, on a server of the test's own.

``broken_redis(directory, prepare)`` starts a Redis server, gives
``prepare(client)`` the chance to store something, breaks the server as
``FAULTS[name]`` says, and yields the client (which does not retry, so the
failure shows at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.services import RedisServer

Fault = Callable[[RedisServer, redis.Redis], object]

FAULTS: dict[str, Fault] = {
    "stopped": lambda server, client: server.stop(),
    # A failover demoted the node: it refuses writes.
    "failover": lambda server, client: client.execute_command("REPLICAOF", "127.0.0.1", "1"),
    "out-of-memory": lambda server, client: client.config_set("maxmemory", 1),
}


@contextmanager
def broken_redis(
    directory: Path, fault: str, prepare: Callable[[redis.Redis], object] = lambda client: None
) -> Iterator[redis.Redis]:
    server = RedisServer(directory)
    server.start()
    try:
        with redis.Redis.from_url(server.url, retry=Retry(NoBackoff(), 0)) as client:
            prepare(client)
            FAULTS[fault](server, client)
            yield client
    finally:
        server.stop()
