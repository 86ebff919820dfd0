"""Three hosts that share only S3 and Redis serve every upload as one (issue 8).

Each host is a waitress process (``serve_processes``) with a private
``tmp_file_dir``; all of them use one bucket of the session's SeaweedFS
(``storage = s3://…``) and the session's Redis, and find the S3 credentials
in the environment they inherit (put there as the ``s3_credentials``
fixture does).  The app behind every filter records each hand-off, with the
digest of the bytes ``Upload.open()`` read, in one shared ``record_dir``.
The hosts serve the whole module; each test uploads files of its own.

Every case checks what a deployment behind a load balancer needs: each file
byte-identical, handed off exactly once (one record, one response carrying
the app's answer), and no 5xx but 503 with ``Retry-After``, which clients
retry.  Requests go to the hosts in turn, as a balancer sends them.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.apps import read_records, sha256
from tests.support.chunked import ClientFile
from tests.support.servers import serve_gunicorn, serve_processes
from tests.support.services import (
    S3_REGION,
    SeaweedS3,
    empty_and_delete_bucket,
    processes_using,
    use_credentials,
)
from tests.support.services import s3_client as make_s3_client
from tus_filter.redis_locking import LOCK_TTL

MIB = 1024 * 1024
PATH = "/up"
HOSTS = 3
HANDED_OFF = "handed-off"  # the app's body: marks the one response that completed an upload
TIMEOUT = 60  # seconds a request may take (a 503 after botocore's retries takes a few)
TUS = {"Tus-Resumable": "1.0.0"}
OCTET = "application/offset+octet-stream"
PREFIX = "shared"  # the key prefix in the bucket, hence the Redis namespace, of every host


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@dataclass
class Cluster:
    """The hosts' base URLs, the hand-off records of this test, and every response it saw."""

    urls: list[str]
    options: dict[str, Any]  # the options every host shares
    bucket: str
    records_before: int = 0  # hand-offs recorded by earlier tests of the module
    responses: list[requests.Response] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, host: int, method: str, path: str = "", **kwargs: Any) -> requests.Response:
        """One request to ``upload_path + path`` on host ``host`` (modulo the host count)."""
        return self.seen(requests.request(
            method, self.urls[host % len(self.urls)] + PATH + path, timeout=TIMEOUT, **kwargs
        ))

    def seen(self, response: requests.Response) -> requests.Response:
        with self._lock:
            self.responses.append(response)
        return response

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.options["record_dir"])[self.records_before :]

    def check_statuses(self) -> None:
        """No 5xx but 503, and every 503 says when to retry."""
        errors = [r for r in self.responses if r.status_code >= 500]
        assert [r.status_code for r in errors if r.status_code != 503] == [], [
            (r.request.method, r.url, r.status_code, r.text) for r in errors
        ]
        assert all(r.headers.get("Retry-After") for r in errors)

    def check_files(self, files: dict[str, bytes]) -> None:
        """Each upload (by id) handed off once with exactly its bytes, and nothing else."""
        by_id: dict[str, list[dict[str, Any]]] = {}
        for record in self.records():
            by_id.setdefault(record["upload_id"], []).append(record)
        assert sorted(by_id) == sorted(files)
        for upload_id, data in files.items():
            [record] = by_id[upload_id]
            assert (record["size"], record["sha256"]) == (len(data), sha256(data)), upload_id
            assert record["path"] is None  # the bytes are in S3, read through Upload.open()


@pytest.fixture(scope="module")
def hosts(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: SeaweedS3, redis_url: str
) -> Iterator[Cluster]:
    """The three hosts, for every test of the module (each test uploads files of its own)."""
    root = tmp_path_factory.mktemp("multihost")
    bucket = f"tus-filter-multihost-{uuid.uuid4().hex[:12]}"
    client = make_s3_client(s3_endpoint.url)
    with ExitStack() as stack, pytest.MonkeyPatch.context() as monkeypatch:
        stack.callback(client.close)
        client.create_bucket(Bucket=bucket)
        stack.callback(lambda: (s3_endpoint.start(), empty_and_delete_bucket(client, bucket)))
        use_credentials(monkeypatch, s3_endpoint)  # in the hosts' environment
        (root / "records").mkdir()
        options = {
            "record_dir": str(root / "records"),
            "body": HANDED_OFF,
            "upload_path": PATH,
            "storage": f"s3://{bucket}/{PREFIX}",
            "s3_endpoint_url": s3_endpoint.url,
            "s3_region": S3_REGION,
            "redis_url": redis_url,
        }
        urls = stack.enter_context(serve_processes(
            "tests.support.apps:filtered_recording_app",
            options,
            workers=HOSTS,
            private=lambda index: {"tmp_file_dir": str(root / f"host{index}")},
        ))
        yield Cluster(urls, options, bucket)


