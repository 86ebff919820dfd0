"""Real tus clients against the filter served by waitress.

* tuspy 1.1.0 (``tusclient``), in process, over real sockets;
* tus-js-client 4.3.1 under Node (``tests/node/tus_upload.js``), speaking tus
  and, with ``protocol: 'ietf-draft-05'`` / ``'ietf-draft-03'``, the IETF
  draft (interop versions 6 and 5).

Every test checks that the bytes the application received are identical to
the file sent (sha256) and that the application was called exactly once per
upload — for a parallel (concatenated) upload: once, for the final only.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from tusclient import client as tus_client

from tests.support import backend
from tests.support.apps import RecordingApp, read_records
from tests.support.node import run_node
from tests.support.servers import serve, serve_processes
from tus_filter import TusFilter

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("storage_backend")]

NODE_SCRIPT = Path(__file__).parent / "node" / "tus_upload.js"
KIB = 1024
MIB = 1024 * KIB


@dataclass
class Server:
    endpoint: str
    app: RecordingApp
    filter: TusFilter

    def only_handoff(self, url: str) -> dict[str, Any]:
        """The single hand-off for the upload at ``url`` (and no other hand-offs at all)."""
        upload_id = url.rstrip("/").rsplit("/", 1)[1]
        assert [call["upload_id"] for call in self.app.calls] == [upload_id]
        return self.app.calls[0]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    app = RecordingApp()
    wrapped = TusFilter(
        app, tmp_file_dir=str(tmp_path / "store"), max_size=64 * 1024 * KIB,
        **backend.options(),
    )
    with serve(wrapped) as base_url:
        yield Server(base_url + "/files", app, wrapped)


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- tuspy -----------------------------------------------------------------------------------------


def tuspy_upload(server: Server, data: bytes, **options: Any) -> Any:
    uploader = tus_client.TusClient(server.endpoint).uploader(
        file_stream=io.BytesIO(data), **options
    )
    uploader.upload()
    return uploader


@pytest.mark.parametrize(
    ("size", "options"),
    [
        pytest.param(300 * KIB, {}, id="single-patch"),
        pytest.param(700 * KIB, {"chunk_size": 256 * KIB + 7}, id="chunked"),
        pytest.param(0, {}, id="empty-file"),
        pytest.param(1, {}, id="one-byte"),
        pytest.param(600 * KIB, {"chunk_size": 200 * KIB, "upload_checksum": True}, id="checksum"),
        # On S3: PATCHes of 1 MiB fill 8 MiB parts, staged pieces carried across a part's end.
        pytest.param(12 * MIB, {"chunk_size": MIB}, id="12-MiB-in-1-MiB-patches-across-parts"),
    ],
)
def test_tuspy(server: Server, size: int, options: dict[str, Any]) -> None:
    data = payload(size)
    uploader = tuspy_upload(server, data, **options)
    handoff = server.only_handoff(uploader.url)
    assert (handoff["size"], handoff["sha256"], handoff["protocol"]) == (size, sha256(data), "tus")
    assert handoff["metadata"] == {}  # tuspy sends an empty Upload-Metadata (#27)


def test_tuspy_utf8_metadata(server: Server) -> None:
    data = payload(10 * KIB)
    name = "Grüße, 世界 🎉.bin"
    uploader = tuspy_upload(server, data, metadata={"filename": name, "filetype": "image/png"})
    handoff = server.only_handoff(uploader.url)
    assert handoff["filename"] == name
    assert handoff["content_type"] == "image/png"
    assert handoff["sha256"] == sha256(data)


def test_tuspy_resume(server: Server) -> None:
    """Upload one chunk, stop; a new uploader resumes from the URL at the HEAD's offset."""
    data = payload(500 * KIB, seed=1)
    first = tus_client.TusClient(server.endpoint).uploader(
        file_stream=io.BytesIO(data), chunk_size=128 * KIB
    )
    first.upload_chunk()  # type: ignore[no-untyped-call]
    assert first.offset == 128 * KIB
    assert server.app.calls == []
    second = tus_client.TusClient(server.endpoint).uploader(
        file_stream=io.BytesIO(data), url=first.url, chunk_size=128 * KIB
    )
    assert second.offset == 128 * KIB  # from HEAD
    second.upload()
    assert server.only_handoff(str(first.url))["sha256"] == sha256(data)


