"""Options: Python keyword arguments, Paste ini strings, and load-time failures."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from tests.paste.apps import hello_app, refuse_exe, user_header
from tus_filter import ConfigError, TusFilter, UploadHandler
from tus_filter.config import (
    _CONVERTERS,
    Options,
    Settings,
    options_from_strings,
    parse_size,
    remote_user,
)

PASTE = Path(__file__).parent / "paste"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("1048576", 1048576, id="plain-bytes"),
        pytest.param("512K", 512 * 1024, id="kibibytes"),
        pytest.param("500M", 500 * 1024**2, id="mebibytes"),
        pytest.param("2G", 2 * 1024**3, id="gibibytes"),
        pytest.param("2g", 2 * 1024**3, id="suffix-case-insensitive"),
        pytest.param("", None, id="empty-means-no-limit"),
        pytest.param("none", None, id="none-means-no-limit"),
    ],
)
def test_sizes_in_ini(raw: str, expected: int | None) -> None:
    assert parse_size(raw) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"max_size": "lots"}, "tus_filter: max_size: 'lots'", id="bad-size"),
        pytest.param({"max_sise": "1G"}, "tus_filter: max_sise: unknown option", id="unknown"),
        pytest.param({"lock_timeout": "soon"}, "tus_filter: lock_timeout: 'soon'", id="bad-float"),
        pytest.param({"behind_proxy": "maybe"}, "behind_proxy: 'maybe'", id="bad-bool"),
        pytest.param({"behind_proxy": "-1"}, "behind_proxy: '-1'", id="negative-proxy-count"),
        pytest.param({"upload_valid_duration": "1d"}, "upload_valid_duration: '1d'", id="bad-int"),
        pytest.param({"cleanup_interval": "hourly"}, "cleanup_interval: 'hourly'",
                     id="bad-interval"),
        pytest.param({"on_create": "nowhere"}, "on_create: 'nowhere'", id="hook-syntax"),
        pytest.param(
            {"on_create": "tests.paste.apps:missing"}, "on_create: 'tests.paste.apps:missing'",
            id="hook-missing",
        ),
    ],
)
def test_bad_ini_strings_name_the_option(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        options_from_strings(options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"upload_path": "files"}, "upload_path", id="relative-path"),
        pytest.param({"upload_path": "/"}, "upload_path", id="root-path"),
        pytest.param({"max_size": -1}, "max_size", id="negative-size"),
        pytest.param({"protocols": ["tus", "ftp"]}, "protocols", id="unknown-protocol"),
        pytest.param({"protocols": []}, "protocols", id="no-protocol"),
        pytest.param({"checksum_algorithms": ["md5"]}, "sha1", id="sha1-required"),
        pytest.param({"checksum_algorithms": ["sha1", "crc99"]}, "crc99", id="unknown-hash"),
        pytest.param({"lock_timeout": 0}, "lock_timeout", id="zero-timeout"),
        pytest.param({"on_create": "not callable"}, "on_create", id="hook-not-callable"),
        pytest.param({"scope": "REMOTE_USER"}, "scope", id="scope-not-callable"),
        pytest.param({"upload_valid_duration": -5}, "upload_valid_duration", id="negative-ttl"),
        pytest.param({"behind_proxy": -1}, "behind_proxy", id="negative-proxies"),
        pytest.param({"behind_proxy": "1"}, "behind_proxy", id="proxies-not-a-number"),
        pytest.param({"cleanup_interval": 0}, "cleanup_interval", id="zero-interval"),
        pytest.param({"cleanup_interval": -1.0}, "cleanup_interval", id="negative-interval"),
        pytest.param({"durability": "fast"}, "durability: 'fast' choose from strict, relaxed",
                     id="durability-unknown"),
        pytest.param({"durability": "Strict"}, "durability: 'Strict'",
                     id="durability-is-lowercase"),
    ],
)
def test_bad_keyword_options_fail_at_construction(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TusFilter(hello_app, tmp_file_dir=str(tmp_path), **kwargs)


REDIS = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"storage": "disk"}, "tus_filter: storage: 'disk' expected file or s3://",
                     id="storage-unknown"),
        pytest.param({"storage": "S3://bucket"}, "storage: 'S3://bucket' expected file or s3://",
                     id="storage-scheme-is-lowercase"),
        pytest.param({"storage": "s3://My_Bucket/x", "redis_url": REDIS},
                     "storage: 's3://My_Bucket/x' bucket names are 3-63", id="bucket-uppercase"),
        pytest.param({"storage": "s3://ab", "redis_url": REDIS}, "storage: 's3://ab' bucket names",
                     id="bucket-too-short"),
        pytest.param({"storage": "s3:///prefix", "redis_url": REDIS},
                     "storage: 's3:///prefix' bucket", id="bucket-missing"),
        pytest.param({"storage": "s3://bucket/a//b", "redis_url": REDIS},
                     "storage: 's3://bucket/a//b' the prefix must be", id="prefix-empty-segment"),
        pytest.param({"storage": "s3://bucket/a b", "redis_url": REDIS},
                     "storage: 's3://bucket/a b' the prefix must be", id="prefix-with-space"),
        pytest.param({"storage": "s3://bucket/uploads"},
                     "tus_filter: redis_url: required with storage = s3://bucket/uploads",
                     id="s3-requires-redis"),
        pytest.param({"redis_url": "http://127.0.0.1:6379"},
                     "redis_url: 'http://127.0.0.1:6379' expected redis://host or rediss://host",
                     id="redis-scheme"),
        pytest.param({"redis_url": "redis://"}, "redis_url: 'redis://' expected redis://host",
                     id="redis-without-host"),
        pytest.param({"redis_url": "redis://127.0.0.1:port/0"},
                     "redis_url: 'redis://127.0.0.1:port/0' is not a URL", id="redis-port"),
        pytest.param({"redis_url": "redis://127.0.0.1/zero"},
                     "redis_url: 'redis://127.0.0.1/zero' names no database", id="redis-database"),
        pytest.param({"redis_url": "redis://:hunter2@127.0.0.1/zero"},
                     r"redis_url: 'redis://:\*\*\*@127.0.0.1/zero' names no database",
                     id="redis-password-not-shown"),
        pytest.param({"storage": "s3://bucket", "redis_url": REDIS,
                      "s3_endpoint_url": "127.0.0.1:9000"},
                     "s3_endpoint_url: '127.0.0.1:9000' expected http://host or https://host",
                     id="endpoint-without-scheme"),
        pytest.param({"storage": "s3://bucket", "redis_url": REDIS,
                      "s3_endpoint_url": "http://key:secret@127.0.0.1:9000"},
                     "s3_endpoint_url: .* must not hold credentials", id="endpoint-credentials"),
        pytest.param({"s3_endpoint_url": "http://127.0.0.1:9000"},
                     "s3_endpoint_url: 'http://127.0.0.1:9000' is only for storage = s3://",
                     id="endpoint-without-s3"),
        pytest.param({"storage": "s3://bucket", "redis_url": REDIS, "s3_region": "eu west"},
                     "s3_region: 'eu west' expected a region name", id="region-name"),
        pytest.param({"s3_region": "eu-west-1"}, "s3_region: 'eu-west-1' is only for storage = s3",
                     id="region-without-s3"),
    ],
)
def test_bad_backend_options_fail_at_construction(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as failed:
        TusFilter(hello_app, tmp_file_dir=str(tmp_path), **kwargs)
    assert "hunter2" not in str(failed.value) and "secret@" not in str(failed.value)


@pytest.mark.parametrize(
    ("storage", "normalised", "location"),
    [
        pytest.param("file", "file", None, id="file"),
        pytest.param("s3://bucket/uploads", "s3://bucket/uploads", ("bucket", "uploads"),
                     id="bucket-and-prefix"),
        pytest.param("s3://bucket/a/b/", "s3://bucket/a/b", ("bucket", "a/b"),
                     id="trailing-slash-dropped"),
        pytest.param("s3://bucket", "s3://bucket", ("bucket", ""), id="no-prefix"),
        pytest.param("s3://bucket/", "s3://bucket", ("bucket", ""), id="empty-prefix"),
        pytest.param("s3://my.bucket-1//up", "s3://my.bucket-1/up", ("my.bucket-1", "up"),
                     id="leading-slash-dropped"),
    ],
)
def test_storage_locations(storage: str, normalised: str, location: tuple[str, str] | None) -> None:
    settings = Settings(storage=storage, redis_url=REDIS)
    assert settings.storage == normalised
    assert settings.s3_location == location


def test_backend_options_in_ini() -> None:
    assert options_from_strings({
        "storage": " s3://bucket/up ", "s3_endpoint_url": " http://127.0.0.1:9000 ",
        "s3_region": "", "redis_url": "rediss://cache.example:6380/2",
    }) == {
        "storage": "s3://bucket/up", "s3_endpoint_url": "http://127.0.0.1:9000",
        "s3_region": None, "redis_url": "rediss://cache.example:6380/2",
    }


def test_redis_password_stays_out_of_repr() -> None:
    settings = Settings(redis_url="redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(settings)


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings()
    assert settings.upload_path == "/files"
    assert settings.tmp_file_dir == os.path.join(tempfile.gettempdir(), "tus_filter")
    assert settings.max_size is None
    assert settings.upload_valid_duration == 86400
    assert settings.protocols == ("ietf", "tus", "uid", "flowjs", "resumablejs")  # the registry
    assert settings.checksum_algorithms == ("sha1", "md5", "sha256", "sha512")
    assert settings.lock_timeout == 10.0
    assert settings.cors_origins == ()
    assert settings.behind_proxy == 0
    assert settings.send_file is False
    assert settings.scope is remote_user
    assert settings.bind_to_scope is False
    assert settings.cleanup_interval is None
    assert settings.storage == "file"
    assert settings.s3_location is None
    assert settings.s3_endpoint_url is None
    assert settings.s3_region is None
    assert settings.redis_url is None
    assert settings.durability == "strict"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("2", 2, id="count"),
        pytest.param("1", 1, id="one"),
        pytest.param("true", 1, id="true-means-one"),
        pytest.param("yes", 1, id="yes-means-one"),
        pytest.param("0", 0, id="zero-ignores-forwarding"),
        pytest.param("false", 0, id="false-ignores-forwarding"),
        pytest.param(" 3 ", 3, id="spaces"),
    ],
)
def test_behind_proxy_in_ini(raw: str, expected: int) -> None:
    assert options_from_strings({"behind_proxy": raw}) == {"behind_proxy": expected}


def test_behind_proxy_true_in_python_means_one(tmp_path: Path) -> None:
    app = TusFilter(hello_app, tmp_file_dir=str(tmp_path), behind_proxy=True)
    assert app.settings.behind_proxy == 1
    assert type(app.settings.behind_proxy) is int


@pytest.mark.parametrize(
    ("options", "interval"),
    [
        pytest.param({}, 600.0, id="default-ten-minutes-at-most"),
        pytest.param({"upload_valid_duration": 2}, 1.0, id="half-a-short-lifetime"),
        pytest.param({"upload_valid_duration": 1000}, 500.0, id="half-below-ten-minutes"),
        pytest.param({"cleanup_interval": 30.0}, 30.0, id="cleanup-interval-wins"),
        pytest.param(
            {"upload_valid_duration": 2, "cleanup_interval": 3600.0}, 3600.0,
            id="cleanup-interval-even-above-the-lifetime",
        ),
    ],
)
def test_sweep_interval(options: dict[str, Any], interval: float) -> None:
    assert Settings(**options).sweep_interval == interval


def test_trailing_slash_on_upload_path_is_ignored(tmp_path: Path) -> None:
    app = TusFilter(hello_app, upload_path="/up/", tmp_file_dir=str(tmp_path))
    assert app.settings.upload_path == "/up"


def test_filter_with_ini_passes_every_option(tmp_path: Path) -> None:
    app = loadapp(f"config:{PASTE / 'filter_with.ini'}", global_conf={"tmp_dir": str(tmp_path)})
    assert isinstance(app, TusFilter)
    settings = app.settings
    assert settings.upload_path == "/uploads"
    assert settings.tmp_file_dir == str(tmp_path / "filter-with")
    assert settings.max_size == 2 * 1024**3
    assert settings.upload_valid_duration == 3600
    assert settings.cleanup_interval == 120.0
    assert settings.protocols == ("tus", "flowjs")
    assert settings.checksum_algorithms == ("sha1", "sha256")
    assert settings.lock_timeout == 2.5
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.behind_proxy == 1
    assert settings.send_file is False
    assert settings.on_create is refuse_exe
    assert settings.scope is user_header
    assert settings.bind_to_scope is True
    assert settings.durability == "relaxed"
    assert TestApp(app).get("/").text == "hello from the app"


def test_pipeline_ini_wraps_the_app(tmp_path: Path) -> None:
    app = loadapp(f"config:{PASTE / 'pipeline.ini'}", global_conf={"tmp_dir": str(tmp_path)})
    assert isinstance(app, TusFilter)
    assert (tmp_path / "pipeline").is_dir()
    assert TestApp(app).get("/elsewhere").text == "hello from the app"


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        pytest.param("bad_option.ini", "tus_filter: max_size: 'lots'", id="bad-value"),
        pytest.param("unknown_option.ini", "tus_filter: max_sise: unknown option", id="unknown"),
    ],
)
def test_bad_ini_fails_at_loadapp(ini: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        loadapp(f"config:{PASTE / ini}")


def test_every_setting_is_an_option_of_code_and_ini() -> None:
    """One name, three doors: keyword options (UploadHandler, TusFilter) and ini strings."""
    settings = {field.name for field in dataclasses.fields(Settings)}
    assert set(Options.__annotations__) == settings
    assert set(_CONVERTERS) == settings


def test_handler_takes_the_filters_options(tmp_path: Path) -> None:
    options = {"upload_path": "/up", "tmp_file_dir": str(tmp_path), "max_size": 10,
               "protocols": ["tus"], "cors_origins": "*"}
    handler, edge = UploadHandler(**options), TusFilter(hello_app, **options)
    assert handler.settings == edge.settings
    with pytest.raises(ConfigError, match="max_sise"):
        UploadHandler(max_sise=1)
