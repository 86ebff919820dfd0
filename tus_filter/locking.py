"""Per-upload locks: the locker contract, and file locks for one host.

The contract (:class:`Locker`, :class:`Lock`) is what storage and protocols
rely on, whatever the backend (file locks here, Redis locks in
:mod:`tus_filter.redis_locking`):

  * ``hold(key)`` excludes every other holder of ``key``, in any thread,
    process or (for Redis) host; ``shared`` holders exclude only exclusive
    ones; a waiter gives up with :class:`UploadLocked` after its timeout;
  * a holder that dies never blocks the key for long (file locks: the kernel
    drops them; Redis locks: they expire after their TTL);
  * :meth:`Lock.release_requested` turns true when a waiter asked the holder
    to let go, or when the lock can no longer be guaranteed (a Redis lock
    whose renewal failed): a long write stops there and acknowledges nothing
    more; :meth:`Lock.lost` tells the second case apart.

File locks
----------
Each key has a lock file; holding the lock means holding ``fcntl.flock`` on
an open description of that file.  Every ``open()`` makes a new description,
so two threads of one process exclude each other exactly like two processes
(several waitress or gunicorn workers sharing ``tmp_file_dir``).  The kernel
drops the lock when a process dies, so a crash never leaves a stale lock.

A lock file may be deleted only by its holder (:meth:`Lock.discard`).  A
waiter that acquires a file which was unlinked meanwhile notices (inode
check) and retries on the new file, so deletion never splits a lock in two.
NFS is not supported: ``flock`` there is unreliable.

Release requests (tusd's "lock release"): a waiter may ask the current
holder to let go (``hold(..., request_release=True)``), then waits up to its
timeout as usual.  The holder polls :meth:`Lock.release_requested`, which
must stay cheap, and ends what it is doing.  A request names the hold it is
for, so one left behind by a crashed waiter never stops a later holder.
Here every exclusive holder writes a fresh token at the start of its lock
file (clearing the bytes after it), and a request is that token written
right after it by the waiter; the holder checks with one ``pread`` on the
descriptor it holds.  Another backend (Redis: a token key and a request
key) keeps the same contract.

A waiter keeps its descriptor open and tries ``flock`` again every 2 ms
(no growing back-off), so it gets the lock within 2 ms of its release.  (A
blocking ``flock`` cannot be cancelled at a deadline: a waiter that gave up
would still take the lock for an instant once it is free.)
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import ClassVar

from .errors import UploadLocked

_TOKEN_BYTES = 16  # hex digits naming one exclusive hold (64 random bits)
_POLL = 0.002  # seconds between two tries of a waiter


class Lock(ABC):
    """A held lock (see :meth:`Locker.hold`)."""

    @abstractmethod
    def release_requested(self) -> bool:
        """Whether this holder should let go now: a waiter asked, or the lock is lost.

        Cheap enough to call once per block of a streaming write.
        """

    @abstractmethod
    def lost(self) -> bool:
        """Whether the lock may have passed to another holder (it expired un-renewed).

        State must not be saved under a lost lock.  File locks are never lost.
        """

    @abstractmethod
    def discard(self) -> None:
        """Forget the key while holding it (its upload is being deleted)."""


class Locker(ABC):
    """Hands out per-key locks (see the module docstring)."""

    timeout: float
    #: Whether a key leaves something behind after its last hold (a lock
    #: file), which only :meth:`Lock.discard` removes.
    keys_outlive_holds: ClassVar[bool]

    @abstractmethod
    def hold(
        self,
        key: str,
        *,
        timeout: float | None = None,
        shared: bool = False,
        request_release: bool = False,
    ) -> AbstractContextManager[Lock]:
        """Hold the lock for ``key``; raise :class:`UploadLocked` after ``timeout`` seconds.

        ``timeout=None`` means the locker's own :attr:`timeout`; ``0`` tries
        once without waiting.  ``shared`` holders exclude only exclusive ones
        (readers/writers semantics).  With ``request_release``, while the lock
        is busy each exclusive holder in turn is asked to let go.
        """


class FileLock(Lock):
    """A held file lock (see :meth:`FileLocker.hold`)."""

    def __init__(self, path: str, fd: int, token: bytes = b""):
        self.path = path
        self._fd = fd
        self._token = token

    def release_requested(self) -> bool:
        # One pread on the descriptor held anyway: cheap enough for every block.
        return bool(self._token) and os.pread(self._fd, _TOKEN_BYTES, _TOKEN_BYTES) == self._token

    def lost(self) -> bool:
        return False

    def discard(self) -> None:
        """Unlink the lock file while holding it.

        Only while the path still names this holder's file: once discarded, a
        newcomer may have created and locked a fresh one there.  (Only holders
        unlink, so the file cannot change between the check and the unlink.)
        """
        with suppress(FileNotFoundError):
            if _same_file(os.stat(self.path), os.fstat(self._fd)):
                os.unlink(self.path)

    def release(self) -> None:
        os.close(self._fd)  # closing the description drops the flock


class FileLocker(Locker):
    """``flock`` locks on files below ``directory``, for one host (see the module docstring)."""

    keys_outlive_holds = True

    def __init__(self, directory: str, timeout: float):
        self.directory = directory
        self.timeout = timeout

    def path_for(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".lock")

    @contextmanager
    def hold(
        self,
        key: str,
        *,
        timeout: float | None = None,
        shared: bool = False,
        request_release: bool = False,
    ) -> Iterator[FileLock]:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        lock = self._acquire(
            key, self.timeout if timeout is None else timeout, mode, request_release
        )
        try:
            yield lock
        finally:
            lock.release()

    def _acquire(
        self, key: str, timeout: float, mode: int, request_release: bool
    ) -> FileLock:
        path = self.path_for(key)
        deadline = time.monotonic() + timeout
        while True:
            fd = self._open(path)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if not _wait_for_flock(fd, mode, deadline, request_release):
                    raise UploadLocked() from None  # fd is closed
            if self._still_linked(fd, path):
                return FileLock(path, fd, _new_token(fd) if mode == fcntl.LOCK_EX else b"")
            os.close(fd)  # the holder discarded this file; lock the new one

    @staticmethod
    def _open(path: str) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    @staticmethod
    def _still_linked(fd: int, path: str) -> bool:
        try:
            return os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False


def _wait_for_flock(fd: int, mode: int, deadline: float, request_release: bool) -> bool:
    """Poll ``fd`` for the flock every ``_POLL`` seconds until it holds it (``True``) or
    ``deadline`` passes (``False``, fd closed).

    Short fixed polls on the one open descriptor (one system call each), not
    a growing back-off: a waiter gets a lock at most ``_POLL`` after it is
    free.  With ``request_release`` every exclusive holder in turn is asked
    to let go (the lock file names the current one).
    """
    asked = b""  # the token of the hold last asked to let go
    while True:
        if request_release:
            asked = _ask_release(fd, asked)
        if time.monotonic() + _POLL > deadline:
            os.close(fd)
            return False
        time.sleep(_POLL)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise


def _new_token(fd: int) -> bytes:
    """Name this hold in its lock file (and clear any request), for waiters that ask it to go."""
    token = secrets.token_hex(_TOKEN_BYTES // 2).encode()
    os.pwrite(fd, token + bytes(_TOKEN_BYTES), 0)
    return token


def _ask_release(fd: int, asked: bytes) -> bytes:
    """Ask the hold named in the lock file to let go, once; return its token."""
    token = os.pread(fd, _TOKEN_BYTES, 0)
    if len(token) == _TOKEN_BYTES and token != asked and token != bytes(_TOKEN_BYTES):
        # Written after the token, in place: a holder reading it half-written
        # sees no request yet and looks again at its next block.
        os.pwrite(fd, token, _TOKEN_BYTES)
        return token
    return asked


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
