"""The Locker contract (tus_filter.locking), run against every locker.

File-specific cases are in test_locking.py, Redis-specific ones in
test_redis_locking.py.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from tests.support.lockers import LockerBackend
from tus_filter.errors import UploadLocked
from tus_filter.locking import Locker

KEY = "ab" * 16
REDIS_TTL = 2.0  # short, so that a crashed holder's lock expires within a test


@pytest.fixture(params=["file", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> LockerBackend:
    if request.param == "file":
        return LockerBackend("file", str(tmp_path))
    url = request.getfixturevalue("redis_url")
    namespace = request.getfixturevalue("redis_namespace")
    return LockerBackend("redis", url, namespace, REDIS_TTL)


MakeLocker = Callable[..., Locker]


@pytest.fixture
def make_locker(backend: LockerBackend) -> Iterator[MakeLocker]:
    """``make_locker(timeout)``: a fresh locker of the backend (another host, for Redis)."""
    with ExitStack() as stack:
        yield lambda timeout: stack.enter_context(backend.locker(timeout))


def test_second_holder_times_out(make_locker: MakeLocker) -> None:
    locker = make_locker(0.1)
    with locker.hold(KEY):
        started = time.monotonic()
        with pytest.raises(UploadLocked), locker.hold(KEY):
            pass
        assert time.monotonic() - started >= 0.05


def test_zero_timeout_tries_once(make_locker: MakeLocker) -> None:
    locker = make_locker(5)
    with locker.hold(KEY):
        started = time.monotonic()
        with pytest.raises(UploadLocked), locker.hold(KEY, timeout=0):
            pass
        assert time.monotonic() - started < 1


def test_lock_is_free_again_after_release(make_locker: MakeLocker) -> None:
    locker = make_locker(0.1)
    with locker.hold(KEY):
        pass
    with locker.hold(KEY, timeout=0):
        pass


def test_lock_is_free_again_after_an_error(make_locker: MakeLocker) -> None:
    locker = make_locker(0.1)
    with pytest.raises(ZeroDivisionError), locker.hold(KEY):
        1 / 0  # noqa: B018
    with locker.hold(KEY, timeout=0):
        pass


def test_different_keys_do_not_block(make_locker: MakeLocker) -> None:
    locker = make_locker(0.1)
    with locker.hold(KEY), locker.hold("cd" * 16, timeout=0):
        pass


def test_two_lockers_exclude_each_other(make_locker: MakeLocker) -> None:
    """Two lockers on one backend (two hosts, for Redis) share the locks."""
    first, second = make_locker(0.1), make_locker(0.1)
    with first.hold(KEY), pytest.raises(UploadLocked), second.hold(KEY):
        pass
    with second.hold(KEY):
        pass


def test_threads_are_mutually_exclusive(make_locker: MakeLocker) -> None:
    locker = make_locker(10)
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, overlaps
        for _ in range(20):
            with locker.hold(KEY):
                with guard:
                    inside += 1
                    overlaps += inside > 1
                time.sleep(0.001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == 0


def _hold_in_child(backend: LockerBackend, shared: bool, ready: Event, release: Event) -> None:
    with backend.locker(1) as locker, locker.hold(KEY, shared=shared):
        ready.set()
        release.wait(10)


def test_processes_are_mutually_exclusive(
    backend: LockerBackend, make_locker: MakeLocker
) -> None:
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(backend, False, ready, release))
    child.start()
    try:
        assert ready.wait(10)
        with pytest.raises(UploadLocked), make_locker(0.1).hold(KEY):
            pass
    finally:
        release.set()
        child.join(10)
    with make_locker(1).hold(KEY):
        pass


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_a_crashed_holder_blocks_at_most_the_ttl(
    backend: LockerBackend, make_locker: MakeLocker, shared: bool
) -> None:
    """File locks go with their process; Redis locks expire after their TTL."""
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(backend, shared, ready, release))
    child.start()
    assert ready.wait(10)
    child.kill()
    child.join(10)
    started = time.monotonic()
    with make_locker(REDIS_TTL + 2).hold(KEY):
        pass
    assert time.monotonic() - started < REDIS_TTL + 1


def test_shared_holders_coexist_and_exclude_an_exclusive_one(make_locker: MakeLocker) -> None:
    locker = make_locker(0.1)
    with (
        locker.hold(KEY, shared=True),
        locker.hold(KEY, shared=True, timeout=0),
        pytest.raises(UploadLocked),
        locker.hold(KEY),
    ):
        pass
    with locker.hold(KEY), pytest.raises(UploadLocked), locker.hold(KEY, shared=True):
        pass


def test_the_last_shared_holder_frees_the_key(make_locker: MakeLocker) -> None:
    locker = make_locker(0.1)
    with locker.hold(KEY, shared=True):
        with locker.hold(KEY, shared=True):
            pass
        with pytest.raises(UploadLocked), locker.hold(KEY):
            pass
    with locker.hold(KEY, timeout=0):
        pass


def test_a_held_lock_is_not_lost(make_locker: MakeLocker) -> None:
    with make_locker(0.1).hold(KEY) as lock:
        assert not lock.lost()
        assert not lock.release_requested()


# -- release requests -----------------------------------------------------------------------------


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 2
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_waiter_asks_the_holder_to_let_go(make_locker: MakeLocker) -> None:
    locker = make_locker(0.1)
    with locker.hold(KEY) as holder:
        with pytest.raises(UploadLocked), locker.hold(KEY):
            pass
        time.sleep(0.15)  # longer than any throttle on looking for requests
        assert not holder.release_requested()  # a plain waiter never asks
        with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
            pass  # asking is not taking: the holder decides when to let go
        _until(holder.release_requested)
        assert not holder.lost()


def test_a_request_is_for_one_hold_only(make_locker: MakeLocker) -> None:
    """A request left behind (its waiter gave up or crashed) never stops a later holder."""
    locker = make_locker(0.05)
    with locker.hold(KEY), pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
        pass
    with locker.hold(KEY) as later:
        time.sleep(0.15)
        assert not later.release_requested()


def test_shared_holders_are_not_asked(make_locker: MakeLocker) -> None:
    locker = make_locker(0.05)
    with locker.hold(KEY, shared=True) as reader:
        with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
            pass
        time.sleep(0.15)
        assert not reader.release_requested()


def test_holders_in_turn_are_asked(make_locker: MakeLocker) -> None:
    """A waiter asks each new holder, so a hold that starts while it waits is asked too."""
    locker = make_locker(5)
    waited: list[float] = []

    def waiter() -> None:
        started = time.monotonic()
        with locker.hold(KEY, request_release=True):
            waited.append(time.monotonic() - started)

    with locker.hold(KEY) as first:
        thread = threading.Thread(target=waiter)
        thread.start()
        _until(first.release_requested)
    with locker.hold(KEY) as second:  # won the race against the waiter (it usually does)
        if thread.is_alive():
            _until(second.release_requested)
    thread.join(5)
    assert waited and waited[0] < 2


def _hold_until_asked(backend: LockerBackend, ready: Event, asked: Event) -> None:
    with backend.locker(1) as locker, locker.hold(KEY) as lock:
        ready.set()
        deadline = time.monotonic() + 10
        while not lock.release_requested() and time.monotonic() < deadline:
            time.sleep(0.01)
        asked.set()


def test_release_is_requested_across_processes(
    backend: LockerBackend, make_locker: MakeLocker
) -> None:
    context = multiprocessing.get_context("spawn")
    ready, asked = context.Event(), context.Event()
    child = context.Process(target=_hold_until_asked, args=(backend, ready, asked))
    child.start()
    try:
        assert ready.wait(10)
        with make_locker(5).hold(KEY, request_release=True):
            assert asked.is_set()
    finally:
        child.join(10)
