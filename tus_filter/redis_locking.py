"""Per-upload locks in Redis, for hosts that share no lock files.

The contract is :class:`tus_filter.locking.Locker`'s; this module keeps it
across hosts.  For a key ``K`` below ``namespace`` ``N``:

``N:lock:K``
    the exclusive holder's random token, set with ``SET NX PX`` and
    expiring :data:`LOCK_TTL` seconds after its last renewal;
``N:lock:K:readers``
    a sorted set of shared holders' tokens, each scored by the Redis time
    (ms) it expires at; expired members block nobody and are dropped by the
    next acquisition;
``N:lock:K:release``
    a release request: the token of the exclusive hold asked to let go.

Every acquisition, renewal and release is one Lua script, so it sees and
changes these keys atomically, and only the hold's own token renews or
releases it: a hold that expired never deletes its successor's.  A
``request_release`` waiter sets the request to the current holder's token
while the key is busy (once per hold: it leaves a request for that token
alone), so a request left behind never stops a later holder.

A watchdog thread per locker renews every held lock every third of its TTL.
A hold whose renewal fails (its token is gone, or Redis did not answer) is
*lost*: :meth:`RedisLock.lost` and :meth:`RedisLock.release_requested` turn
true, so a streaming write stops and the ``Storage`` facade refuses to save
under it.  A hold also counts as lost once its TTL has run out since the
last renewal that succeeded, however late the watchdog is (a process that
was stopped or starved, a renewal that hangs), measured on this host's
monotonic clock from before the renewal was sent.  A lost hold stays lost,
and is no longer renewed.  A process that dies simply stops renewing:
its locks expire within :data:`LOCK_TTL`.  Records are saved with a version
check (:class:`tus_filter.storage.redis.RedisRecords`), the fence for a
holder that does not notice in time.

Transient Redis failures while acquiring raise :class:`StorageUnavailable`
(503); a failed release is only logged, the lock then expires by itself.
Needs Redis 5 or later (scripts that read ``TIME`` before they write).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
import redis.exceptions

from .errors import UploadLocked
from .locking import _TOKEN_BYTES, Lock, Locker
from .redis_errors import TRANSIENT, redis_unavailable

log = logging.getLogger("tus_filter")

LOCK_TTL = 10.0  # seconds a lock outlives the last renewal of a holder that died
_RENEWALS_PER_TTL = 3
_REQUEST_CHECK = 0.1  # seconds between two looks of a holder for a release request
_POLL_MIN = 0.005  # a waiter's first pause between attempts, doubled up to _POLL_MAX
_POLL_MAX = 0.05

# Each script starts from the server's clock, the one that expires keys.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: lock, readers, release; ARGV: token, ttl (ms), "1" to ask the holder to let go.
_ACQUIRE_EXCLUSIVE = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local holder = redis.call('GET', KEYS[1])
if holder then
  if ARGV[3] == '1' and redis.call('GET', KEYS[3]) ~= holder then
    redis.call('SET', KEYS[3], holder, 'PX', ARGV[2])
  end
  return 0
end
if redis.call('ZCARD', KEYS[2]) > 0 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: lock; ARGV: token, ttl (ms).
_RENEW_EXCLUSIVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: lock, release; ARGV: token.
_RELEASE_EXCLUSIVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
"""

# The readers' set lives as long as its last member.
_KEEP_READERS = """
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

# KEYS: lock, readers; ARGV: token, ttl (ms).
_ACQUIRE_SHARED = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
""" + _KEEP_READERS

# KEYS: lock, readers; ARGV: token, ttl (ms).
_RENEW_SHARED = _NOW + """
local expires = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not expires or tonumber(expires) <= now then
  return 0
end
redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[1])
""" + _KEEP_READERS


class RedisLock(Lock):
    """A held Redis lock (see :meth:`RedisLocker.hold`).

    A release request is seen by the first :meth:`release_requested` call
    at least :data:`_REQUEST_CHECK` seconds (0.1) after the previous look:
    a streaming write, which calls it every block and every 0.1 s while no
    block arrives, stops within about 0.2 s of the request.
    """

    def __init__(self, locker: RedisLocker, key: str, token: str, shared: bool, since: float):
        self.key = key
        self.token = token
        self.shared = shared
        self._locker = locker
        self._valid_until = since + locker.validity
        self._lost = False
        self._requested = False
        self._next_look = 0.0  # monotonic time of the next look for a release request

    def release_requested(self) -> bool:
        if self.lost():
            return True
        if self.shared or self._requested:
            return self._requested  # only exclusive holders are asked
        now = time.monotonic()
        if now >= self._next_look:
            self._next_look = now + _REQUEST_CHECK
            try:
                self._requested = self._locker.asked(self)
            except TRANSIENT:
                self.lose("Redis did not answer")
                return True
        return self._requested

    def lost(self) -> bool:
        if not self._lost and time.monotonic() >= self._valid_until:
            self.lose("its TTL ran out before a renewal came back")
        return self._lost

    def discard(self) -> None:
        """Nothing to do: releasing the hold deletes every key it made."""

    def renewed(self, since: float) -> None:
        """The lock was renewed by a request sent at monotonic time ``since``."""
        self._valid_until = since + self._locker.validity

    def lose(self, why: str) -> None:
        self._lost = True
        log.warning("tus_filter: lock %s lost: %s", self.key, why)


