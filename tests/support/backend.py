"""The storage backend under test: the filters a test builds use it.

Test modules that hold for every backend declare
``pytestmark = pytest.mark.usefixtures("storage_backend")``: each of their
tests then runs once per backend (ids ``...-file`` and ``...-s3``), except
the tests marked ``@pytest.mark.filesystem``, which look at files on disk
and run with ``file`` only.  With ``s3`` the filters store bytes in a fresh
bucket of the session's SeaweedFS server and records and locks in the
session's Redis server (see ``tests/conftest.py``).

What a store holds, on either backend, for tests that look at it:
:func:`snapshot` (record and bytes of an upload, to compare), :func:`stored_bytes`,
:func:`leftovers` (what deletion must free), :func:`contents` and
:func:`upload_ids` (everything a store holds), :func:`spooled` (S3's scratch files).

:func:`options` is what the harness (``tus_factory``, ``chunked.Server``,
the cross-process workers) adds to the options of every filter it builds.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tus_filter.storage import Storage, UploadRecord

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


def snapshot(storage: Storage, upload_id: str) -> tuple[dict[str, Any], Any]:
    """Everything ``storage`` holds for the upload: compare two to prove nothing changed.

    The record as stored (its ``version`` counts the saves) and the bytes: the
    data file's content where uploads are local files; on S3 the objects of
    the upload (name, size, ETag: the assembled object and the staged ones)
    and the parts of its multipart upload.
    """
    record = storage.records.load(upload_id)
    if storage.data.capabilities.local_paths:
        with storage.data.open(record) as file:
            return record.to_json(), file.read()
    return record.to_json(), s3_objects(storage, record)


def s3_objects(storage: Storage, record: UploadRecord) -> dict[str, list[tuple[Any, ...]]]:
    """The upload's S3 objects and parts, found where ``S3Data``'s module doc says they are."""
    from tests.support.services import s3_client

    bucket, _, key = storage.data.location(record).removeprefix("s3://").partition("/")
    root, _, name = key.rpartition("/")
    staging = f"{root}/.staging/{name}/" if root else f".staging/{name}/"
    client = s3_client(_current["s3_endpoint_url"])
    try:
        objects = [
            (item["Key"], item["Size"], item["ETag"])
            for prefix in (key, staging)
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for item in page.get("Contents", [])
            if item["Key"] == key or prefix == staging
        ]
        parts: list[tuple[Any, ...]] = []
        if "upload" in record.data and not record.data.get("assembled"):
            with suppress(client.exceptions.NoSuchUpload):
                answer = client.list_parts(Bucket=bucket, Key=key, UploadId=record.data["upload"])
                parts = [(p["PartNumber"], p["Size"], p["ETag"]) for p in answer.get("Parts", [])]
    finally:
        client.close()
    return {"objects": sorted(objects), "parts": parts}


def stored_bytes(storage: Storage, record: UploadRecord) -> bytes:
    """The bytes the upload holds as stored: all of them, finished or not.

    An unfinished upload on S3 cannot be read back whole: its bytes are the
    pieces its record lists, as long as no part is full (uploads in tests of
    this kind stay below one part of 8 MiB).
    """
    if storage.data.capabilities.local_paths or record.data.get("assembled"):
        with storage.data.open(record) as file:
            return file.read()
    from tests.support.services import s3_client

    assert record.data["parts"] == [], "an unfinished upload of more than one part"
    bucket = storage.data.location(record).removeprefix("s3://").partition("/")[0]
    client = s3_client(_current["s3_endpoint_url"])
    try:
        pieces = []
        for _, _, key in sorted(record.data["pieces"]):
            with client.get_object(Bucket=bucket, Key=key)["Body"] as body:
                pieces.append(body.read())
    finally:
        client.close()
    return b"".join(pieces)


def leftovers(storage: Storage, record: UploadRecord) -> list[str]:
    """What the store still keeps of the upload's bytes ([] once all is freed).

    Its data file where uploads are local files; on S3 its objects (the
    assembled one and the staged ones) and its unfinished multipart uploads.
    """
    if storage.data.capabilities.local_paths:
        path = storage.data.location(record)
        return [path] if os.path.exists(path) else []
    from tests.support.services import s3_client

    objects = s3_objects(storage, record)
    bucket, _, key = storage.data.location(record).removeprefix("s3://").partition("/")
    client = s3_client(_current["s3_endpoint_url"])
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    finally:
        client.close()
    return [name for name, _, _ in objects["objects"]] + [
        f"multipart upload of {upload['Key']}" for upload in uploads if upload["Key"] == key
    ]


def spooled(directory: str) -> list[int]:
    """The sizes of the unlinked scratch files this process has open in ``directory``."""
    sizes = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(os.path.join(directory, "")) and target.endswith(" (deleted)"):
                sizes.append(os.stat(f"/proc/self/fd/{fd}").st_size)
        except OSError:  # closed meanwhile
            continue
    return sizes


def contents(storage: Storage, directory: str) -> list[str]:
    """Everything a store holds, ``[]`` when empty: records, and the bytes of every upload.

    ``directory`` is the filter's ``tmp_file_dir``: its upload directories
    count where uploads are local files; on S3 the objects and unfinished
    multipart uploads below the store's prefix do.
    """
    found = [f"record {upload_id}" for upload_id in storage.records.ids()]
    if storage.data.capabilities.local_paths:
        root = os.path.join(directory, "uploads")
        found += [
            f"directory {shard}/{name}"
            for shard in (os.listdir(root) if os.path.isdir(root) else [])
            for name in os.listdir(os.path.join(root, shard))
        ]
        return sorted(found)
    from tests.support.services import s3_client
    from tus_filter.storage import UploadRecord

    probe = UploadRecord(upload_id="0" * 32, protocol="", length=0)
    bucket, _, key = storage.data.location(probe).removeprefix("s3://").partition("/")
    prefix = key.removesuffix(probe.upload_id)
    client = s3_client(_current["s3_endpoint_url"])
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [f"object {item['Key']}" for item in page.get("Contents", [])]
        for page in client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            found += [f"multipart upload {item['Key']}" for item in page.get("Uploads", [])]
    finally:
        client.close()
    return sorted(found)


def upload_ids(storage: Storage, directory: str) -> list[str]:
    """The ids of the uploads a store holds anything of (see :func:`contents`)."""
    return sorted({
        found.group()
        for entry in contents(storage, directory)
        if (found := re.search(r"\b(?:[0-9a-f]{64}|[0-9a-f]{32})\b", entry))
    })
