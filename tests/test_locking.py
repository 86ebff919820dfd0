"""Per-upload locks: exclusive across threads and processes, timeouts, safe deletion."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from tus_filter.errors import UploadLocked
from tus_filter.locking import FileLocker

KEY = "ab" * 16


def test_second_holder_times_out(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.1)
    with locker.hold(KEY):
        started = time.monotonic()
        with pytest.raises(UploadLocked), locker.hold(KEY):
            pass
        assert time.monotonic() - started >= 0.05


def test_zero_timeout_tries_once(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=5)
    with locker.hold(KEY), pytest.raises(UploadLocked), locker.hold(KEY, timeout=0):
        pass


def test_lock_is_free_again_after_release(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.1)
    with locker.hold(KEY):
        pass
    with locker.hold(KEY):
        pass


def test_different_keys_do_not_block(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.1)
    with locker.hold(KEY), locker.hold("cd" * 16):
        pass


def test_threads_are_mutually_exclusive(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=10)
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


def _hold_in_child(directory: str, ready: Event, release: Event) -> None:
    with FileLocker(directory, timeout=1).hold(KEY):
        ready.set()
        release.wait(10)


def test_processes_are_mutually_exclusive(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(str(tmp_path), ready, release))
    child.start()
    try:
        assert ready.wait(10)
        with pytest.raises(UploadLocked), FileLocker(str(tmp_path), timeout=0.1).hold(KEY):
            pass
    finally:
        release.set()
        child.join(10)
    with FileLocker(str(tmp_path), timeout=1).hold(KEY):
        pass


def test_crashed_holder_does_not_leave_a_stale_lock(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(str(tmp_path), ready, release))
    child.start()
    assert ready.wait(10)
    child.kill()
    child.join(10)
    with FileLocker(str(tmp_path), timeout=1).hold(KEY):
        pass


def test_waiter_follows_a_discarded_lock_file(tmp_path: Path) -> None:
    """A waiter that acquires an unlinked file retries on the new one: never two holders."""
    locker = FileLocker(str(tmp_path), timeout=5)
    acquired = threading.Event()
    holders = 0
    overlaps = 0
    guard = threading.Lock()

    def waiter() -> None:
        nonlocal holders, overlaps
        with locker.hold(KEY):
            with guard:
                holders += 1
                overlaps += holders > 1
            acquired.set()
            time.sleep(0.05)
            with guard:
                holders -= 1

    with locker.hold(KEY) as lock:
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.05)
        lock.discard()
    # A third party locks the new file while the waiter may hold the old one.
    with locker.hold(KEY):
        with guard:
            holders += 1
            overlaps += holders > 1
        with guard:
            holders -= 1
    thread.join()
    assert acquired.is_set()
    assert overlaps == 0


def test_shared_holders_coexist_and_exclude_an_exclusive_one(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.1)
    with (
        locker.hold(KEY, shared=True),
        locker.hold(KEY, shared=True),
        pytest.raises(UploadLocked),
        locker.hold(KEY),
    ):
        pass
    with locker.hold(KEY), pytest.raises(UploadLocked), locker.hold(KEY, shared=True):
        pass


def test_discarding_again_never_unlinks_the_next_holders_file(tmp_path: Path) -> None:
    """``discard`` is idempotent: a second call must not split a newcomer's lock."""
    locker = FileLocker(str(tmp_path), timeout=0.1)
    with locker.hold(KEY) as first:
        first.discard()
        with locker.hold(KEY):  # a newcomer locks a fresh file at the same path
            first.discard()
            with pytest.raises(UploadLocked), locker.hold(KEY):
                pass


# -- release requests -----------------------------------------------------------------------------


def test_a_waiter_asks_the_holder_to_let_go(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.1)
    with locker.hold(KEY) as holder:
        with pytest.raises(UploadLocked), locker.hold(KEY):
            pass
        assert not holder.release_requested()  # a plain waiter never asks
        with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
            pass  # asking is not taking: the holder decides when to let go
        assert holder.release_requested()


def test_a_request_is_for_one_hold_only(tmp_path: Path) -> None:
    """A request left behind (its waiter gave up or crashed) never stops a later holder."""
    locker = FileLocker(str(tmp_path), timeout=0.05)
    with locker.hold(KEY), pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
        pass
    with locker.hold(KEY) as later:
        assert not later.release_requested()


def test_holders_in_turn_are_asked(tmp_path: Path) -> None:
    """A waiter asks each new holder, so a hold that starts while it waits is asked too."""
    locker = FileLocker(str(tmp_path), timeout=5)
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


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 2
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_discard_removes_the_request(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.05)
    with locker.hold(KEY) as holder:
        with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
            pass
        holder.discard()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def _hold_until_asked(directory: str, ready: Event, asked: Event) -> None:
    with FileLocker(directory, timeout=1).hold(KEY) as lock:
        ready.set()
        deadline = time.monotonic() + 10
        while not lock.release_requested() and time.monotonic() < deadline:
            time.sleep(0.01)
        asked.set()


def test_release_is_requested_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready, asked = context.Event(), context.Event()
    child = context.Process(target=_hold_until_asked, args=(str(tmp_path), ready, asked))
    child.start()
    try:
        assert ready.wait(10)
        with FileLocker(str(tmp_path), timeout=5).hold(KEY, request_release=True):
            assert asked.is_set()
    finally:
        child.join(10)
