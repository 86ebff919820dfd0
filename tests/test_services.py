"""The Redis and S3 fixtures run real servers, with the rules real deployments have.

The S3 backend's tests rely on SeaweedFS behaving like S3 where it matters
(the 5 MiB minimum part size, signatures checked, data kept over a restart),
and every test relies on the servers going away with the session.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import redis

from tests.support import REPO_ROOT
from tests.support.services import (
    S3_ACCESS_KEY,
    RedisServer,
    SeaweedS3,
    processes_using,
)
from tests.support.services import (
    s3_client as make_s3_client,
)

MiB = 1024 * 1024


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


def test_s3_round_trip(s3_client: Any, s3_bucket: str) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="a/b.bin", Body=b"\x00bytes\xff")
    with s3_client.get_object(Bucket=s3_bucket, Key="a/b.bin")["Body"] as body:
        assert body.read() == b"\x00bytes\xff"


def test_s3_refuses_a_small_part_that_is_not_the_last(s3_client: Any, s3_bucket: str) -> None:
    upload_id = s3_client.create_multipart_upload(Bucket=s3_bucket, Key="big")["UploadId"]
    parts = []
    for number, size in ((1, 5 * MiB - 1), (2, 10)):
        answer = s3_client.upload_part(
            Bucket=s3_bucket, Key="big", UploadId=upload_id, PartNumber=number, Body=b"x" * size
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3_client.complete_multipart_upload(
            Bucket=s3_bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    assert refused.value.response["Error"]["Code"] == "EntityTooSmall"


def test_s3_accepts_parts_of_5_mib(s3_client: Any, s3_bucket: str) -> None:
    upload_id = s3_client.create_multipart_upload(Bucket=s3_bucket, Key="big")["UploadId"]
    parts = []
    for number, size in ((1, 5 * MiB), (2, 10)):
        answer = s3_client.upload_part(
            Bucket=s3_bucket, Key="big", UploadId=upload_id, PartNumber=number, Body=b"x" * size
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3_client.complete_multipart_upload(
        Bucket=s3_bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert s3_client.head_object(Bucket=s3_bucket, Key="big")["ContentLength"] == 5 * MiB + 10


def test_s3_refuses_a_wrong_secret(s3_endpoint: SeaweedS3, s3_bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint.url,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
    )
    try:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            client.head_bucket(Bucket=s3_bucket)
    finally:
        client.close()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_s3_credentials_reach_the_standard_chain(
    s3_endpoint: SeaweedS3, s3_bucket: str, s3_credentials: None
) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=s3_endpoint.url, config=Config(s3={"addressing_style": "path"})
    )
    try:
        client.head_bucket(Bucket=s3_bucket)
    finally:
        client.close()


def test_redis_set_get(redis_url: str, redis_namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(f"{redis_namespace}:key", b"value")
        assert client.get(f"{redis_namespace}:key") == b"value"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def test_s3_stop_start_keeps_objects_and_ports(
    s3_endpoint: SeaweedS3, s3_client: Any, s3_bucket: str
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="kept", Body=b"kept bytes")
    url, pid = s3_endpoint.url, s3_endpoint.pid
    assert pid is not None
    s3_endpoint.stop()
    assert not Path(f"/proc/{pid}").exists()  # gone and reaped, not a zombie
    assert processes_using(s3_endpoint.directory) == []
    assert refuses_connections(s3_endpoint.port)
    s3_endpoint.start()
    assert s3_endpoint.url == url
    with s3_client.get_object(Bucket=s3_bucket, Key="kept")["Body"] as body:
        assert body.read() == b"kept bytes"


def test_redis_stop_leaves_no_process(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    pid, port = server.pid, server.port
    server.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert processes_using(tmp_path) == []
    assert refuses_connections(port)


def test_servers_do_not_outlive_an_interpreter_that_forgot_them(tmp_path: Path) -> None:
    """The finalizer stops a server nobody stopped, when the interpreter exits."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from tests.support.services import RedisServer
        server = RedisServer(Path({str(tmp_path)!r}))
        server.start()
        print(server.pid, flush=True)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) > 0
    assert processes_using(tmp_path) == []


def test_seaweedfs_ports_leave_room_for_grpc(s3_endpoint: SeaweedS3) -> None:
    assert s3_endpoint.port + 10000 < 65536
    assert not refuses_connections(s3_endpoint.port + 10000)  # the gateway's gRPC port


def test_s3_client_helper_sets_the_non_aws_config(s3_endpoint: SeaweedS3) -> None:
    client = make_s3_client(s3_endpoint.url)
    try:
        config = client.meta.config
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"
        assert config.s3 == {"addressing_style": "path"}
    finally:
        client.close()



def test_seaweedfs_ports_lie_below_the_ephemeral_range() -> None:
    """A restart needs its ports again: no outgoing connection may have taken one."""
    from tests.support.services import _ephemeral_low, _free_port_block

    for _ in range(20):
        base = _free_port_block()
        assert base >= 20000 and base + 3 + 10000 < _ephemeral_low()


def test_redis_port_lies_below_the_ephemeral_range(redis_server: RedisServer) -> None:
    """Its restart (as in the outage tests) needs the port again, as SeaweedFS's does."""
    from tests.support.services import _ephemeral_low

    assert 20000 <= redis_server.port < _ephemeral_low()
