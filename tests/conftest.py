"""Suite-wide fixtures: the tus harness, and headless Chromium for browser tests.

``make_tus`` is ``tests.support.tus.tus_factory`` for the test's ``tmp_path``:
``make_tus(app=None, **options)`` gives a fresh ``Tus`` in its own directory;
``tus`` is one such with ``max_size=1000``.

For ``@pytest.mark.browser`` tests:

``browser`` (session) is one Chromium for the whole run; ``page`` gives each
test a fresh browser context and saves ``test-artifacts/<test>-failed.png``
when the test fails; ``screenshot(label)`` saves one on demand.  Without a
system Chromium the fixtures fail (they never skip): run ``make test``.

Hypothesis profiles: ``ci`` (the default) and ``long``, chosen by the
``TUS_FILTER_FUZZ`` environment variable (``make fuzz`` sets ``long``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import (
    CHROMIUM_MISSING,
    find_chromium,
    launch_chromium,
    save_screenshot,
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


@pytest.fixture
def make_tus(tmp_path: Path) -> Callable[..., Tus]:
    return tus_factory(tmp_path)


@pytest.fixture
def tus(make_tus: Callable[..., Tus]) -> Tus:
    return make_tus(max_size=1000)


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
