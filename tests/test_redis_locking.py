"""Redis locks (tus_filter.redis_locking): TTL, watchdog, lost locks, keys, Redis down.

The contract every locker keeps is tested in test_locker_contract.py.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.lockers import LockerBackend
from tests.support.redis_faults import FAULTS, broken_redis
from tests.support.services import RedisServer
from tus_filter.errors import StorageUnavailable, UploadLocked
from tus_filter.redis_locking import RedisLocker

KEY = "ab" * 16
TTL = 0.5

MakeLocker = Callable[..., RedisLocker]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_locker(redis_url: str, redis_namespace: str) -> Iterator[MakeLocker]:
    """``make_locker(timeout=1, ttl=TTL)``: a locker with its own client (another host)."""
    with ExitStack() as stack:

        def make(timeout: float = 1, ttl: float = TTL) -> RedisLocker:
            own = stack.enter_context(redis.Redis.from_url(redis_url))
            return RedisLocker(own, namespace=redis_namespace, timeout=timeout, ttl=ttl)

        yield make


def _until(condition: Callable[[], bool], within: float = 2) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within
        time.sleep(0.01)
    return time.monotonic() - started


def _busy(locker: RedisLocker, shared: bool = False) -> bool:
    try:
        with locker.hold(KEY, timeout=0, shared=shared):
            return False
    except UploadLocked:
        return True


def _hold_in_child(backend: LockerBackend, shared: bool, ready: Event) -> None:
    with backend.locker(1) as locker, locker.hold(KEY, shared=shared):
        ready.set()
        time.sleep(30)


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_a_crashed_holders_lock_lives_until_its_ttl(
    redis_url: str, redis_namespace: str, make_locker: MakeLocker, shared: bool
) -> None:
    backend = LockerBackend("redis", redis_url, redis_namespace, ttl=1.0)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_hold_in_child, args=(backend, shared, ready))
    child.start()
    assert ready.wait(10)
    child.kill()
    child.join(10)
    locker = make_locker()
    assert _busy(locker)  # nobody released it
    assert _until(lambda: not _busy(locker)) < 1.0 + 0.5


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_the_watchdog_keeps_a_long_hold(make_locker: MakeLocker, shared: bool) -> None:
    holder, other = make_locker(), make_locker()
    with holder.hold(KEY, shared=shared) as lock:
        deadline = time.monotonic() + 4 * TTL
        while time.monotonic() < deadline:
            assert _busy(other)
            time.sleep(TTL / 5)
        assert not lock.lost()
        assert not lock.release_requested()


@pytest.mark.parametrize(
    ("shared", "suffix"),
    [pytest.param(False, "", id="exclusive"), pytest.param(True, ":readers", id="shared")],
)
def test_a_failed_renewal_loses_the_lock(
    client: redis.Redis, redis_namespace: str, make_locker: MakeLocker, shared: bool, suffix: str
) -> None:
    """The lock vanished (as if it expired): the holder stops, and never frees a successor."""
    holder, other = make_locker(), make_locker()
    with ExitStack() as successor:
        with holder.hold(KEY, shared=shared) as lock:
            client.delete(f"{redis_namespace}:lock:{KEY}{suffix}")
            _until(lock.lost, within=TTL)
            assert lock.release_requested()
            successor.enter_context(other.hold(KEY, timeout=0))
        assert _busy(make_locker())  # the lost holder's release left the successor alone


def test_a_renewal_that_hangs_loses_the_lock_in_time(
    client: redis.Redis, make_locker: MakeLocker
) -> None:
    """Lost once the TTL ran out, even while the renewal has not come back."""
    with make_locker().hold(KEY) as lock:
        client.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        try:
            assert _until(lock.lost) < 1.2
            assert lock.release_requested()
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
        time.sleep(TTL)  # the watchdog's renewal came back meanwhile
        assert lock.lost()  # lost stays lost


def test_a_release_request_is_seen_quickly(make_locker: MakeLocker) -> None:
    holder, waiter = make_locker(), make_locker(timeout=0)
    with holder.hold(KEY) as lock:
        with pytest.raises(UploadLocked), waiter.hold(KEY, request_release=True):
            pass
        assert _until(lock.release_requested) < 0.3


def test_releases_leave_no_keys(
    client: redis.Redis, redis_namespace: str, make_locker: MakeLocker
) -> None:
    locker = make_locker(timeout=0)
    with locker.hold(KEY), pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
        pass
    with locker.hold(KEY, shared=True), locker.hold(KEY, shared=True):
        pass
    assert client.keys(f"{redis_namespace}:*") == []


# -- Redis down ----------------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, to stop."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_client(own_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of ``own_server`` that fails at once instead of retrying (a faster test)."""
    client = redis.Redis.from_url(own_server.url, retry=Retry(NoBackoff(), 0))
    yield client
    client.close()


def test_a_holder_sees_redis_go_away_at_its_next_look(
    own_server: RedisServer, own_client: redis.Redis
) -> None:
    """Long before the watchdog's next renewal (a TTL of ten seconds)."""
    locker = RedisLocker(own_client, namespace="t", timeout=1)
    with locker.hold(KEY) as lock:
        own_server.stop()
        assert _until(lock.release_requested) < 0.5
        assert lock.lost()


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_a_renewal_while_redis_is_down_loses_the_lock(
    own_server: RedisServer, own_client: redis.Redis, shared: bool
) -> None:
    locker = RedisLocker(own_client, namespace="t", timeout=1, ttl=1.0)
    with locker.hold(KEY, shared=shared) as lock:
        own_server.stop()
        assert _until(lock.lost) < 0.8  # the renewal failed; the TTL has not run out
        assert lock.release_requested()
    # Leaving the hold raised nothing: the release is only logged.


# Out of memory, Redis still lets the scripts through: they delete before they write.
@pytest.mark.parametrize("fault", sorted(set(FAULTS) - {"out-of-memory"}))
@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_no_lock_from_a_broken_redis(tmp_path: Path, fault: str, shared: bool) -> None:
    with broken_redis(tmp_path, fault) as broken:
        locker = RedisLocker(broken, namespace="t", timeout=1)
        with pytest.raises(StorageUnavailable), locker.hold(KEY, shared=shared):
            pass


def test_locks_are_back_with_redis(own_server: RedisServer, own_client: redis.Redis) -> None:
    locker = RedisLocker(own_client, namespace="t", timeout=1)
    own_server.stop()
    with pytest.raises(StorageUnavailable), locker.hold(KEY):
        pass
    own_server.start()
    with locker.hold(KEY, timeout=0):
        pass


def test_a_client_that_decodes_replies_works_alike(redis_url: str, redis_namespace: str) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as text_client:
        locker = RedisLocker(text_client, namespace=redis_namespace, timeout=0, ttl=TTL)
        with locker.hold(KEY) as lock:
            with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
                pass
            assert _until(lock.release_requested) < 0.3
