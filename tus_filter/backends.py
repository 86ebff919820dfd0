"""Which storage a filter runs on: the one place settings become a :class:`Storage`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .locking import FileLocker
from .storage import FileData, FileRecords, Storage

if TYPE_CHECKING:
    from .config import Settings


def open_storage(settings: Settings) -> Storage:
    """The storage ``settings`` name."""
    return file_storage(
        settings.tmp_file_dir,
        valid_duration=settings.upload_valid_duration,
        lock_timeout=settings.lock_timeout,
    )


def file_storage(directory: str, *, valid_duration: int, lock_timeout: float) -> Storage:
    """Records, bytes and locks in ``directory``, for the hosts that share it."""
    return Storage(
        FileRecords(directory),
        FileData(directory),
        FileLocker(os.path.join(directory, "locks"), lock_timeout),
        valid_duration=valid_duration,
    )
