"""Suite-wide fixtures: the tus harness, real Redis and S3 servers, and headless Chromium.

``make_tus`` is ``tests.support.tus.tus_factory`` for the test's ``tmp_path``:
``make_tus(app=None, **options)`` gives a fresh ``Tus`` in its own directory;
``tus`` is one such with ``max_size=1000``.

For ``@pytest.mark.browser`` tests:

``browser`` (session) is one Chromium for the whole run; ``page`` gives each
test a fresh browser context and saves ``test-artifacts/<test>-failed.png``
when the test fails; ``screenshot(label)`` saves one on demand.  Without a
system Chromium the fixtures fail (they never skip): run ``make test``.

Real backing services (``tests.support.services``), each started on first
use and stopped at the end of the session, so only tests that use one pay:

``redis_server`` (session) is a ``RedisServer``; ``redis_url`` its URL.
``redis_namespace`` gives each test its own key prefix (a str) and deletes
its keys afterwards.  ``s3_endpoint`` (session) is a SeaweedFS S3 gateway
(``.url``, ``.stop()``, ``.start()`` on the same ports and data);
``s3_client`` a boto3 client for it, ``s3_bucket`` the name of a fresh bucket
that is removed with its contents afterwards (``backend_bucket``, one for the
session, is the one ``storage_backend`` tests share, each below its own prefix).
``s3_credentials`` puts the gateway's credentials in the environment for this test
only, where boto3's standard chain (and child processes) find them.  The
fixtures restart a server a test left stopped.

Hypothesis profiles: ``ci`` (the default) and ``long``, chosen by the
``TUS_FILTER_FUZZ`` environment variable (``make fuzz`` sets ``long``).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support import backend
from tests.support.browser import (
    CHROMIUM_MISSING,
    find_chromium,
    launch_chromium,
    save_screenshot,
)
from tests.support.services import (
    S3_REGION,
    RedisServer,
    SeaweedS3,
    empty_and_delete_bucket,
    use_credentials,
)
from tests.support.services import (
    s3_client as make_s3_client,
)

# WebOb 1.8 imports the stdlib cgi module, which warns on import since Python
# 3.11.  Import it once here with only that warning silenced, so the rest of
# the run keeps warnings-as-errors even under `pytest -W error`, which
# overrides ini-file filters.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    import webob  # noqa: F401

# Property tests (tests/test_properties.py): "ci" is short and the same on
# every run; "long" (`make fuzz`) explores many more examples and keeps the
# failures it finds in .hypothesis/ to replay them first next time.
settings.register_profile(
    "ci", max_examples=250, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("TUS_FILTER_FUZZ", "ci"))

# Only after the guard above: it imports WebTest, hence WebOb.
from tests.support.tus import Tus, tus_factory  # noqa: E402


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run ``storage_backend`` tests once per backend; ``filesystem`` ones on files only."""
    if "storage_backend" in metafunc.fixturenames:
        on_disk = metafunc.definition.get_closest_marker("filesystem") is not None
        metafunc.parametrize(
            "storage_backend", [backend.FILE] if on_disk else list(backend.BACKENDS),
            indirect=True,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the ``s3`` runs of ``filesystem`` cases marked in ``pytest.param(marks=...)``.

    Marks on a parameter reach the items only, after ``pytest_generate_tests``.
    """
    on_s3 = [
        item for item in items
        if getattr(item, "callspec", None) is not None
        and item.callspec.params.get("storage_backend") == backend.S3
        and item.get_closest_marker("filesystem") is not None
    ]
    if on_s3:
        config.hook.pytest_deselected(items=on_s3)
        dropped = set(map(id, on_s3))
        items[:] = [item for item in items if id(item) not in dropped]


@pytest.fixture
def storage_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend the filters of this test use (see tests/support/backend.py).

    On ``s3`` each test stores below a prefix of its own in one bucket of
    the session (SeaweedFS takes a fifth of a second to write the first
    object of a new bucket), and its Redis keys are deleted afterwards.
    """
    name: str = request.param
    if name == backend.FILE:
        yield name
        return
    request.getfixturevalue("s3_credentials")
    endpoint: SeaweedS3 = request.getfixturevalue("s3_endpoint")
    endpoint.start()  # in case an earlier test left it stopped
    redis_url: str = request.getfixturevalue("redis_url")
    storage = f"s3://{request.getfixturevalue('backend_bucket')}/{uuid.uuid4().hex[:16]}"
    options = {
        "storage": storage,
        "s3_endpoint_url": endpoint.url,
        "s3_region": S3_REGION,
        "redis_url": redis_url,
    }
    with backend.using(options):
        yield name
    request.getfixturevalue("redis_server").start()  # in case the test stopped it
    delete_redis_keys(redis_url, f"tus_filter:{storage}/*")


@pytest.fixture(scope="session")
def backend_bucket(s3_endpoint: SeaweedS3) -> Iterator[str]:
    """The bucket that ``storage_backend`` tests share, each below its own prefix."""
    bucket = f"tus-filter-{uuid.uuid4().hex[:16]}"
    client = make_s3_client(s3_endpoint.url)
    try:
        client.create_bucket(Bucket=bucket)
        yield bucket
        s3_endpoint.start()  # in case the last test stopped it
        empty_and_delete_bucket(client, bucket)
    finally:
        client.close()


@pytest.fixture
def make_tus(tmp_path: Path) -> Callable[..., Tus]:
    return tus_factory(tmp_path)


@pytest.fixture
def tus(make_tus: Callable[..., Tus]) -> Tus:
    return make_tus(max_size=1000)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_namespace(redis_server: RedisServer) -> Iterator[str]:
    namespace = f"tus_filter-test:{uuid.uuid4().hex}"
    yield namespace
    redis_server.start()  # in case the test stopped it
    delete_redis_keys(redis_server.url, f"{namespace}*")


def delete_redis_keys(url: str, pattern: str) -> None:
    """Delete the keys of the Redis server at ``url`` that match ``pattern``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_client(s3_endpoint: SeaweedS3) -> Iterator[Any]:
    s3_endpoint.start()  # in case an earlier test left it stopped
    client = make_s3_client(s3_endpoint.url)
    yield client
    client.close()


@pytest.fixture
def s3_bucket(s3_endpoint: SeaweedS3, s3_client: Any) -> Iterator[str]:
    bucket = f"tus-filter-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    yield bucket
    s3_endpoint.start()  # in case the test stopped it
    empty_and_delete_bucket(s3_client, bucket)


@pytest.fixture
def s3_credentials(s3_endpoint: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    use_credentials(monkeypatch, s3_endpoint)


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each test's call-phase report so ``page`` can see failures."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable_path = find_chromium()
    if executable_path is None:
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, executable_path)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is not None and report.failed:
        save_screenshot(page, request.node.nodeid + "-failed")
    context.close()


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``screenshot(label)`` saves ``test-artifacts/<test id>-<label>.png``."""
    return lambda label: save_screenshot(page, f"{request.node.nodeid}-{label}")
