"""The benchmarks run, so they cannot rot: smoke runs, no timings.

The smoke run of ``compare.py`` starts every system (the filter and the
ceiling under waitress and gunicorn, @tus/server under Node), sends every
workload once with tiny sizes, and fails unless every filter upload was
completed exactly once.  That of ``s3.py`` starts SeaweedFS and Redis, and
uploads 20 MiB with boto3 and through the filter on S3 in every workload.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT
from tests.support.services import processes_using

SCRIPT = REPO_ROOT / "benchmarks" / "compare.py"
S3_SCRIPT = REPO_ROOT / "benchmarks" / "s3.py"
WORKLOADS = ("tus-patch", "flow-1m", "flow-5m", "resumable-1m", "tus-64k")
PYTHON_SYSTEMS = [(system, server) for server in ("waitress", "gunicorn")
                  for system in ("ceiling", "filter")]


def _load_compare():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("compare", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(180)
def test_smoke_run_measures_every_system_under_every_workload(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=170, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    rows = {tuple(line.split()[:3]) for line in done.stdout.splitlines()}
    for workload in WORKLOADS:
        for system, server in PYTHON_SYSTEMS:
            assert (workload, system, server) in rows, done.stdout
        has_peer = (workload, "@tus/server", "node") in rows
        assert has_peer == workload.startswith("tus-"), done.stdout
    assert list(tmp_path.iterdir()) == []  # every server's storage removed


@pytest.mark.timeout(180)
def test_s3_smoke_run_measures_the_filter_against_boto3_and_counts_s3_requests(tmp_path):
    done = subprocess.run([sys.executable, str(S3_SCRIPT), "--smoke", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=170, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    timings, counts = done.stdout.split("\n\n")
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in timings.splitlines()}
    timed = [("tus-1-patch", "waitress"), ("tus-8m", "waitress"),
             ("tus-1-patch", "gunicorn"), ("tus-8m", "gunicorn")]
    for row in [("ceiling", "boto3"), *timed]:
        assert len(rows[row]) == 8, done.stdout  # the timing table's columns
    requests = {tuple(line.split()[:2]): line for line in counts.splitlines()}
    counted = [("tus-1m", "waitress"), ("flow-1m", "waitress"), ("flow-8m", "waitress")]
    for row in [("ceiling", "boto3"), *timed[:2], *counted]:
        assert "UploadPart" in requests[row], done.stdout
    assert "PutObject" in requests["flow-1m", "waitress"], done.stdout  # 1 MiB chunks staged
    assert processes_using(tmp_path) == []  # SeaweedFS and Redis stopped
    assert list(tmp_path.iterdir()) == []  # their data and the spool removed


@pytest.mark.parametrize(("size", "chunk", "layout"), [
    pytest.param(10, 4, [(0, 4), (4, 6)], id="last-chunk-takes-the-rest"),
    pytest.param(12, 4, [(0, 4), (4, 4), (8, 4)], id="exact-multiple"),
    pytest.param(3, 4, [(0, 3)], id="smaller-than-one-chunk"),
])
def test_chunks_are_cut_as_flowjs_and_resumablejs_cut_them(size, chunk, layout):
    assert _load_compare().chunk_layout(size, chunk) == layout