def test_tuspy_resume_on_another_worker_process(tmp_path: Path) -> None:
    """Two processes sharing tmp_file_dir: start on one, resume on the other; one hand-off."""
    options = {
        "record_dir": str(tmp_path), "tmp_file_dir": str(tmp_path / "store"),
        **backend.shared_options(),
    }
    data = payload(300 * KIB, seed=7)
    with serve_processes("tests.support.apps:filtered_recording_app", options) as (one, two):
        first = tus_client.TusClient(one + "/files").uploader(
            file_stream=io.BytesIO(data), chunk_size=100 * KIB
        )
        first.upload_chunk()  # type: ignore[no-untyped-call]
        moved = str(first.url).replace(one, two)
        second = tus_client.TusClient(two + "/files").uploader(
            file_stream=io.BytesIO(data), url=moved, chunk_size=100 * KIB
        )
        assert second.offset == 100 * KIB
        second.upload()
    [record] = read_records(tmp_path)
    assert record["sha256"] == sha256(data)
    assert record["upload_id"] == moved.rsplit("/", 1)[1]


# -- tus-js-client ---------------------------------------------------------------------------------


def tjc(server: Server, data: bytes, tmp_path: Path, **config: Any) -> dict[str, Any]:
    source = tmp_path / f"source-{len(list(tmp_path.glob('source-*')))}.bin"
    source.write_bytes(data)
    config = {"endpoint": server.endpoint, "file": str(source), **config}
    result: dict[str, Any] = run_node(NODE_SCRIPT, json.dumps(config))
    return result


def methods(result: dict[str, Any]) -> list[str]:
    return [method for method, _status, _offset in result["requests"]]


@pytest.mark.parametrize(
    ("size", "options", "expected_methods"),
    [
        pytest.param(300 * KIB, {}, ["POST", "PATCH"], id="single-patch"),
        pytest.param(
            600 * KIB, {"chunkSize": 256 * KIB}, ["POST", "PATCH", "PATCH", "PATCH"], id="chunked"
        ),
        pytest.param(0, {}, ["POST"], id="empty-file"),
        pytest.param(
            300 * KIB,
            {"uploadDataDuringCreation": True},
            ["POST"],
            id="upload-data-during-creation",
        ),
        pytest.param(
            600 * KIB,
            {"uploadDataDuringCreation": True, "chunkSize": 256 * KIB},
            ["POST", "PATCH", "PATCH"],
            id="upload-data-during-creation-chunked",
        ),
        pytest.param(
            300 * KIB,
            {"overridePatchMethod": True, "chunkSize": 200 * KIB},
            ["POST", "POST", "POST"],
            id="override-patch-method",
        ),
    ],
)
def test_tus_js_client(
    server: Server,
    tmp_path: Path,
    size: int,
    options: dict[str, Any],
    expected_methods: list[str],
) -> None:
    data = payload(size, seed=2)
    result = tjc(server, data, tmp_path, options=options)
    assert methods(result) == expected_methods
    assert all(200 <= status < 300 for _m, status, _o in result["requests"])
    handoff = server.only_handoff(result["url"])
    assert (handoff["size"], handoff["sha256"]) == (size, sha256(data))


def test_tus_js_client_utf8_metadata(server: Server, tmp_path: Path) -> None:
    data = payload(20 * KIB)
    metadata = {"filename": "naïve résumé 日本語 🎉.txt", "filetype": "text/plain", "empty": ""}
    result = tjc(server, data, tmp_path, options={"metadata": metadata})
    handoff = server.only_handoff(result["url"])
    assert handoff["filename"] == metadata["filename"]
    assert handoff["content_type"] == "text/plain"
    assert handoff["metadata"] == metadata
    assert handoff["sha256"] == sha256(data)


def test_tus_js_client_resume(server: Server, tmp_path: Path) -> None:
    """Stop after the first chunk; a new Upload given the URL HEADs and PATCHes the rest."""
    data = payload(700 * KIB, seed=3)
    options = {"chunkSize": 256 * KIB}
    first = tjc(server, data, tmp_path, options=options, abortAfter=1)
    assert first["aborted"] and first["bytesAccepted"] == 256 * KIB
    assert server.app.calls == []
    second = tjc(server, data, tmp_path, options={**options, "uploadUrl": first["url"]})
    assert second["url"] == first["url"]
    assert methods(second) == ["HEAD", "PATCH", "PATCH"]
    assert second["requests"][1][2] == str(256 * KIB)  # resumed at the stored offset
    assert server.only_handoff(first["url"])["sha256"] == sha256(data)


def test_tus_js_client_parallel_uploads(server: Server, tmp_path: Path) -> None:
    """parallelUploads: partials + a final POST; only the final reaches the app."""
    data = payload(900 * KIB, seed=4)
    result = tjc(
        server,
        data,
        tmp_path,
        options={
            "parallelUploads": 3,
            "metadata": {"filename": "whole.bin"},
            "metadataForPartialUploads": {"filename": "part.bin"},
        },
    )
    assert methods(result).count("POST") == 4  # three partials and the final
    handoff = server.only_handoff(result["url"])
    assert (handoff["size"], handoff["sha256"]) == (len(data), sha256(data))
    assert handoff["filename"] == "whole.bin"
    head = requests.head(result["url"], headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    assert head.headers["Upload-Concat"].startswith("final;")
    assert head.headers["Upload-Offset"] == str(len(data))


def test_tus_js_client_parallel_uploads_of_whole_parts(server: Server, tmp_path: Path) -> None:
    """Partials of 6 MiB each: on S3 the final is built by server-side part copies."""
    data = payload(12 * MIB, seed=11)
    result = tjc(server, data, tmp_path, options={"parallelUploads": 2, "chunkSize": 2 * MIB})
    handoff = server.only_handoff(result["url"])
    assert (handoff["size"], handoff["sha256"]) == (len(data), sha256(data))


def test_tus_js_client_parallel_uploads_with_creation_data(server: Server, tmp_path: Path) -> None:
    data = payload(400 * KIB, seed=5)
    result = tjc(
        server, data, tmp_path, options={"parallelUploads": 2, "uploadDataDuringCreation": True}
    )
    assert methods(result) == ["POST", "POST", "POST"]
    assert server.only_handoff(result["url"])["sha256"] == sha256(data)


def test_tus_js_client_deferred_length(server: Server, tmp_path: Path) -> None:
    """A Node stream of unknown size: Upload-Defer-Length, then Upload-Length at EOF (#72-#74)."""
    data = payload(600 * KIB + 123, seed=6)  # not a multiple of chunkSize: see tus_upload.js
    result = tjc(
        server,
        data,
        tmp_path,
        source="stream",
        options={"uploadLengthDeferred": True, "chunkSize": 200 * KIB},
    )
    handoff = server.only_handoff(result["url"])
    assert (handoff["size"], handoff["sha256"]) == (len(data), sha256(data))


def test_tus_js_client_terminate(server: Server, tmp_path: Path) -> None:
    """#105: Upload.terminate() accepts only 204."""
    result = tjc(server, payload(KIB), tmp_path, terminate=True)
    assert result["terminated"]  # the DELETE was answered 204
    head = requests.head(result["url"], headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    assert head.status_code == 404


# -- tus-js-client speaking the IETF draft (protocol "ietf") ---------------------------------------

IETF_PROTOCOLS = [
    pytest.param("ietf-draft-05", id="draft-05-interop-6"),
    pytest.param("ietf-draft-03", id="draft-03-interop-5"),
]


@pytest.mark.parametrize("protocol", IETF_PROTOCOLS)
@pytest.mark.parametrize(
    ("size", "options", "expected_methods"),
    [
        pytest.param(300 * KIB, {}, ["POST", "PATCH"], id="single-patch"),
        pytest.param(
            600 * KIB, {"chunkSize": 256 * KIB}, ["POST", "PATCH", "PATCH", "PATCH"], id="chunked"
        ),
        pytest.param(0, {}, ["POST"], id="empty-file"),
        pytest.param(
            300 * KIB, {"uploadDataDuringCreation": True}, ["POST"], id="data-during-creation"
        ),
    ],
)
def test_tus_js_client_ietf(
    server: Server,
    tmp_path: Path,
    protocol: str,
    size: int,
    options: dict[str, Any],
    expected_methods: list[str],
) -> None:
    data = payload(size, seed=8)
    result = tjc(server, data, tmp_path, options={"protocol": protocol, **options})
    assert methods(result) == expected_methods
    assert all(200 <= status < 300 for _m, status, _o in result["requests"])
    handoff = server.only_handoff(result["url"])
    assert (handoff["size"], handoff["sha256"], handoff["protocol"]) == (size, sha256(data), "ietf")


@pytest.mark.parametrize("protocol", IETF_PROTOCOLS)
def test_tus_js_client_ietf_resume(server: Server, tmp_path: Path, protocol: str) -> None:
    """Abort after the first chunk; a new Upload given the URL HEADs and appends the rest."""
    data = payload(700 * KIB, seed=9)
    options = {"protocol": protocol, "chunkSize": 256 * KIB}
    first = tjc(server, data, tmp_path, options=options, abortAfter=1)
    assert first["aborted"] and first["bytesAccepted"] == 256 * KIB
    assert server.app.calls == []
    second = tjc(server, data, tmp_path, options={**options, "uploadUrl": first["url"]})
    assert second["url"] == first["url"]
    assert methods(second) == ["HEAD", "PATCH", "PATCH"]
    assert second["requests"][1][2] == str(256 * KIB)  # resumed at the stored offset
    handoff = server.only_handoff(first["url"])
    assert (handoff["sha256"], handoff["protocol"]) == (sha256(data), "ietf")


@pytest.mark.parametrize("protocol", IETF_PROTOCOLS)
def test_tus_js_client_ietf_metadata_reaches_hook_and_app(tmp_path: Path, protocol: str) -> None:
    """The draft carries no metadata, but tus-js-client sends tus's ``Upload-Metadata`` in
    its draft modes too: the ``on_create`` hook and the application both see it."""
    seen: list[Any] = []
    app = RecordingApp()
    wrapped = TusFilter(
        app,
        tmp_file_dir=str(tmp_path / "store"),
        on_create=lambda environ, info: seen.append(info),
        **backend.options(),
    )
    metadata = {"filename": "naïve résumé 🎉.txt", "filetype": "text/plain"}
    data = payload(20 * KIB, seed=10)
    with serve(wrapped) as base_url:
        server = Server(base_url + "/files", app, wrapped)
        result = tjc(server, data, tmp_path, options={"protocol": protocol, "metadata": metadata})
    [info] = seen
    assert (info.protocol, info.filename, info.size) == ("ietf", metadata["filename"], len(data))
    handoff = server.only_handoff(result["url"])
    assert (handoff["filename"], handoff["content_type"]) == (metadata["filename"], "text/plain")
    assert handoff["metadata"] == metadata


@pytest.mark.parametrize("protocol", IETF_PROTOCOLS)
def test_tus_js_client_ietf_terminate(server: Server, tmp_path: Path, protocol: str) -> None:
    """``Upload.terminate(url, {protocol})``: the draft's DELETE, answered 204."""
    result = tjc(server, payload(KIB), tmp_path, options={"protocol": protocol}, terminate=True)
    assert result["terminated"]
    head = requests.head(result["url"], headers={"Upload-Draft-Interop-Version": "6"}, timeout=10)
    assert head.status_code == 404


def test_tus_and_ietf_uploads_at_once_on_one_path(server: Server, tmp_path: Path) -> None:
    """Mixed traffic: tuspy (tus) and tus-js-client (draft) in parallel, each handed off once."""
    sources = {f"tus-{n}": payload(300 * KIB + n, seed=20 + n) for n in range(3)}
    sources.update({f"ietf-{n}": payload(300 * KIB + n, seed=30 + n) for n in range(3)})
    chunk = {"chunkSize": 100 * KIB}

    def upload(name: str) -> str:
        data = sources[name]
        if name.startswith("tus"):
            return str(tuspy_upload(server, data, chunk_size=100 * KIB).url)
        protocol = "ietf-draft-05" if name.endswith(("0", "2")) else "ietf-draft-03"
        options = {"protocol": protocol, **chunk}
        return str(tjc(server, data, tmp_path / name, options=options)["url"])

    for name in sources:
        (tmp_path / name).mkdir()
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        urls = dict(zip(sources, pool.map(upload, sources), strict=True))
    by_id = {call["upload_id"]: call for call in server.app.calls}
    assert len(server.app.calls) == len(by_id) == len(sources)
    for name, url in urls.items():
        handoff = by_id[url.rsplit("/", 1)[1]]
        assert handoff["sha256"] == sha256(sources[name])
        assert handoff["protocol"] == name.split("-")[0]
