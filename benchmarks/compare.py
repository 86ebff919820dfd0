"""The filter side by side with the ceiling and @tus/server, per workload.

    .venv/bin/python benchmarks/compare.py [--rounds 5] [--smoke] [--profile DIR]

Systems, each started fresh for every round on a free 127.0.0.1 port and
stopped by its PID (``bench_server.py``, ``tus_node_server.mjs``):

* ``filter``: ``TusFilter`` under waitress and under gunicorn (gthread), with
  the default ``durability = strict``; ``filter-relaxed`` the same with
  ``durability = relaxed``;
* ``ceiling``: a WSGI app that streams each request body into a new file,
  under the same two servers;
* ``@tus/server`` (with ``@tus/file-store``, versions pinned in
  package-lock.json) under Node, for the tus workloads.

Workloads (sizes from the options):

* ``tus-patch``: one tus upload, created by a POST and sent in one PATCH;
* ``flow-1m`` / ``flow-5m``: flow.js multipart chunks (form fields, then the
  file part), 3 in parallel on 3 keep-alive connections, no test requests;
* ``resumable-1m``: resumable.js ``method: 'octet'`` chunks (parameters in
  the query string, the chunk as the body), 3 in parallel;
* ``tus-64k``: 3 tus uploads in parallel, each one keep-alive connection
  sending 64 KiB PATCHes.

The client is the same for every system: ``http.client``, one keep-alive
connection per parallel lane, each body streamed from one pre-generated file
in 256 KiB blocks.  The ceiling receives byte for byte the same requests
(creation POSTs and multipart bodies included) and treats every one as a
body to store.  Rounds alternate: round 1 of every system, then round 2, ...

For every (workload, system, server): median and fastest wall time; MiB/s
and requests/s of the fastest round; server CPU seconds (utime + stime of
the server's processes, from /proc, median); peak server RSS above its idle
RSS (sampled from /proc every 10 ms, worst round); and ``ratio``, the
ceiling's fastest wall time under the same server divided by the system's
(@tus/server: the waitress ceiling's).  1.0 is as fast as the ceiling.

Then the completion run: one file of each ``--completion-sizes`` (64 MiB
and 2 GiB by default) in resumable.js octet chunks of 8 MiB, 3 in parallel,
against each filter; it prints the median chunk request's time and that of
the request that stored the last chunk and completed the upload.  Equal
times at both sizes mean completion costs nothing that grows with the file.

``--profile DIR`` instead runs every workload once against the filter under
each server with py-spy attached and prints where the server's samples go.
Not part of the test run: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1024 * 1024
BLOCK = 256 * 1024
LANES = 3
SERVERS = ("waitress", "gunicorn")
FILTERS = ("filter", "filter-relaxed")  # durability = strict (the default), relaxed
NODE = "node"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
READY_TIMEOUT = 30.0


class BenchError(Exception):
    """A system answered something other than a success, or did not start."""


# -- the client ---------------------------------------------------------------


class Lane:
    """One keep-alive connection sending bodies streamed from ``source``."""

    def __init__(self, port: int, source: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.source = source
        self.requests = 0
        self.completions = 0
        self.timings: list[tuple[float, bool]] = []  # per request: seconds, completed an upload

    def send(self, method: str, path: str, headers: dict[str, str], offset: int = 0,
             length: int = 0, prefix: bytes = b"", suffix: bytes = b"") -> http.client.HTTPResponse:
        connection = self.connection
        started = time.perf_counter()
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(prefix) + length + len(suffix)))
        connection.endheaders()
        if prefix:
            connection.send(prefix)
        end = offset + length
        while offset < end:
            block = os.pread(self.source, min(BLOCK, end - offset), offset)
            if not block:
                raise BenchError("the source file is shorter than the body")
            connection.send(block)
            offset += len(block)
        if suffix:
            connection.send(suffix)
        response = connection.getresponse()
        response.read()
        self.requests += 1
        if not 200 <= response.status < 300:
            raise BenchError(f"{method} {path}: {response.status} {response.reason}")
        completed = bool(response.getheader("X-Bench-Completed"))
        self.completions += completed
        self.timings.append((time.perf_counter() - started, completed))
        return response

    def close(self) -> None:
        self.connection.close()


TUS = {"Tus-Resumable": "1.0.0"}


def tus_upload(lane: Lane, start: int, size: int, chunk: int) -> None:
    created = lane.send("POST", "/files", {**TUS, "Upload-Length": str(size)})
    path = urlsplit(created.getheader("Location", "")).path
    offset = 0
    while offset < size:
        length = min(chunk, size - offset)
        lane.send("PATCH", path, {
            **TUS, "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        }, start + offset, length)
        offset += length


def chunk_layout(size: int, chunk: int) -> list[tuple[int, int]]:
    """(offset, length) of each chunk as flow.js and resumable.js cut them by
    default: ``max(size // chunk, 1)`` chunks, the last one taking the rest."""
    count = max(size // chunk, 1)
    return [(n * chunk, chunk if n < count - 1 else size - n * chunk) for n in range(count)]


def flow_multipart(params: dict[str, str], boundary: str) -> tuple[bytes, bytes]:
    """The multipart body around one flow.js chunk: (before the bytes, after)."""
    fields = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in params.items()
    )
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return fields + head, f"\r\n--{boundary}--\r\n".encode()


def chunk_params(prefix: str, number: int, chunk: int, length: int, size: int, count: int,
                 identifier: str) -> dict[str, str]:
    return {
        f"{prefix}ChunkNumber": str(number), f"{prefix}ChunkSize": str(chunk),
        f"{prefix}CurrentChunkSize": str(length), f"{prefix}TotalSize": str(size),
        f"{prefix}Identifier": identifier, f"{prefix}Filename": "bench.bin",
        f"{prefix}RelativePath": "bench.bin", f"{prefix}TotalChunks": str(count),
    }


def chunked_upload(lanes: list[Lane], size: int, chunk: int, multipart: bool,
                   source_size: int | None = None) -> None:
    """One file in flow.js (multipart) or resumable.js (octet) chunks, the
    chunks taken in order by ``len(lanes)`` parallel senders.  With
    ``source_size`` the bodies come from the source file round robin (chunk
    ``n`` from ``n * chunk % source_size``), for files larger than it."""
    layout = chunk_layout(size, chunk)
    identifier = f"bench-{time.time_ns()}"
    boundary = "----benchboundary7MA4YWxkTrZu0gW"
    queue = iter(list(enumerate(layout, start=1)))
    taking = threading.Lock()

    def send_one(lane: Lane, number: int, offset: int, length: int) -> None:
        if source_size is not None:
            offset = (number - 1) * chunk % max(source_size - length, 1)
        if multipart:
            params = chunk_params("flow", number, chunk, length, size, len(layout), identifier)
            prefix, suffix = flow_multipart(params, boundary)
            lane.send("POST", "/files", {
                "Content-Type": f"multipart/form-data; boundary={boundary}"
            }, offset, length, prefix, suffix)
        else:
            params = chunk_params("resumable", number, chunk, length, size, len(layout), identifier)
            params["resumableType"] = "application/octet-stream"
            lane.send("POST", f"/files?{urlencode(params)}",
                      {"Content-Type": "application/octet-stream"}, offset, length)

    def take() -> tuple[int, tuple[int, int]] | None:
        with taking:
            return next(queue, None)

    in_parallel(lanes, lambda lane: _drain(lane, take, send_one))


def _drain(lane: Lane, take: Callable[[], tuple[int, tuple[int, int]] | None],
           send_one: Callable[[Lane, int, int, int], None]) -> None:
    while (item := take()) is not None:
        number, (offset, length) = item
        send_one(lane, number, offset, length)


def in_parallel(lanes: list[Lane], work: Callable[[Lane], None]) -> None:
    errors: list[BaseException] = []

    def run(lane: Lane) -> None:
        try:
            work(lane)
        except BaseException as error:  # reported by the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@dataclass(frozen=True)
class Workload:
    """What the client sends: ``uploads`` files, or one chunked file."""

    name: str
    kind: str  # "tus", "flow" or "resumable"
    size: int  # bytes per upload
    chunk: int  # bytes per request
    uploads: int = 1

    @property
    def total(self) -> int:
        return self.size * self.uploads

    @property
    def lanes(self) -> int:
        return self.uploads if self.kind == "tus" else LANES

    def run(self, lanes: list[Lane]) -> None:
        if self.kind == "tus":
            in_parallel(lanes, lambda lane: tus_upload(
                lane, lanes.index(lane) * self.size, self.size, self.chunk))
        else:
            chunked_upload(lanes, self.size, self.chunk, multipart=self.kind == "flow")


def workloads(tus_size: int, chunked_size: int, small_requests: int) -> list[Workload]:
    small = 64 * 1024
    per_lane = max(small_requests // LANES, 1)
    return [
        Workload("tus-patch", "tus", tus_size, tus_size),
        Workload("flow-1m", "flow", chunked_size, MIB),
        Workload("flow-5m", "flow", chunked_size, 5 * MIB),
        Workload("resumable-1m", "resumable", chunked_size, MIB),
        Workload("tus-64k", "tus", per_lane * small, small, uploads=LANES),
    ]


# -- the servers --------------------------------------------------------------


@dataclass(frozen=True)
class System:
    name: str  # "filter", "ceiling" or "@tus/server"
    server: str  # "waitress", "gunicorn" or "node"
    options: tuple[str, ...] = ()  # the filter's, as NAME=VALUE (benchmarks/s3.py)

    def command(self, port: int, directory: str) -> list[str]:
        if self.server == NODE:
            return ["node", str(HERE / "tus_node_server.mjs"), str(port), directory]
        return [sys.executable, str(HERE / "bench_server.py"), self.server, self.name,
                str(port), directory, *self.options]

    def serves(self, workload: Workload) -> bool:
        return self.server != NODE or workload.kind == "tus"

    @property
    def checks_completion(self) -> bool:
        return self.name.startswith("filter")


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for parent in pids:
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except FileNotFoundError:
                continue
            pids.extend(int(child) for child in children)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except FileNotFoundError:
            continue
    return total


class RssSampler(threading.Thread):
    """The largest RSS of a process tree, sampled every 10 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.01):
            self.peak = max(self.peak, rss_bytes(process_tree(self.pid)))

    def stop(self) -> int:
        self.stopping.set()
        self.join()
        return self.peak


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(system: System, base: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start ``system`` fresh with an empty storage directory; stop it by PID."""
    directory = Path(tempfile.mkdtemp(prefix="bench-", dir=base))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(system.command(port, str(directory)), cwd=REPO, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_ready(process, port)
        yield process, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)
        shutil.rmtree(directory, ignore_errors=True)
        os.sync()  # no write-back of this run's files during the next one


def wait_ready(process: subprocess.Popen[bytes], port: int) -> None:
    """Until one HTTP request gets an answer (gunicorn: from its worker)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{process.args!r} exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/ready")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
        finally:
            connection.close()
    raise BenchError(f"{process.args!r} did not answer within {READY_TIMEOUT} s")


# -- measuring ----------------------------------------------------------------


@dataclass
class Round:
    wall: float
    cpu: float
    rss_above_idle: int
    requests: int


@dataclass
class Results:
    rounds: dict[tuple[str, System], list[Round]] = field(default_factory=dict)

    def add(self, workload: Workload, system: System, result: Round) -> None:
        self.rounds.setdefault((workload.name, system), []).append(result)


def run_lanes(
    workload: Workload, port: int, source: int, server_pid: int
) -> tuple[float, int, list[Lane]]:
    """Run ``workload`` over fresh lanes to ``port``: wall time, peak server RSS, the lanes.

    The lanes are closed on return; their counters stay readable.
    """
    sampler = RssSampler(server_pid)
    sampler.start()
    lanes = [Lane(port, source) for _ in range(workload.lanes)]
    try:
        started = time.perf_counter()
        workload.run(lanes)
        wall = time.perf_counter() - started
    finally:
        peak = sampler.stop()
        for lane in lanes:
            lane.close()
    return wall, peak, lanes


def measure(workload: Workload, system: System, source: int, base: Path) -> Round:
    with served(system, base) as (process, port):
        pids = process_tree(process.pid)
        idle = rss_bytes(pids)
        cpu_before = cpu_seconds(pids)
        wall, peak, lanes = run_lanes(workload, port, source, process.pid)
        cpu = cpu_seconds(process_tree(process.pid)) - cpu_before
    expected = workload.uploads
    completions = sum(lane.completions for lane in lanes)
    if system.checks_completion and completions != expected:
        raise BenchError(f"{workload.name} on {system}: {completions} completions, "
                         f"expected {expected}")
    return Round(wall, cpu, max(peak - idle, 0), sum(lane.requests for lane in lanes))


def make_source(directory: Path, size: int) -> int:
    """A file of ``size`` random bytes (written once) opened for reading."""
    path = directory / "source.bin"
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            out.write(block)
            left -= len(block)
    return os.open(path, os.O_RDONLY)


def table(results: Results, workload_list: list[Workload]) -> str:
    header = (f"{'workload':13} {'system':14} {'server':9} {'median s':>9} {'fastest s':>9} "
              f"{'MiB/s':>7} {'req/s':>7} {'CPU s':>6} {'CPU x':>6} {'RSS+ MiB':>8} {'ratio':>6}")
    lines = [header, "-" * len(header)]
    for workload in workload_list:
        entries = [(system, rounds) for (name, system), rounds in results.rounds.items()
                   if name == workload.name]
        ceilings = {system.server: rounds for system, rounds in entries
                    if system.name == "ceiling"}
        for system, rounds in entries:
            fastest = min(r.wall for r in rounds)
            cpu = statistics.median(r.cpu for r in rounds)
            ceiling = ceilings.get(system.server if system.server != NODE else "waitress")
            ratio = _ratio(min(r.wall for r in ceiling), fastest) if ceiling else NAN
            cpu_x = _ratio(cpu, statistics.median(r.cpu for r in ceiling)) if ceiling else NAN
            requests = rounds[0].requests
            lines.append(
                f"{workload.name:13} {system.name:14} {system.server:9} "
                f"{statistics.median(r.wall for r in rounds):>9.3f} {fastest:>9.3f} "
                f"{workload.total / MIB / fastest:>7.1f} "
                f"{(f'{requests / fastest:.0f}' if requests > 2 else '-'):>7} "
                f"{cpu:>6.2f} {cpu_x:>6.2f} "
                f"{max(r.rss_above_idle for r in rounds) / MIB:>8.1f} {ratio:>6.2f}")
    return "\n".join(lines)


NAN = float("nan")


def _ratio(a: float, b: float) -> float:
    """``a / b``; NaN when ``b`` is too small to measure (CPU time counts 10 ms ticks)."""
    return a / b if b > 0 else NAN


def machine() -> str:
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    versions = []
    for package in ("waitress", "gunicorn"):
        from importlib.metadata import version
        versions.append(f"{package} {version(package)}")
    tus = [f"{name} {_npm_version(name)}" for name in ("@tus/server", "@tus/file-store")]
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs, "
            f"{int(memory) // 1024} MiB RAM; Python {platform.python_version()}, Node {node}; "
            + ", ".join(versions + tus))


def _npm_version(name: str) -> str:
    import json
    manifest = REPO / "node_modules" / name / "package.json"
    return str(json.loads(manifest.read_text())["version"])


# -- completion cost ----------------------------------------------------------

COMPLETION_CHUNK = 8 * MIB


@dataclass(frozen=True)
class Completion:
    size: int
    chunks: int
    median_chunk: float  # seconds of a request that only stores its chunk
    completing: float  # seconds of the request that stored the last chunk and completed


def measure_completion(system: System, size: int, source: int, source_size: int,
                       base: Path) -> Completion:
    """One file of ``size`` bytes in resumable.js octet chunks of 8 MiB, 3 in
    parallel; the completing request's time against the other requests'."""
    with served(system, base) as (_process, port):
        lanes = [Lane(port, source) for _ in range(LANES)]
        try:
            chunked_upload(lanes, size, COMPLETION_CHUNK, multipart=False,
                           source_size=source_size)
        finally:
            for lane in lanes:
                lane.close()
    timings = [timing for lane in lanes for timing in lane.timings]
    completing = [seconds for seconds, completed in timings if completed]
    if len(completing) != 1:
        raise BenchError(f"completion run on {system}: {len(completing)} completions")
    others = [seconds for seconds, completed in timings if not completed]
    return Completion(size, len(timings), statistics.median(others), completing[0])


def completion_table(results: list[tuple[System, Completion]]) -> str:
    header = (f"{'system':14} {'server':9} {'file MiB':>9} {'chunks':>7} "
              f"{'chunk ms':>9} {'last ms':>8}")
    lines = [header, "-" * len(header)]
    for system, result in results:
        lines.append(f"{system.name:14} {system.server:9} {result.size / MIB:>9.0f} "
                     f"{result.chunks:>7} {result.median_chunk * 1000:>9.1f} "
                     f"{result.completing * 1000:>8.1f}")
    return "\n".join(lines)


# -- profiling ----------------------------------------------------------------


def profile(workload_list: list[Workload], source: int, base: Path, out: Path,
            servers: list[str]) -> None:
    """Each workload against the filter under each server, twice: once with
    py-spy attached (where the time goes), once with strace counting the
    system calls (how many fsyncs, opens, renames... per request)."""
    out.mkdir(parents=True, exist_ok=True)
    tools = Path(sys.executable).parent
    for system in [System(name, server) for server in servers for name in FILTERS]:
        server = system.server
        for workload in workload_list:
            stacks = out / f"{system.name}-{server}-{workload.name}.pyspy"
            calls = out / f"{system.name}-{server}-{workload.name}.strace"
            requests = 0
            for command in (
                [str(tools / "py-spy"), "record", "--rate", "500", "--format", "raw",
                 "--nonblocking", "--output", str(stacks), "--pid"],
                ["strace", "-f", "-c", "-w", "-o", str(calls), "-p"],
            ):
                with served(system, base) as (process, port):
                    worker = process_tree(process.pid)[-1]  # gunicorn: the worker
                    tool = subprocess.Popen([*command, str(worker)], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
                    time.sleep(1.0)  # the tool attaches
                    lanes = [Lane(port, source) for _ in range(workload.lanes)]
                    try:
                        workload.run(lanes)
                    finally:
                        for lane in lanes:
                            lane.close()
                        tool.send_signal(signal.SIGINT)
                        tool.wait(60)
                    requests = sum(lane.requests for lane in lanes)
            print(f"\n== {system.name} under {server}, {workload.name}: {requests} requests")
            print(summarise(stacks))
            print(syscalls(calls, requests))


def summarise(raw: Path, top: int = 12) -> str:
    """Where the busy samples are: by innermost frame (self), and by the
    filter's own frames (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[_short(frames[-1], line=True)] += int(count)
        for frame in {_short(frame) for frame in frames}:
            if "tus_filter/" in frame:
                inclusive[frame] += int(count)
    share = lambda counter: "\n".join(  # noqa: E731
        f"  {100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top))
    return (f"{total} busy samples; self time by innermost frame:\n{share(own)}\n"
            f"inclusive time in tus_filter frames:\n{share(inclusive)}")


def _short(frame: str, line: bool = False) -> str:
    """``name (file)``, or ``name (file:line)``, with the file below its root."""
    name, _, where = frame.partition(" (")
    path, _, number = where.rstrip(")").rpartition(":")
    for marker in ("site-packages/", "lib/python3.11/", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path}:{number})" if line else f"{name} ({path})"


WAITS = {"futex", "epoll_wait", "epoll_pwait", "poll", "select", "pselect6", "wait4"}


def syscalls(summary: Path, requests: int) -> str:
    """The system calls of ``strace -c -w`` but those that only wait for
    events (``clock_nanosleep`` stays: the filter's lock back-off): wall
    seconds in each, and calls per request."""
    rows = []
    for line in summary.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            seconds, calls, name = float(parts[1]), int(parts[3]), parts[-1]
            if name not in WAITS:
                rows.append((seconds, calls, name))
    rows.sort(reverse=True)
    return "system calls (strace -c -w: wall seconds, calls per request):\n" + "\n".join(
        f"  {name:16} {seconds:8.3f} s {calls / max(requests, 1):8.2f}"
        for seconds, calls, name in rows[:14])


# -- the command --------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tus-size", type=float, default=256, help="MiB of the tus-patch upload")
    parser.add_argument("--chunked-size", type=float, default=120,
                        help="MiB of the file sent in flow.js / resumable.js chunks")
    parser.add_argument("--small-requests", type=int, default=768,
                        help="64 KiB requests of tus-64k (over 3 connections)")
    parser.add_argument("--completion-sizes", default="64,2048",
                        help="MiB of the files whose completion is timed (comma separated)")
    parser.add_argument("--smoke", action="store_true",
                        help="1 round of tiny sizes: checks that everything runs")
    parser.add_argument("--servers", default=",".join(SERVERS + (NODE,)),
                        help="comma separated subset of waitress,gunicorn,node")
    parser.add_argument("--workloads", default="",
                        help="comma separated subset of names (completion: the completion run)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the servers store uploads (a real disk, not tmpfs)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="profile the filter with py-spy instead; raw stacks go to DIR")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.tus_size, args.chunked_size, args.small_requests = 1, 2, 10, 12
        args.completion_sizes = "24,40"
    workload_list = workloads(int(args.tus_size * MIB), int(args.chunked_size * MIB),
                              args.small_requests)
    completion_sizes = [int(float(size) * MIB) for size in args.completion_sizes.split(",")]
    if args.workloads:
        chosen = args.workloads.split(",")
        workload_list = [w for w in workload_list if w.name in chosen]
        if "completion" not in chosen:
            completion_sizes = []
    servers = args.servers.split(",")
    systems = [System(name, server) for server in SERVERS if server in servers
               for name in ("ceiling", *FILTERS)]
    if NODE in servers:
        systems.append(System("@tus/server", NODE))

    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.dir) as scratch:
        base = Path(scratch)
        source_size = max([w.total for w in workload_list] + [2 * COMPLETION_CHUNK]) + MIB
        source = make_source(base, source_size)
        try:
            if args.profile:
                profile(workload_list, source, base, args.profile,
                        [s for s in SERVERS if s in servers])
                return
            results = Results()
            for number in range(1, args.rounds + 1):
                for workload in workload_list:
                    for system in systems:
                        if system.serves(workload):
                            results.add(workload, system, measure(workload, system, source, base))
                print(f"round {number}/{args.rounds} done", file=sys.stderr, flush=True)
            completions = [
                (system, measure_completion(system, size, source, source_size, base))
                for system in systems if system.name.startswith("filter")
                for size in completion_sizes
            ]
        finally:
            os.close(source)
    print(machine())
    print(f"{args.rounds} rounds; tus-patch {args.tus_size:g} MiB, chunked {args.chunked_size:g}"
          f" MiB, tus-64k {args.small_requests} requests")
    if workload_list:
        print(table(results, workload_list))
    if completions:
        print("\ncompletion: resumable.js octet chunks of 8 MiB, 3 in parallel, one run each;"
              " median request against the completing one")
        print(completion_table(completions))


if __name__ == "__main__":
    main()
