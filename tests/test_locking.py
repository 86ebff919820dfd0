"""File locks (tus_filter.locking.FileLocker): what only lock files do, deletion above all.

The contract every locker keeps is tested in test_locker_contract.py.
"""

from __future__ import annotations

import builtins
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tus_filter.errors import UploadLocked
from tus_filter.locking import FileLocker

KEY = "ab" * 16


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


def test_discarding_again_never_unlinks_the_next_holders_file(tmp_path: Path) -> None:
    """``discard`` is idempotent: a second call must not split a newcomer's lock."""
    locker = FileLocker(str(tmp_path), timeout=0.1)
    with locker.hold(KEY) as first:
        first.discard()
        with locker.hold(KEY):  # a newcomer locks a fresh file at the same path
            first.discard()
            with pytest.raises(UploadLocked), locker.hold(KEY):
                pass


def test_discard_leaves_no_file_even_after_a_request(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.05)
    with locker.hold(KEY) as holder:
        with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
            pass
        holder.discard()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


# -- waiting and asking, cheaply ------------------------------------------------------------------


def _lag_after_release(locker: FileLocker, hold_for: float) -> float:
    """Seconds between a holder letting go and a waiting thread holding the lock."""
    holding = threading.Event()
    times: dict[str, float] = {}

    def waiter() -> None:
        holding.wait()
        with locker.hold(KEY):
            times["acquired"] = time.monotonic()

    thread = threading.Thread(target=waiter)
    thread.start()
    with locker.hold(KEY):
        holding.set()
        time.sleep(hold_for)
        times["released"] = time.monotonic()
    thread.join(5)
    return times["acquired"] - times["released"]


def test_a_waiter_gets_the_lock_as_soon_as_it_is_free(tmp_path: Path) -> None:
    """No growing back-off: a waiter tries again every few milliseconds."""
    locker = FileLocker(str(tmp_path), timeout=5)
    # A back-off of 2, 4, 8 ... 50 ms would sleep past a hold of 115 ms by ~47 ms.
    lags = [_lag_after_release(locker, 0.115) for _ in range(3)]
    assert min(lags) < 0.02


def test_a_waiter_that_gave_up_leaves_the_lock_free(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.05)
    with locker.hold(KEY), pytest.raises(UploadLocked), locker.hold(KEY):
        pass
    deadline = time.monotonic() + 2
    while True:  # the given-up waiter may hold it for an instant as it lets go
        try:
            with locker.hold(KEY, timeout=0):
                break
        except UploadLocked:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_looking_for_a_release_request_opens_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``release_requested`` runs once per block of a write: one read, no open()."""
    locker = FileLocker(str(tmp_path), timeout=0.05)
    with locker.hold(KEY) as holder:
        with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
            pass
        opened: list[object] = []
        for module in (builtins, os):
            real = module.open

            def noting(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
                opened.append(args)
                return _real(*args, **kwargs)

            monkeypatch.setattr(module, "open", noting)
        assert all(holder.release_requested() for _ in range(100))
        monkeypatch.undo()
    assert opened == []
