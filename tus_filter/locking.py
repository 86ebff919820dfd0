"""Per-upload locks that work across threads and processes on one host.

Each key has a lock file; holding the lock means holding ``fcntl.flock`` on
an open description of that file.  Every ``open()`` makes a new description,
so two threads of one process exclude each other exactly like two processes
(several waitress or gunicorn workers sharing ``tmp_file_dir``).  The kernel
drops the lock when a process dies, so a crash never leaves a stale lock.

A lock file may be deleted only by its holder (:meth:`Lock.discard`).  A
waiter that acquires a file which was unlinked meanwhile notices (inode
check) and retries on the new file, so deletion never splits a lock in two.
NFS is not supported: ``flock`` there is unreliable.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from .errors import UploadLocked

_POLL_MIN = 0.002
_POLL_MAX = 0.05


class Lock:
    """A held lock (see :meth:`FileLocker.hold`)."""

    def __init__(self, path: str, fd: int):
        self.path = path
        self._fd = fd

    def discard(self) -> None:
        """Unlink the lock file while holding it (the key is going away).

        Only while the path still names this holder's file: once discarded, a
        newcomer may have created and locked a fresh one there.  (Only holders
        unlink, so the file cannot change between the check and the unlink.)
        """
        with suppress(FileNotFoundError):
            if _same_file(os.stat(self.path), os.fstat(self._fd)):
                os.unlink(self.path)

    def release(self) -> None:
        os.close(self._fd)  # closing the description drops the flock


class FileLocker:
    """Hands out exclusive locks keyed by upload id, below ``directory``."""

    def __init__(self, directory: str, timeout: float):
        self.directory = directory
        self.timeout = timeout

    def path_for(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".lock")

    @contextmanager
    def hold(
        self, key: str, *, timeout: float | None = None, shared: bool = False
    ) -> Iterator[Lock]:
        """Hold the lock for ``key``; raise :class:`UploadLocked` after ``timeout`` seconds.

        ``timeout=0`` tries once without waiting.  ``shared`` holders exclude
        only exclusive ones (readers/writers semantics).
        """
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        lock = self._acquire(key, self.timeout if timeout is None else timeout, mode)
        try:
            yield lock
        finally:
            lock.release()

    def _acquire(self, key: str, timeout: float, mode: int) -> Lock:
        path = self.path_for(key)
        deadline = time.monotonic() + timeout
        pause = _POLL_MIN
        while True:
            fd = self._open(path)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() + pause > deadline:
                    raise UploadLocked() from None
                time.sleep(pause)
                pause = min(pause * 2, _POLL_MAX)
                continue
            if self._still_linked(fd, path):
                return Lock(path, fd)
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


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
