"""File locks (tus_filter.locking.FileLocker): what only lock files do, deletion above all.

The contract every locker keeps is tested in test_locker_contract.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

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


def test_discard_removes_the_request(tmp_path: Path) -> None:
    locker = FileLocker(str(tmp_path), timeout=0.05)
    with locker.hold(KEY) as holder:
        with pytest.raises(UploadLocked), locker.hold(KEY, request_release=True):
            pass
        holder.discard()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []
