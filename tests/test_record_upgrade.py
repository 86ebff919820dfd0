"""Records saved by the previous release, with protocol fields flat in the JSON, still load.

An upload in flight during an upgrade keeps its protocol state (folded into
``UploadRecord.state``) and completes.  The documents below are verbatim
``info.json`` files of that release: a tus partial with 2 of its 4 bytes,
and a flow.js upload of 2 chunks with the first one counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.chunked import ClientFile, Server
from tests.support.tus import Tus
from tus_filter import UploadNotFound
from tus_filter.protocols.chunked import ChunkState
from tus_filter.protocols.flowlike import record_key
from tus_filter.protocols.tus_state import PARTIAL
from tus_filter.storage import UploadRecord

TUS_ID = "a7b17680dbe3e388ccacfea71e8ec7ea"
OLD_TUS = (
    '{"upload_id":"a7b17680dbe3e388ccacfea71e8ec7ea","protocol":"tus","length":4,'
    '"filename":"hello.txt","content_type":null,"metadata":{"filename":"hello.txt"},'
    '"status":"uploading","created":1796115698.3615336,"touched":1796115698.3691087,'
    '"completed":null,"scope":"","version":1,"data":{},"offset":2,'
    '"raw_metadata":"filename aGVsbG8udHh0","concat":"partial","concat_header":null,'
    '"parts":[],"finals":[],"chunk_size":null,"chunk_count":null,"layout":null,"received":""}'
)
FLOW_ID = "5ab802e892eab6b54409511011f10dddc08ed931ac2a5bd181e5ca7c5b3e7f82"
OLD_FLOW = (
    '{"upload_id":"5ab802e892eab6b54409511011f10dddc08ed931ac2a5bd181e5ca7c5b3e7f82",'
    '"protocol":"flowjs","length":4,"filename":"x.bin","content_type":"application/octet-stream",'
    '"metadata":{"identifier":"x","relativePath":"x.bin"},"status":"uploading",'
    '"created":1796115698.3728383,"touched":1796115698.3762486,"completed":null,"scope":"",'
    '"version":1,"data":{},"offset":0,"raw_metadata":null,"concat":null,"concat_header":null,'
    '"parts":[],"finals":[],"chunk_size":2,"chunk_count":2,"layout":"floor","received":"AQ=="}'
)
FLOW_FILE = ClientFile(b"abcd", chunk_size=2, name="x.bin", relative_path="x.bin", identifier="x")


def place(root: str | Path, document: str, data: bytes) -> Path:
    """Put an old record and its data file where the filesystem backend keeps them."""
    upload_id = json.loads(document)["upload_id"]
    directory = Path(root) / "uploads" / upload_id[:2] / upload_id
    directory.mkdir(parents=True)
    (directory / "info.json").write_text(document)
    (directory / "data").write_bytes(data)
    return directory / "info.json"


@pytest.mark.parametrize(
    ("document", "state"),
    [
        pytest.param(
            OLD_TUS, {"raw_metadata": "filename aGVsbG8udHh0", "concat": PARTIAL}, id="tus"
        ),
        pytest.param(
            OLD_FLOW,
            {"chunk_size": 2, "chunk_count": 2, "layout": "floor", "received": "AQ=="},
            id="flowjs",
        ),
    ],
)
def test_flat_fields_are_folded_into_state(document: str, state: dict[str, Any]) -> None:
    """Only fields that were set: the other protocol's defaults do not leak into ``state``."""
    record = UploadRecord.from_json(json.loads(document))
    assert record.state == state
    assert (record.offset, record.finals, record.version) == (
        json.loads(document)["offset"], [], 1
    )
    assert UploadRecord.from_json(record.to_json()) == record


def test_a_tus_partial_in_flight_survives_the_upgrade(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus(upload_valid_duration=0)  # the documents' times are in the past
    info = place(tus.filter.settings.tmp_file_dir, OLD_TUS, b"ab")
    url = f"/files/{TUS_ID}"
    head = tus.head(url)
    assert head.status_int == 200
    assert head.headers["Upload-Offset"] == "2"
    assert head.headers["Upload-Metadata"] == "filename aGVsbG8udHh0"
    assert head.headers["Upload-Concat"] == PARTIAL
    with pytest.raises(UploadNotFound):  # still a partial, for get_upload too
        tus.filter.get_upload(TUS_ID)
    assert tus.patch(url, 2, b"cd").status_int == 204
    assert tus.handoffs == []  # a partial completes without a hand-off
    saved = json.loads(info.read_text())
    assert saved["state"]["concat"] == PARTIAL and "concat" not in saved
    response = tus.request("POST", "/files", {"Upload-Concat": f"final;{url}"})
    assert response.status_int == 201
    [handoff] = tus.handoffs
    assert Path(handoff["path"]).read_bytes() == b"abcd"


def test_a_flow_upload_in_flight_survives_the_upgrade(tmp_path: Path) -> None:
    assert record_key("flowjs", "", "x", 4, 2) == FLOW_ID
    server = Server(tmp_path / "store", options={"upload_valid_duration": 0})
    info = place(server.root, OLD_FLOW, b"ab")
    assert server.test(FLOW_FILE.params(1)).status_int == 200  # counted before the upgrade
    assert server.test(FLOW_FILE.params(2)).status_int == 204
    assert server.send(FLOW_FILE, 2).json == {"chunk": 2, "complete": True}
    [handoff] = server.downstream.calls
    assert Path(handoff["path"]).read_bytes() == b"abcd"
    saved = json.loads(info.read_text())
    assert saved["state"]["layout"] == "floor" and "layout" not in saved
    assert ChunkState.of(UploadRecord.from_json(saved)).chunks_received() == 2