@pytest.fixture
def cluster(hosts: Cluster) -> Cluster:
    """The hosts, with this test's view of the records and responses."""
    return Cluster(
        hosts.urls, hosts.options, hosts.bucket, len(read_records(hosts.options["record_dir"]))
    )


def handed_off(responses: list[requests.Response]) -> int:
    return sum(response.text == HANDED_OFF for response in responses)


def retrying(send: Callable[[], requests.Response], *, pause: float = 0.1) -> requests.Response:
    """``send()`` again while it answers 503, as flow.js, resumable.js and tus clients do."""
    deadline = time.monotonic() + TIMEOUT
    while (response := send()).status_code == 503 and time.monotonic() < deadline:
        time.sleep(pause)
    return response


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run ``calls`` in threads released together by a barrier; their responses in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


# -- flow.js, resumable.js and uid chunks sprayed over the hosts -----------------------------------


@dataclass
class ChunkedFile:
    """One file cut into chunks by a flow.js, resumable.js or uid client."""

    protocol: str
    data: bytes
    chunk_size: int
    name: str
    uid: str = ""  # uid: the id the server answered the first chunk with

    @property
    def client(self) -> ClientFile:
        prefix = "flow" if self.protocol == "flow" else "resumable"
        return ClientFile(
            self.data, chunk_size=self.chunk_size, prefix=prefix, identifier=self.identifier,
            name=self.name, relative_path=self.name,
        )

    @property
    def identifier(self) -> str:
        return self.name.replace(".", "-")

    @property
    def count(self) -> int:
        if self.protocol == "uid":
            return -(-len(self.data) // self.chunk_size)
        return self.client.count

    def send(self, cluster: Cluster, host: int, number: int) -> requests.Response:
        """Chunk ``number`` (from 1) as the client sends it: a multipart POST."""
        if self.protocol == "uid":
            start = (number - 1) * self.chunk_size
            fields = {
                "uploadUid": self.uid, "fileName": self.name, "totalSize": str(len(self.data)),
                "chunkNumber": str(number - 1), "chunkCount": str(self.count),
            }
            chunk = self.data[start : start + self.chunk_size]
            files = {"content": ("blob", chunk, "application/octet-stream")}
            return cluster.request(host, "POST", data=fields, files=files)
        client = self.client
        params = client.params(number)
        files = {"file": ("blob", client.chunk(number), "application/octet-stream")}
        query = params if self.protocol == "resumable" else None  # resumable.js sends both
        return cluster.request(host, "POST", params=query, data=params, files=files)


def spray(cluster: Cluster, files: list[ChunkedFile], *, last: int, seed: int) -> None:
    """Send every chunk of ``files``; each must be answered 200 (after retries on 503).

    All chunks but the ``last`` of each file go first, in random order, from
    a thread pool, to the hosts in turn; then the last ones of every file at
    the same instant, each file's to different hosts.  Exactly one of each
    file's last chunks is answered by the app: it completed the upload.
    """

    def send(file: ChunkedFile, host: int, number: int) -> requests.Response:
        return retrying(lambda: file.send(cluster, host, number))

    for host, file in enumerate(files):
        if file.protocol == "uid":  # the first chunk creates the upload and names it
            first = send(file, host, 1)
            assert first.status_code == 200, first.text
            file.uid = first.json()["uploadUid"]
    early = [
        (file, host, number)
        for host, file in enumerate(files)
        for number in range(2 if file.protocol == "uid" else 1, file.count - last + 1)
    ]
    random.Random(seed).shuffle(early)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda turn: send(early[turn][0], turn, early[turn][2]), range(len(early))
        ))
    assert [r.status_code for r in answers] == [200] * len(answers), [r.text for r in answers]
    assert handed_off(answers) == 0
    final = [
        (file, host, number)
        for file in files
        for host, number in enumerate(range(file.count - last + 1, file.count + 1))
    ]
    answers = at_once([
        lambda file=file, host=host, number=number: send(file, host, number)  # type: ignore[misc]
        for file, host, number in final
    ])
    assert [r.status_code for r in answers] == [200] * len(answers), [r.text for r in answers]
    for file in files:
        mine = [r for (f, _, _), r in zip(final, answers, strict=True) if f is file]
        assert handed_off(mine) == 1, (file.name, [r.text for r in mine])


def chunked_ids(cluster: Cluster, files: list[ChunkedFile]) -> dict[str, bytes]:
    """Upload id -> bytes: uid files by their id, the others by their identifier."""
    identifiers = {
        record["metadata"].get("identifier"): record["upload_id"] for record in cluster.records()
    }
    return {
        file.uid if file.protocol == "uid" else identifiers[file.identifier]: file.data
        for file in files
    }


