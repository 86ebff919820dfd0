"""``durability``: what the filesystem storage syncs before a request is answered.

The real ``os.fsync`` and ``os.fdatasync`` run; a wrapper only notes which
file each one synced (the data file, a record file, or a directory).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import webtest

from tests.support.chunked import multipart
from tus_filter import TusFilter

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = "application/offset+octet-stream"

Sync = tuple[str, str]  # (system call, "data" / "record" / "directory")


def _kind(fd: int) -> str:
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        return "directory"
    name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    return "data" if name == "data" else "record" if name.startswith("info.json") else name


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[Sync]:
    calls: list[Sync] = []

    def noting(name: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            calls.append((name, _kind(fd)))
            real(fd)

        return sync

    monkeypatch.setattr(os, "fsync", noting("fsync", os.fsync))
    monkeypatch.setattr(os, "fdatasync", noting("fdatasync", os.fdatasync))
    return calls


def _app(tmp_path: Path, durability: str | None) -> webtest.TestApp:
    options = {} if durability is None else {"durability": durability}

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return webtest.TestApp(TusFilter(app, tmp_file_dir=str(tmp_path), **options))


def _create(web: webtest.TestApp, length: int) -> str:
    response = web.post("/files", headers={**TUS, "Upload-Length": str(length)})
    return str(response.headers["Location"]).removeprefix("http://localhost")


def _patch(web: webtest.TestApp, url: str, offset: int, body: bytes) -> None:
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": OCTET}
    assert web.patch(url, body, headers=headers).status_int == 204


@pytest.mark.parametrize("durability", [None, "strict"], ids=["default-is-strict", "strict"])
def test_strict_syncs_bytes_then_record_then_its_rename(
    tmp_path: Path, syncs: list[Sync], durability: str | None
) -> None:
    web = _app(tmp_path, durability)
    url = _create(web, 10)
    syncs.clear()
    _patch(web, url, 0, b"12345")
    assert syncs == [("fdatasync", "data"), ("fsync", "record"), ("fsync", "directory")]


def test_strict_creation_syncs_the_new_directories(tmp_path: Path, syncs: list[Sync]) -> None:
    _create(_app(tmp_path, "strict"), 10)
    assert ("fsync", "record") in syncs
    # The upload's directory, its shard and uploads/: after the data file and after the record.
    assert syncs.count(("fsync", "directory")) == 6


def test_strict_chunk_bytes_are_synced_before_their_count(
    tmp_path: Path, syncs: list[Sync]
) -> None:
    web = _app(tmp_path, "strict")
    params = {
        "flowChunkNumber": "1", "flowChunkSize": "4", "flowCurrentChunkSize": "4",
        "flowTotalSize": "8", "flowIdentifier": "id-1", "flowFilename": "a.bin",
        "flowRelativePath": "a.bin", "flowTotalChunks": "2",
    }
    content_type, body = multipart(params.items(), ("file", "blob", b"abcd", "text/plain"))
    web.post("/files", body, headers={"Content-Type": content_type})  # creates the upload
    syncs.clear()
    params["flowChunkNumber"] = "2"
    content_type, body = multipart(params.items(), ("file", "blob", b"efgh", "text/plain"))
    assert web.post("/files", body, headers={"Content-Type": content_type}).status_int == 200
    assert syncs == [("fdatasync", "data"), ("fsync", "record"), ("fsync", "directory")]


def test_relaxed_syncs_nothing(tmp_path: Path, syncs: list[Sync]) -> None:
    web = _app(tmp_path, "relaxed")
    url = _create(web, 20)
    _patch(web, url, 0, b"12345")
    _patch(web, url, 5, b"67890")
    assert syncs == []
    assert (tmp_path / "uploads" / url[7:9] / url[7:] / "data").read_bytes() == b"1234567890"
