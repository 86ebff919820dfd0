"""Exactly-once completion under real concurrency (F15), for flow.js and resumable.js.

The last chunks of an upload are released together from threads (a
barrier), against one waitress server or spread over separate server
processes sharing ``tmp_file_dir``.  Every request must be answered 200,
the app must be called exactly once, exactly one response must be the
app's answer (the hand-off), and the file must be byte-identical.  Each scenario runs several
rounds (a fresh upload each) to make the races likely.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import backend
from tests.support.apps import RecordingApp, read_records, sha256
from tests.support.chunked import PATH, ClientFile
from tests.support.servers import serve, serve_processes
from tus_filter import TusFilter
from tus_filter.protocols.chunked import ChunkState
from tus_filter.protocols.flowlike import FLOOR
from tus_filter.storage import ChunkLayout

pytestmark = pytest.mark.usefixtures("storage_backend")

ROUNDS = 4
CHUNK = 256 * 1024  # large enough that the parallel writes overlap in time
CHUNKS = 8
PARALLEL = 6  # the last PARALLEL chunks race; waitress serves 8 at once
TIMEOUT = 30
HANDED_OFF = "handed-off"  # the app's body: marks the one response that completed


def client_file(library: str, round_: int) -> ClientFile:
    """A fresh upload per round: another identifier, other bytes."""
    data = hashlib.shake_256(f"{library}-{round_}".encode()).digest(CHUNK * CHUNKS + CHUNK // 2)
    prefix = "flow" if library == "flow" else "resumable"
    return ClientFile(data, chunk_size=CHUNK, prefix=prefix, identifier=f"race-{round_}")


def send(base_url: str, file: ClientFile, number: int) -> requests.Response:
    """A multipart chunk upload; resumable.js also repeats the parameters in the query."""
    params = file.params(number)
    return requests.post(
        base_url + PATH,
        params=params if file.prefix == "resumable" else None,
        data=params,
        files={"file": ("blob", file.chunk(number), "application/octet-stream")},
        timeout=TIMEOUT,
    )


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run ``calls`` in threads released together; return their responses in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:  # reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert all(isinstance(result, requests.Response) for result in results), results
    return results


def race_last_chunks(urls: list[str], file: ClientFile) -> list[requests.Response]:
    """Send the first chunks one by one, then the last ``PARALLEL`` at once over ``urls``."""
    first = CHUNKS - PARALLEL
    for number in range(1, first + 1):
        assert send(urls[number % len(urls)], file, number).status_code == 200
    numbers = range(first + 1, CHUNKS + 1)
    return at_once([
        lambda number=number: send(urls[number % len(urls)], file, number)  # type: ignore[misc]
        for number in numbers
    ])


def assert_one_hand_off(responses: list[requests.Response]) -> None:
    """All 200; one is the app's answer, the others the protocol's JSON."""
    assert [response.status_code for response in responses] == [200] * len(responses)
    bodies = [response.text for response in responses]
    assert bodies.count(HANDED_OFF) == 1, bodies
    for text in bodies:
        assert text == HANDED_OFF or set(json.loads(text)) == {"chunk", "complete"}


@pytest.mark.parametrize("library", ["flow", "resumable"])
def test_last_chunks_from_threads(tmp_path: Path, library: str) -> None:
    downstream = RecordingApp(body=HANDED_OFF.encode())
    app = TusFilter(
        downstream, upload_path=PATH, tmp_file_dir=str(tmp_path), **backend.options()
    )
    with serve(app) as base_url:
        for round_ in range(ROUNDS):
            file = client_file(library, round_)
            assert_one_hand_off(race_last_chunks([base_url], file))
            calls = [c for c in downstream.calls if c["metadata"]["identifier"] == file.identifier]
            assert len(calls) == 1, f"round {round_}: {len(calls)} hand-offs"
            assert calls[0]["sha256"] == sha256(file.data)


@pytest.mark.parametrize("library", ["flow", "resumable"])
def test_last_chunks_from_threads_on_s3(
    s3_endpoint: Any, s3_bucket: str, redis_url: str, s3_credentials: None, tmp_path: Path,
    library: str,
) -> None:
    """On S3 completion builds the parts from the layout: the one the record settled on."""
    downstream = RecordingApp(body=HANDED_OFF.encode())
    app = TusFilter(
        downstream, upload_path=PATH, tmp_file_dir=str(tmp_path), storage=f"s3://{s3_bucket}/up",
        s3_endpoint_url=s3_endpoint.url, redis_url=redis_url,
    )
    with serve(app) as base_url:
        for round_ in range(ROUNDS):
            file = client_file(library, round_)
            assert_one_hand_off(race_last_chunks([base_url], file))
            calls = [c for c in downstream.calls if c["metadata"]["identifier"] == file.identifier]
            assert len(calls) == 1 and calls[0]["sha256"] == sha256(file.data)


@pytest.mark.parametrize("library", ["flow", "resumable"])
def test_test_requests_racing_to_recover(tmp_path: Path, library: str) -> None:
    """F1 after a crash: every test request finds all chunks; one of them completes."""
    downstream = RecordingApp(body=HANDED_OFF.encode())
    app = TusFilter(
        downstream, upload_path=PATH, tmp_file_dir=str(tmp_path), **backend.options()
    )
    with serve(app) as base_url:
        for round_ in range(ROUNDS):
            file = client_file(library, round_)
            for number in range(1, CHUNKS):
                assert send(base_url, file, number).status_code == 200
            [key] = set(app.storage.records.ids()) - {c["upload_id"] for c in downstream.calls}
            _store_without_completing(app, key, file, CHUNKS)
            tests = [file.params(number) for number in range(1, CHUNKS + 1)]
            responses = at_once([
                lambda params=params: requests.get(  # type: ignore[misc]
                    base_url + PATH, params=params, timeout=TIMEOUT)
                for params in tests
            ])
            assert_one_hand_off(responses)
            calls = [c for c in downstream.calls if c["upload_id"] == key]
            assert len(calls) == 1 and calls[0]["sha256"] == sha256(file.data)


def _store_without_completing(app: TusFilter, key: str, file: ClientFile, number: int) -> None:
    """The state a crash leaves: the last chunk written and counted, status still uploading.

    As its real upload would, the chunk also pins the layout (C + C/2 bytes:
    the clients' default, rounded-down chunk count).
    """
    storage = app.storage
    with storage.lock(key):
        record = storage.load(key)
        layout = ChunkLayout(file.total, file.chunk_size, number)
        storage.data.write_chunk(record, layout, number - 1, [file.chunk(number)])
        state = ChunkState.of(record)
        state.layout, state.chunk_count = FLOOR, number
        state.add_chunk(number - 1)
        state.store(record)
        storage.save(record)


@pytest.mark.parametrize("library", ["flow", "resumable"])
def test_last_chunks_across_processes(tmp_path: Path, library: str) -> None:
    options = {
        "record_dir": str(tmp_path / "records"),
        "tmp_file_dir": str(tmp_path / "store"),
        "upload_path": PATH,
        "body": HANDED_OFF,
        **backend.shared_options(),
    }
    (tmp_path / "records").mkdir()
    with serve_processes("tests.support.apps:filtered_recording_app", options) as urls:
        for round_ in range(ROUNDS):
            file = client_file(library, round_)
            assert_one_hand_off(race_last_chunks(urls, file))
    records = read_records(tmp_path / "records")
    assert sorted(r["metadata"]["identifier"] for r in records) == [
        f"race-{round_}" for round_ in range(ROUNDS)
    ]
    for record in records:
        file = client_file(library, int(record["metadata"]["identifier"].split("-")[1]))
        assert record["sha256"] == hashlib.sha256(file.data).hexdigest()
