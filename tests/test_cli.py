"""``python -m tus_filter cleanup CONFIG.ini[#name]``, run as cron would: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.apps import RecordingApp
from tus_filter import TusFilter
from tus_filter.storage import UploadRecord

ROOT = Path(__file__).resolve().parent.parent

FILTER_WITH = """\
[app:main]
use = call:tests.paste.apps:hello_app_factory
filter-with = upload

[filter:upload]
use = egg:tus_filter#main
tmp_file_dir = %(here)s/store
upload_valid_duration = 60
"""

PIPELINE = """\
[pipeline:main]
pipeline = upload hello

[filter:upload]
use = egg:tus_filter#main
tmp_file_dir = %(here)s/store
upload_valid_duration = 60

[app:hello]
use = call:tests.paste.apps:hello_app_factory
"""

TWO_FILTERS = PIPELINE.replace("pipeline = upload hello", "pipeline = upload other hello") + """
[filter:other]
use = egg:tus_filter#main
tmp_file_dir = %(here)s/other
"""

NO_FILTER = """\
[app:main]
use = call:tests.paste.apps:hello_app_factory
"""

BAD_OPTION = FILTER_WITH + "max_size = lots\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tus_filter", *args],
        capture_output=True, text=True, env=environment, timeout=60, check=False,
    )


def seed(store: Path, *, expired: int, live: int) -> None:
    """Uploads as a serving process left them: some expired, some alive."""
    storage = TusFilter(RecordingApp(), tmp_file_dir=str(store)).storage
    for index in range(expired + live):
        record = UploadRecord(upload_id=storage.new_id(), protocol="tus", length=10)
        if index < expired:
            record.touched -= 3600
        storage.create(record)


def stored(store: Path) -> int:
    return len(list((store / "uploads").glob("*/*")))


@pytest.mark.parametrize(
    ("ini", "fragment", "expired", "printed"),
    [
        pytest.param(FILTER_WITH, "", 2, "2 expired uploads removed\n", id="filter-with"),
        pytest.param(PIPELINE, "", 1, "1 expired upload removed\n", id="pipeline"),
        pytest.param(PIPELINE, "#upload", 2, "2 expired uploads removed\n",
                     id="pipeline-named-section"),
        pytest.param(TWO_FILTERS, "#upload", 2, "2 expired uploads removed\n",
                     id="one-of-two-filters-named"),
    ],
)
def test_cleanup_removes_expired_uploads_and_prints_how_many(
    tmp_path: Path, ini: str, fragment: str, expired: int, printed: str
) -> None:
    config = tmp_path / "site.ini"
    config.write_text(ini)
    seed(tmp_path / "store", expired=expired, live=1)
    done = run("cleanup", f"{config}{fragment}")
    assert (done.returncode, done.stdout, done.stderr) == (0, printed, "")
    assert stored(tmp_path / "store") == 1
    again = run("cleanup", f"{config}{fragment}")
    assert (again.returncode, again.stdout) == (0, "0 expired uploads removed\n")


@pytest.mark.parametrize(
    ("ini", "argument", "message"),
    [
        pytest.param(None, "missing.ini", "missing.ini: no such file", id="no-such-file"),
        pytest.param(NO_FILTER, "site.ini", "found 0 tus_filter filters", id="no-tus-filter"),
        pytest.param(
            TWO_FILTERS, "site.ini", "found 2 tus_filter filters ([filter:upload], "
            "[filter:other]); name one as CONFIG.ini#name", id="two-filters-unnamed",
        ),
        pytest.param(PIPELINE, "site.ini#nosuch", "nosuch", id="unknown-section"),
        pytest.param(BAD_OPTION, "site.ini", "tus_filter: max_size: 'lots'", id="bad-option"),
    ],
)
def test_cleanup_errors_exit_non_zero_with_the_reason(
    tmp_path: Path, ini: str | None, argument: str, message: str
) -> None:
    if ini is not None:
        (tmp_path / "site.ini").write_text(ini)
    done = run("cleanup", str(tmp_path / argument))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("tus_filter cleanup: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cleanup_needs_a_config_argument() -> None:
    done = run("cleanup")
    assert done.returncode == 2
    assert "CONFIG.ini" in done.stderr
