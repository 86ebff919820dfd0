"""``open_storage``: what each combination of options builds, and the startup checks.

The checks run against real servers (``tests/conftest.py``): a missing
bucket, refused credentials, an endpoint and a Redis port where nothing
listens.  Each fails at construction, or at ``loadapp()``, with a
``ConfigError`` that says why; none waits for the first upload.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from tests.paste.apps import hello_app
from tests.support.services import RedisServer, SeaweedS3, free_port
from tus_filter import ConfigError, TusFilter, UploadHandler
from tus_filter.backends import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    REDIS_TIMEOUT,
    S3_ATTEMPTS,
    redis_client,
    redis_namespace,
    s3_client,
)
from tus_filter.config import Settings
from tus_filter.locking import FileLocker
from tus_filter.redis_locking import RedisLocker
from tus_filter.storage import FileData, FileRecords
from tus_filter.storage.redis import RedisRecords
from tus_filter.storage.s3 import S3Data

PASTE = Path(__file__).parent / "paste"
MISSING_BUCKET = "tus-filter-no-such-bucket"  # no test creates it


@pytest.fixture
def stopped_redis_url(tmp_path: Path) -> str:
    """The URL of a Redis that was just stopped: its port refuses connections."""
    server = RedisServer(tmp_path)
    server.start()
    server.stop()
    return server.url


@pytest.fixture
def dead_endpoint() -> str:
    """An S3 endpoint URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def s3_options(
    s3_endpoint: SeaweedS3, s3_bucket: str, redis_url: str, tmp_path: Path, s3_credentials: None
) -> dict[str, Any]:
    return {
        "storage": f"s3://{s3_bucket}/uploads",
        "s3_endpoint_url": s3_endpoint.url,
        "redis_url": redis_url,
        "tmp_file_dir": str(tmp_path / "spool"),
    }


def test_file_storage_is_the_default(tmp_path: Path) -> None:
    storage = UploadHandler(tmp_file_dir=str(tmp_path)).storage
    assert isinstance(storage.records, FileRecords)
    assert isinstance(storage.data, FileData)
    assert isinstance(storage.locker, FileLocker)


def test_file_storage_with_redis_locks_and_records(tmp_path: Path, redis_url: str) -> None:
    storage = UploadHandler(tmp_file_dir=str(tmp_path), redis_url=redis_url).storage
    assert isinstance(storage.records, RedisRecords)
    assert isinstance(storage.data, FileData)
    assert isinstance(storage.locker, RedisLocker)
    assert storage.locker.namespace == f"tus_filter:{tmp_path}"


def test_s3_storage(s3_options: dict[str, Any]) -> None:
    storage = UploadHandler(**s3_options).storage
    assert isinstance(storage.records, RedisRecords)
    assert isinstance(storage.data, S3Data)
    assert isinstance(storage.locker, RedisLocker)
    assert storage.locker.namespace == f"tus_filter:{s3_options['storage']}"


