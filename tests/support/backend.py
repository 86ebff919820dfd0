"""The storage backend under test: the filters a test builds use it.

Test modules that hold for every backend declare
``pytestmark = pytest.mark.usefixtures("storage_backend")``: each of their
tests then runs once per backend (ids ``...-file`` and ``...-s3``), except
the tests marked ``@pytest.mark.filesystem``, which look at files on disk
and run with ``file`` only.  With ``s3`` the filters store bytes in a fresh
bucket of the session's SeaweedFS server and records and locks in the
session's Redis server (see ``tests/conftest.py``).

:func:`options` is what the harness (``tus_factory``, ``chunked.Server``,
the cross-process workers) adds to the options of every filter it builds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FILE = "file"
S3 = "s3"
BACKENDS = (FILE, S3)

_current: dict[str, Any] = {}
_stores = itertools.count()


def options() -> dict[str, Any]:
    """Options for one more filter on the current backend (``{}`` for files).

    Each call names a store of its own (an S3 prefix, hence a Redis
    namespace), as each filter has a ``tmp_file_dir`` of its own.
    """
    if not _current:
        return {}
    return {**_current, "storage": f"{_current['storage']}/store{next(_stores)}"}


def shared_options() -> dict[str, Any]:
    """Options for filters that must share one store (several processes, one upload)."""
    return {**_current, "storage": f"{_current['storage']}/shared"} if _current else {}


@contextmanager
def using(backend_options: dict[str, Any]) -> Iterator[None]:
    """Build filters on the backend ``backend_options`` name while the context lasts."""
    _current.clear()
    _current.update(backend_options)
    try:
        yield
    finally:
        _current.clear()