@pytest.mark.parametrize(
    ("chunk_size", "sizes", "last"),
    [
        pytest.param(
            MIB, [9 * MIB + 7, 6 * MIB + 3000, 4 * MIB, 5 * MIB + MIB // 2, 6 * MIB - 5, 7 * MIB],
            3, id="1MiB-chunks-staged-in-slots",
        ),
        pytest.param(
            5 * MIB, [21 * MIB + 5, 20 * MIB, 17 * MIB], 2, id="5MiB-chunks-each-a-part",
        ),
    ],
)
def test_chunks_sprayed_over_hosts(
    cluster: Cluster, chunk_size: int, sizes: list[int], last: int
) -> None:
    protocols = ["flow", "resumable", "uid"]
    files = [
        ChunkedFile(protocols[i % 3], payload(size, seed=i), chunk_size, f"file-{i}.bin")
        for i, size in enumerate(sizes)
    ]
    spray(cluster, files, last=last, seed=len(sizes))
    cluster.check_files(chunked_ids(cluster, files))
    cluster.check_statuses()


# -- tus: HEAD on one host, PATCH on another ------------------------------------------------------


def tus_create(cluster: Cluster, host: int, length: int) -> str:
    """A new tus upload of ``length`` bytes; its path below ``upload_path``."""
    response = cluster.request(host, "POST", headers={**TUS, "Upload-Length": str(length)})
    assert response.status_code == 201, response.text
    return "/" + response.headers["Location"].rsplit("/", 1)[1]


def tus_offset(cluster: Cluster, host: int, path: str) -> int:
    response = cluster.request(host, "HEAD", path, headers=TUS)
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def tus_patch(
    cluster: Cluster, host: int, path: str, offset: int, body: bytes
) -> requests.Response:
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": OCTET}
    return cluster.request(host, "PATCH", path, headers=headers, data=body)


def test_tus_head_and_patch_on_different_hosts(cluster: Cluster) -> None:
    """3 MiB PATCHes in 8 MiB parts: a part's pieces are staged by one host, sent by another."""
    data = payload(20 * MIB + 12345, seed=20)
    path = tus_create(cluster, 0, len(data))
    answers = []
    for turn in range(HOSTS * 3):
        offset = tus_offset(cluster, turn, path)
        if offset == len(data):
            break
        answers.append(tus_patch(cluster, turn + 1, path, offset, data[offset : offset + 3 * MIB]))
        assert answers[-1].status_code in (200, 204), answers[-1].text
    assert handed_off(answers) == 1 and answers[-1].text == HANDED_OFF
    cluster.check_files({path[1:]: data})
    cluster.check_statuses()


def test_tus_patches_racing_at_one_offset_on_two_hosts(cluster: Cluster) -> None:
    """Two PATCHes of the same bytes at the same offset, at once, on two hosts.

    A PATCH asks the holder of the lock to let go, so the first may stop
    early; but only one of them moves the offset: the other gets 409 (the
    offset moved), 423 (the lock stayed busy), or stopped before its first
    byte.  HEAD then reports the offset of the one that moved it.
    """
    data = payload(14 * MIB + 99, seed=21)
    path = tus_create(cluster, 0, len(data))
    offset, answers = 0, []
    for turn in range(12):
        body = data[offset : offset + 3 * MIB]
        race = at_once([
            lambda host=host, at=offset, body=body: tus_patch(  # type: ignore[misc]
                cluster, host, path, at, body
            )
            for host in (turn, turn + 1)
        ])
        answers += race
        assert {r.status_code for r in race} <= {200, 204, 409, 423}, [r.text for r in race]
        moved = [
            int(r.headers["Upload-Offset"]) for r in race
            if r.status_code in (200, 204) and int(r.headers["Upload-Offset"]) > offset
        ]
        assert len(moved) == 1, [(r.status_code, r.headers.get("Upload-Offset")) for r in race]
        offset = tus_offset(cluster, turn + 2, path)
        assert offset == moved[0]
        if offset == len(data):
            break
    assert handed_off(answers) == 1
    cluster.check_files({path[1:]: data})
    cluster.check_statuses()


# -- a host killed mid-PATCH ----------------------------------------------------------------------


def test_upload_resumes_on_another_host_after_one_is_killed_mid_patch(
    cluster: Cluster, tmp_path: Path, s3_client: Any
) -> None:
    """``kill -9`` of a host that holds the lock while a PATCH body streams in.

    The victim is a gunicorn host (gunicorn streams bodies to the app;
    waitress reads them whole first): it stored a part and waits for more
    bytes, lock held, when it dies.  Its lock expires within ``LOCK_TTL``;
    the client's HEAD and PATCH on another host, retried on 423, complete
    the upload by then, plus a few seconds.
    """
    data = payload(24 * MIB, seed=22)
    victim_dir = tmp_path / "victim"
    with serve_gunicorn(
        "tests.support.apps:filtered_recording_app",
        {**cluster.options, "tmp_file_dir": str(victim_dir)},
        threads=2,
    ) as victim:
        path = tus_create(cluster, 0, len(data))
        stream = socket.create_connection(("127.0.0.1", urlsplit(victim).port or 80), timeout=30)
        try:
            stream.sendall(
                (
                    f"PATCH {PATH}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
                    f"Upload-Offset: 0\r\nContent-Type: {OCTET}\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode()
                + data[: 10 * MIB]
            )
            wait_for_a_stored_part(s3_client, cluster.bucket, path[1:])
            victims = processes_using(victim_dir)
            assert len(victims) == 2  # gunicorn's master and its worker
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
        finally:
            stream.close()
        answers = []
        for turn in range(20):
            offset = tus_offset(cluster, turn, path)
            answers.append(tus_patch(cluster, turn + 1, path, offset, data[offset:]))
            if answers[-1].status_code not in (409, 423):
                break
        resumed = time.monotonic() - killed
    assert answers[-1].status_code == 200 and answers[-1].text == HANDED_OFF, answers[-1].text
    assert resumed < LOCK_TTL + 5
    cluster.check_files({path[1:]: data})
    cluster.check_statuses()


def wait_for_a_stored_part(s3_client: Any, bucket: str, upload_id: str) -> None:
    """Until the multipart upload of ``upload_id`` holds a part (20 s at most)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        uploads = s3_client.list_multipart_uploads(Bucket=bucket, Prefix=f"{PREFIX}/{upload_id}")
        for upload in uploads.get("Uploads", []):
            parts = s3_client.list_parts(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            if parts.get("Parts"):
                return
        time.sleep(0.05)
    raise AssertionError("the victim stored no part")


# -- S3 down for a few seconds ---------------------------------------------------------------------


OUTAGE = 3.0  # seconds S3 stays down


def test_uploads_survive_s3_stopping_for_a_few_seconds(
    cluster: Cluster, s3_endpoint: SeaweedS3
) -> None:
    """A tus and a flow.js upload each send a part's worth, then S3 stops.

    Meanwhile their requests get 503 with ``Retry-After`` (tus HEADs still
    answer: offsets live in Redis), which the clients honour; after S3
    comes back both complete.
    """
    tus_data = payload(19 * MIB + 1, seed=23)
    flow = ChunkedFile("flow", payload(9 * MIB + 17, seed=24), MIB, "outage.bin")
    path = tus_create(cluster, 0, len(tus_data))
    outage = threading.Event()
    ready = threading.Barrier(3)
    seen: list[requests.Response] = []

    def honouring(send: Callable[[], requests.Response]) -> requests.Response:
        deadline = time.monotonic() + TIMEOUT
        while (response := send()).status_code == 503 and time.monotonic() < deadline:
            seen.append(response)
            time.sleep(float(response.headers["Retry-After"]))
        return response

    def tus_client() -> list[requests.Response]:
        answers = []
        for turn in range(100):
            if turn == 3:  # 8 MiB in parts, 1 MiB a piece
                ready.wait()
                outage.wait()
            offset = tus_offset(cluster, turn, path)
            if offset == len(tus_data):
                break
            body = tus_data[offset : offset + 3 * MIB]
            answers.append(honouring(
                lambda host=turn + 1, at=offset, body=body: tus_patch(cluster, host, path, at, body)
            ))
        return answers

    def flow_client() -> list[requests.Response]:
        answers = []
        for number in range(1, flow.count + 1):
            if number == 6:  # one slot of five chunks is a part
                ready.wait()
                outage.wait()
            answers.append(honouring(lambda number=number: flow.send(cluster, number, number)))
        return answers

    with ThreadPoolExecutor(2) as pool:
        tus_answers, flow_answers = pool.submit(tus_client), pool.submit(flow_client)
        ready.wait()
        try:
            s3_endpoint.stop()
            outage.set()
            time.sleep(OUTAGE)
        finally:
            outage.set()
            s3_endpoint.start()
        tus_done, flow_done = tus_answers.result(), flow_answers.result()
    assert seen and {r.status_code for r in seen} == {503}
    assert {r.status_code for r in tus_done} <= {200, 204} and handed_off(tus_done) == 1
    assert {r.status_code for r in flow_done} == {200} and handed_off(flow_done) == 1
    cluster.check_files({path[1:]: tus_data, **chunked_ids(cluster, [flow])})
    cluster.check_statuses()