def test_object_storage_ini_stores_an_upload_in_the_bucket(
    s3_options: dict[str, Any], s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    app = loadapp(
        f"config:{PASTE / 'object_storage.ini'}",
        global_conf={"tmp_dir": str(tmp_path), "bucket": s3_bucket,
                     "s3": s3_options["s3_endpoint_url"],
                     "redis": s3_options["redis_url"]},
    )
    assert isinstance(app, TusFilter)
    assert app.settings.storage == f"s3://{s3_bucket}/uploads"
    assert app.settings.s3_region == "us-east-1"
    web = TestApp(app)
    tus = {"Tus-Resumable": "1.0.0"}
    created = web.post("/files", headers={**tus, "Upload-Length": "5"}, status=201)
    path = created.headers["Location"].replace("http://localhost", "")
    completed = web.patch(path, b"hello", headers={
        **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert completed.text == "hello from the app"  # the completing request is handed off
    key = f"uploads/{path.rsplit('/', 1)[1]}"
    with s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"] as body:
        assert body.read() == b"hello"


# -- startup checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "environ", "blocked", "message"),
    [
        pytest.param(
            {"storage": f"s3://{MISSING_BUCKET}/uploads"}, {}, (),
            rf"tus_filter: storage: bucket '{MISSING_BUCKET}' does not exist at "
            r"http://127\.0\.0\.1:",
            id="missing-bucket",
        ),
        pytest.param(
            {}, {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, (),
            r"tus_filter: storage: access to bucket '[^']+' at http://127\.0\.0\.1:\d+ denied "
            r"\(HeadBucket: 403\): credentials refused",
            id="wrong-secret-is-refused-not-missing",
        ),
        pytest.param(
            {}, {"AWS_ACCESS_KEY_ID": "nobody"}, (),
            r"tus_filter: storage: access to bucket .* denied",
            id="unknown-access-key-is-refused-not-missing",
        ),
        pytest.param(
            {}, {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, (),
            "tus_filter: storage: no S3 credentials found", id="no-credentials",
        ),
        pytest.param(
            {"s3_endpoint_url": "{dead_endpoint}"}, {}, (),
            r"tus_filter: s3_endpoint_url: http://127\.0\.0\.1:\d+ unreachable",
            id="endpoint-port-closed",
        ),
        pytest.param(
            {"redis_url": "{stopped_redis}"}, {}, (),
            r"tus_filter: redis_url: redis://127\.0\.0\.1:\d+/0 does not answer PING",
            id="redis-port-closed",
        ),
        pytest.param(
            {"storage": "file", "s3_endpoint_url": None, "redis_url": "{stopped_redis}"}, {}, (),
            r"tus_filter: redis_url: redis://127\.0\.0\.1:\d+/0 does not answer PING",
            id="redis-port-closed-with-file-storage",
        ),
        pytest.param(
            {"redis_url": "{stopped_redis_with_password}"}, {}, (),
            r"tus_filter: redis_url: redis://:\*\*\*@127\.0\.0\.1:\d+/0 does not answer",
            id="redis-password-not-shown",
        ),
        pytest.param(
            {}, {}, ("boto3",),
            r"tus_filter: storage: s3://.* needs boto3: pip install 'tus_filter\[s3\]'",
            id="boto3-not-installed",
        ),
        pytest.param(
            {}, {}, ("redis",),
            r"tus_filter: redis_url: needs the redis package: pip install 'tus_filter\[s3\]'",
            id="redis-not-installed-for-s3",
        ),
        pytest.param(
            {"storage": "file", "s3_endpoint_url": None}, {}, ("redis",),
            r"needs the redis package: pip install 'tus_filter\[redis\]'",
            id="redis-not-installed-for-file",
        ),
    ],
)
def test_startup_checks(
    s3_options: dict[str, Any],
    stopped_redis_url: str,
    dead_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    environ: dict[str, str | None],
    blocked: tuple[str, ...],
    message: str,
) -> None:
    places = {
        "dead_endpoint": dead_endpoint,
        "stopped_redis": stopped_redis_url,
        "stopped_redis_with_password": stopped_redis_url.replace("//", "//:hunter2@"),
    }
    given = {**s3_options, **options}
    given = {
        key: value.format(**places) if isinstance(value, str) else value
        for key, value in given.items() if value is not None
    }
    for name, value in environ.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match=message) as failed:
        TusFilter(hello_app, **given)
    assert "hunter2" not in str(failed.value)


def test_missing_bucket_fails_at_loadapp(
    s3_options: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=f"bucket '{MISSING_BUCKET}' does not exist"):
        loadapp(
            f"config:{PASTE / 'object_storage.ini'}",
            global_conf={"tmp_dir": str(tmp_path), "bucket": MISSING_BUCKET,
                         "s3": s3_options["s3_endpoint_url"],
                         "redis": s3_options["redis_url"]},
        )


def test_s3_without_redis_fails_at_loadapp(tmp_path: Path) -> None:
    """Checked before any server is asked: no Redis, no S3 storage."""
    with pytest.raises(ConfigError, match="tus_filter: redis_url: required with storage = s3://"):
        loadapp(
            f"config:{PASTE / 'object_storage.ini'}",
            global_conf={"tmp_dir": str(tmp_path), "bucket": "some-bucket",
                         "s3": "http://127.0.0.1:1", "redis": ""},
        )


# -- clients ------------------------------------------------------------------------------------


def test_s3_client_config(s3_credentials: None) -> None:
    settings = Settings(storage="s3://bucket", redis_url="redis://localhost/0",
                        s3_endpoint_url="http://127.0.0.1:1", s3_region="eu-west-1")
    client = s3_client(settings)
    try:
        config = client.meta.config
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"
        assert config.s3 == {"addressing_style": "path"}
        assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
        assert config.retries == {"mode": "standard", "total_max_attempts": S3_ATTEMPTS}
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.endpoint_url == "http://127.0.0.1:1"
    finally:
        client.close()


def test_s3_client_for_aws_addresses_buckets_by_host(s3_credentials: None) -> None:
    client = s3_client(Settings(storage="s3://bucket", redis_url="redis://localhost/0"))
    try:
        assert client.meta.config.s3 == {"addressing_style": "auto"}
    finally:
        client.close()


def test_s3_clients_share_the_service_model_but_not_the_credentials(
    s3_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each filter's client reads the model once per process, and credentials afresh."""
    settings = Settings(storage="s3://bucket", redis_url="redis://localhost/0")
    first = s3_client(settings)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "another-key")
    second = s3_client(settings)
    try:
        models = [client.meta.service_model._service_description for client in (first, second)]
        assert models[0] is models[1]
        keys = [client._request_signer._credentials.access_key for client in (first, second)]
        assert keys[1] == "another-key" != keys[0]
    finally:
        first.close()
        second.close()


def test_redis_client_has_timeouts(redis_url: str) -> None:
    client = redis_client(redis_url, extra="redis")
    try:
        options = client.connection_pool.connection_kwargs
        assert options["socket_connect_timeout"] == CONNECT_TIMEOUT
        assert options["socket_timeout"] == REDIS_TIMEOUT
    finally:
        client.close()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"tmp_file_dir": "/srv/a"}, {"tmp_file_dir": "/srv/b"}, id="two-directories"),
        pytest.param({"storage": "s3://bucket/a"}, {"storage": "s3://bucket/b"}, id="two-prefixes"),
        pytest.param({"storage": "s3://one/a"}, {"storage": "s3://two/a"}, id="two-buckets"),
        pytest.param({"storage": "s3://bucket"}, {"tmp_file_dir": "/srv/bucket"},
                     id="s3-and-file"),
    ],
)
def test_two_filters_on_one_redis_never_share_keys(
    first: dict[str, str], second: dict[str, str]
) -> None:
    def namespace(options: dict[str, str]) -> str:
        return redis_namespace(Settings(redis_url="redis://localhost/0", **options))

    assert namespace(first) != namespace(second)
    assert not namespace(first).startswith(namespace(second) + ":")


@pytest.mark.parametrize(
    ("options", "namespace"),
    [
        pytest.param({"storage": "s3://bucket/up/"}, "tus_filter:s3://bucket/up", id="s3-url"),
        pytest.param({"storage": "s3://bucket/"}, "tus_filter:s3://bucket", id="s3-bucket"),
        pytest.param({"tmp_file_dir": "/srv/up"}, "tus_filter:/srv/up", id="file-directory"),
    ],
)
def test_redis_namespace(options: dict[str, str], namespace: str) -> None:
    assert redis_namespace(Settings(redis_url="redis://localhost/0", **options)) == namespace