class RedisLocker(Locker):
    """Locks in Redis below ``namespace``, for several hosts (see the module docstring).

    ``timeout`` is how long :meth:`hold` waits by default.  ``ttl`` is how
    long a lock outlives a holder that stopped renewing it (tests shorten it).
    """

    keys_outlive_holds = False  # releasing a hold deletes its keys

    def __init__(
        self, client: redis.Redis, *, namespace: str, timeout: float, ttl: float = LOCK_TTL
    ):
        self.client = client
        self.namespace = namespace
        self.timeout = timeout
        self.ttl = ttl
        # What a hold can count on after a renewal: the TTL, less the drift
        # between this host's clock and Redis's (as in redis-py's Redlock).
        self.validity = ttl * 0.99 - 0.002
        self._ttl_ms = max(1, round(ttl * 1000))
        self._acquire_exclusive = client.register_script(_ACQUIRE_EXCLUSIVE)
        self._renew_exclusive = client.register_script(_RENEW_EXCLUSIVE)
        self._release_exclusive = client.register_script(_RELEASE_EXCLUSIVE)
        self._acquire_shared = client.register_script(_ACQUIRE_SHARED)
        self._renew_shared = client.register_script(_RENEW_SHARED)
        self._watchdog = _Watchdog(self._renew, ttl / _RENEWALS_PER_TTL)

    @contextmanager
    def hold(
        self,
        key: str,
        *,
        timeout: float | None = None,
        shared: bool = False,
        request_release: bool = False,
    ) -> Iterator[RedisLock]:
        lock = self._acquire(
            key, self.timeout if timeout is None else timeout, shared, request_release
        )
        self._watchdog.watch(lock)
        try:
            yield lock
        finally:
            self._watchdog.forget(lock)
            self._release(lock)

    def asked(self, lock: RedisLock) -> bool:
        """Whether a waiter asked ``lock``'s (exclusive) hold to let go: one round trip."""
        request = self.client.get(self._key(lock.key, "release"))
        return _text(request) == lock.token

    def _key(self, key: str, part: str = "") -> str:
        return f"{self.namespace}:lock:{key}" + (f":{part}" if part else "")

    def _acquire(
        self, key: str, timeout: float, shared: bool, request_release: bool
    ) -> RedisLock:
        token = secrets.token_hex(_TOKEN_BYTES // 2)
        lock, readers = self._key(key), self._key(key, "readers")
        deadline = time.monotonic() + timeout
        pause = _POLL_MIN
        while True:
            since = time.monotonic()
            with redis_unavailable():
                if shared:
                    taken = self._acquire_shared(keys=[lock, readers], args=[token, self._ttl_ms])
                else:
                    taken = self._acquire_exclusive(
                        keys=[lock, readers, self._key(key, "release")],
                        args=[token, self._ttl_ms, "1" if request_release else "0"],
                    )
            if taken:
                return RedisLock(self, key, token, shared, since)
            if time.monotonic() + pause > deadline:
                raise UploadLocked()
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    def _renew(self, lock: RedisLock) -> bool:
        """Extend ``lock`` by its TTL (on the watchdog's thread); whether it is still held.

        Once lost, a lock stays lost: another holder may have come and gone.
        """
        if lock.lost():
            return False
        since = time.monotonic()
        try:
            if lock.shared:
                keys = [self._key(lock.key), self._key(lock.key, "readers")]
                renewed = self._renew_shared(keys=keys, args=[lock.token, self._ttl_ms])
            else:
                keys = [self._key(lock.key)]
                renewed = self._renew_exclusive(keys=keys, args=[lock.token, self._ttl_ms])
        except redis.exceptions.RedisError as error:
            lock.lose(f"renewal failed: {error}")
            return False
        if not renewed:
            lock.lose("it expired before its renewal")
            return False
        lock.renewed(since)
        return True

    def _release(self, lock: RedisLock) -> None:
        try:
            if lock.shared:
                self.client.zrem(self._key(lock.key, "readers"), lock.token)
            else:
                keys = [self._key(lock.key), self._key(lock.key, "release")]
                self._release_exclusive(keys=keys, args=[lock.token])
        except TRANSIENT as error:
            log.warning(
                "tus_filter: lock %s not released (%s); it expires within %s s",
                lock.key, error, self.ttl,
            )


class _Watchdog:
    """Renews held locks every ``period`` seconds, on a thread that runs while any is held."""

    def __init__(self, renew: Callable[[RedisLock], bool], period: float):
        self._renew = renew
        self._period = period
        self._due: dict[RedisLock, float] = {}  # hold -> monotonic time of its next renewal
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, lock: RedisLock) -> None:
        with self._changed:
            self._due[lock] = time.monotonic() + self._period
            if self._thread is None or not self._thread.is_alive():  # not alive: after a fork
                self._thread = threading.Thread(
                    target=self._run, name="tus_filter-redis-locks", daemon=True
                )
                self._thread.start()

    def forget(self, lock: RedisLock) -> None:
        with self._changed:
            self._due.pop(lock, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                if not self._due:
                    self._thread = None
                    return
                now = time.monotonic()
                due = [lock for lock, at in self._due.items() if at <= now]
                if not due:
                    self._changed.wait(min(self._due.values()) - now)
                    continue
                for lock in due:
                    self._due[lock] = now + self._period
            for lock in due:  # outside the condition: hold and release never wait for Redis here
                if not self._renew(lock):
                    self.forget(lock)


def _text(value: bytes | str | None) -> str | None:
    """A reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
