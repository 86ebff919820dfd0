"""The filter on S3 against boto3's own upload, and the S3 requests an upload costs.

    .venv/bin/python benchmarks/s3.py [--rounds 3] [--size 1024] [--smoke]
                                      [--servers waitress,gunicorn] [--profile DIR]

Starts a SeaweedFS S3 gateway and a Redis server as the tests do
(``tests/support/services.py``), in a scratch directory, on free ports, and
stops both by their PIDs at the end.  Then, in alternating rounds (round 1
of every system, then round 2, ...), each in a fresh bucket:

* ``ceiling``: boto3's ``upload_fileobj`` of the file to the gateway, in a
  process of its own (default ``TransferConfig``: 8 MiB parts, 10 threads),
  the same client configuration as the filter's;
* ``tus-1-patch``: the filter (``storage = s3://…``, ``redis_url``) under
  each of ``--servers`` (``benchmarks/bench_server.py``: waitress, which
  reads a body whole before the application sees it, and gunicorn's
  ``gthread`` worker, which streams it), one tus upload of the file in one
  PATCH, sent by the client of ``benchmarks/compare.py``;
* ``tus-8m``: the same in 8 MiB PATCHes.

Once, after the rounds, under the first of ``--servers``, for the S3
requests they cost: tus in 1 MiB PATCHes, and flow.js multipart chunks of
1 MiB and 8 MiB (3 in parallel).

Columns: median and fastest wall time (the ceiling's from its first request
to ``upload_fileobj``'s return, the filter's from the creation POST to the
last answer); MiB/s of the fastest round; CPU seconds of the uploading
process (the filter's server, or boto3's process), median; its peak RSS
above idle, worst round; CPU seconds of SeaweedFS, median; ``ratio``, the
ceiling's fastest time over the system's (1.0 is as fast as boto3); and the
S3 requests sent, counted in the uploading process by a botocore
``before-send`` hook (retries included), scaled to 1 GiB.

``--profile DIR`` instead runs the two timed filter workloads once each under
each server with py-spy attached to it and prints where its samples go.
Not part of the test run but for ``--smoke``: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import compare
from compare import MIB, Lane, RssSampler, System, Workload, cpu_seconds, process_tree, rss_bytes

# The servers of the tests, started the same way (the checkout's root is not
# on the path of a script run from benchmarks/).
sys.path.insert(0, str(compare.REPO))
from tests.support.services import (  # noqa: E402
    S3_REGION,
    WEED,
    RedisServer,
    SeaweedS3,
    empty_and_delete_bucket,
    s3_client,
)

GIB = 1024 * MIB
CEILING = ("ceiling", "boto3")  # a row of the tables: (upload, server)
COUNT_ENV = "TUS_FILTER_BENCH_COUNT_S3"


class BenchSeaweed(SeaweedS3):
    """The tests' gateway with volumes that hold a few uploads each (not 64 MiB)."""

    VOLUME_SIZE_MB = 4096


def timed_workloads(size: int) -> list[Workload]:
    return [Workload("tus-1-patch", "tus", size, size), Workload("tus-8m", "tus", size, 8 * MIB)]


def counted_workloads(size: int) -> list[Workload]:
    return [Workload("tus-1m", "tus", size, MIB), Workload("flow-1m", "flow", size, MIB),
            Workload("flow-8m", "flow", size, 8 * MIB)]


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_above_idle: int
    weed_cpu: float
    s3_requests: Counter[str]


class Bench:
    """The running services, the source file, and one fresh bucket per measurement."""

    def __init__(self, seaweed: SeaweedS3, redis: RedisServer, source: Path, scratch: Path):
        self.seaweed = seaweed
        self.redis = redis
        self.source = source
        self.scratch = scratch
        self.admin = s3_client(seaweed.url)

    def bucket(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:12]}"
        self.admin.create_bucket(Bucket=name)
        return name

    def drop(self, bucket: str) -> None:
        empty_and_delete_bucket(self.admin, bucket)
        os.sync()  # no write-back of this run's objects during the next one

    def weed_cpu(self) -> float:
        assert self.seaweed.pid is not None
        return cpu_seconds(process_tree(self.seaweed.pid))

    def filter_system(self, bucket: str, server: str = "waitress") -> System:
        return System("filter", server, (
            f"storage=s3://{bucket}/uploads", f"s3_endpoint_url={self.seaweed.url}",
            f"s3_region={S3_REGION}", f"redis_url={self.redis.url}",
        ))

    def measure(self, workload: Workload, server: str = "waitress") -> Sample:
        bucket = self.bucket()
        try:
            return self._measure_filter(workload, self.filter_system(bucket, server))
        finally:
            self.drop(bucket)

    def _measure_filter(self, workload: Workload, system: System) -> Sample:
        with compare.served(system, self.scratch) as (process, port):
            pids = process_tree(process.pid)
            idle = rss_bytes(pids)
            counted_before = s3_requests(port)
            cpu_before, weed_before = cpu_seconds(pids), self.weed_cpu()
            with open(self.source, "rb") as source:
                wall, peak, lanes = compare.run_lanes(workload, port, source.fileno(), process.pid)
            cpu = cpu_seconds(process_tree(process.pid)) - cpu_before
            weed = self.weed_cpu() - weed_before
            counted = s3_requests(port) - counted_before
        completions = sum(lane.completions for lane in lanes)
        if completions != workload.uploads:
            raise compare.BenchError(f"{workload.name}: {completions} completions")
        return Sample(wall, cpu, max(peak - idle, 0), weed, counted)

    def measure_ceiling(self, size: int) -> Sample:
        bucket = self.bucket()
        command = [sys.executable, __file__, "--upload-fileobj", self.seaweed.url, bucket,
                   str(self.source), str(size)]
        uploader = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
        assert uploader.stdin is not None and uploader.stdout is not None
        try:
            if uploader.stdout.readline() != "ready\n":
                raise compare.BenchError(f"{command!r} did not start")
            idle = rss_bytes([uploader.pid])
            cpu_before, weed_before = cpu_seconds([uploader.pid]), self.weed_cpu()
            sampler = RssSampler(uploader.pid)
            sampler.start()
            uploader.stdin.write("go\n")
            uploader.stdin.flush()
            answer = json.loads(uploader.stdout.readline())
            peak = sampler.stop()
            cpu = cpu_seconds([uploader.pid]) - cpu_before
            weed = self.weed_cpu() - weed_before
        finally:
            uploader.stdin.close()
            if uploader.wait(30):
                raise compare.BenchError(f"{command!r} exited with {uploader.returncode}")
            uploader.stdout.close()
            self.drop(bucket)
        return Sample(answer["wall"], cpu, max(peak - idle, 0), weed,
                      Counter(answer["requests"]))


def s3_requests(port: int) -> Counter[str]:
    """The S3 requests the filter's server has sent so far, by operation."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/bench/s3-requests")
        return Counter(json.loads(connection.getresponse().read()))
    finally:
        connection.close()


def upload_fileobj(endpoint: str, bucket: str, source: str, size: str) -> None:
    """The ceiling's process: ``ready``, wait for a line, upload, print wall time and requests."""
    client = s3_client(endpoint)
    counted: Counter[str] = Counter()
    client.meta.events.register(
        "before-send.s3", lambda event_name, **_: counted.update([event_name.rsplit(".", 1)[-1]]))
    print("ready", flush=True)
    sys.stdin.readline()
    with open(source, "rb") as body:
        assert os.fstat(body.fileno()).st_size == int(size)
        started = time.perf_counter()
        client.upload_fileobj(body, bucket, "ceiling")
        wall = time.perf_counter() - started
    print(json.dumps({"wall": wall, "requests": counted}), flush=True)
    sys.stdin.read()  # until the parent has read this process's CPU time
    client.close()


# -- the report ---------------------------------------------------------------------------------


def table(results: dict[tuple[str, str], list[Sample]], size: int) -> str:
    header = (f"{'upload':12} {'server':9} {'median s':>9} {'fastest s':>9} {'MiB/s':>7} "
              f"{'CPU s':>6} {'RSS+ MiB':>8} {'weed CPU s':>10} {'ratio':>6} {'S3 req/GiB':>10}")
    lines = [header, "-" * len(header)]
    ceiling = min(s.wall for s in results[CEILING])
    for (name, server), samples in results.items():
        fastest = min(s.wall for s in samples)
        lines.append(
            f"{name:12} {server:9} {statistics.median(s.wall for s in samples):>9.3f} "
            f"{fastest:>9.3f} {size / MIB / fastest:>7.1f} "
            f"{statistics.median(s.cpu for s in samples):>6.2f} "
            f"{max(s.rss_above_idle for s in samples) / MIB:>8.1f} "
            f"{statistics.median(s.weed_cpu for s in samples):>10.2f} "
            f"{ceiling / fastest:>6.2f} {per_gib(samples[0].s3_requests, size):>10.0f}")
    return "\n".join(lines)


def requests_table(results: dict[tuple[str, str], Sample], size: int) -> str:
    header = f"{'upload':12} {'server':9} {'S3 req/GiB':>10} {'S3 req':>7}  by operation"
    lines = [header, "-" * 78]
    for (name, server), sample in results.items():
        operations = ", ".join(f"{operation} {n}" for operation, n in
                               sorted(sample.s3_requests.items(), key=lambda item: -item[1]))
        lines.append(f"{name:12} {server:9} {per_gib(sample.s3_requests, size):>10.0f} "
                     f"{sum(sample.s3_requests.values()):>7}  {operations}")
    return "\n".join(lines)


def per_gib(requests: Counter[str], size: int) -> float:
    return sum(requests.values()) * GIB / size


def machine() -> str:
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    weed = subprocess.run([str(WEED), "version"], capture_output=True,
                          text=True).stdout.split("\n")[0].strip()
    load = os.getloadavg()[0]
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs, "
            f"{int(memory) // 1024} MiB RAM, load {load:.2f} at the start; Python "
            f"{platform.python_version()}, waitress {version('waitress')}, boto3 "
            f"{version('boto3')}, redis-py {version('redis')}; {weed}")


# -- profiling ------------------------------------------------------------------------------------


def profile(bench: Bench, workload_list: list[Workload], out: Path, server: str) -> None:
    """Each workload once against the filter with py-spy attached; where the samples go."""
    out.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    for workload in workload_list:
        stacks = out / f"s3-{server}-{workload.name}.pyspy"
        bucket = bench.bucket()
        try:
            system = bench.filter_system(bucket, server)
            with compare.served(system, bench.scratch) as (process, port):
                worker = process_tree(process.pid)[-1]  # gunicorn: its worker
                tool = subprocess.Popen(
                    [str(spy), "record", "--rate", "250", "--format", "raw", "--nonblocking",
                     "--threads", "--output", str(stacks), "--pid", str(worker)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)  # py-spy attaches
                with open(bench.source, "rb") as source:
                    lanes = [Lane(port, source.fileno()) for _ in range(workload.lanes)]
                    try:
                        workload.run(lanes)
                    finally:
                        for lane in lanes:
                            lane.close()
                        tool.send_signal(2)  # SIGINT: py-spy writes its samples
                        tool.wait(60)
        finally:
            bench.drop(bucket)
        print(f"\n== filter on S3 under {server}, {workload.name}")
        print(compare.summarise(stacks))


# -- the command --------------------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:2] == ["--upload-fileobj"]:
        upload_fileobj(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=float, default=1024, help="MiB of the uploaded file")
    parser.add_argument("--smoke", action="store_true",
                        help="1 round of 20 MiB: checks that everything runs")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="for the servers' data and spool files (a real disk, not tmpfs)")
    parser.add_argument("--servers", default=",".join(compare.SERVERS),
                        help="comma separated subset of waitress,gunicorn")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="profile the filter with py-spy instead; raw stacks go to DIR")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.size = 1, 20
    servers = args.servers.split(",")
    if not servers or not set(servers) <= set(compare.SERVERS):
        parser.error(f"--servers: a subset of {','.join(compare.SERVERS)}")
    size = int(args.size * MIB)
    with tempfile.TemporaryDirectory(prefix="bench-s3-", dir=args.dir) as scratch:
        base = Path(scratch)
        (base / "seaweedfs").mkdir()
        (base / "redis").mkdir()
        seaweed, redis = BenchSeaweed(base / "seaweedfs"), RedisServer(base / "redis")
        environ = {**seaweed.credentials_environ(), COUNT_ENV: "1",
                   "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                   "AWS_EC2_METADATA_DISABLED": "true"}
        os.environ.update(environ)  # for the servers the benchmark starts
        description = ""
        try:
            seaweed.start()
            redis.start()
            description = machine()
            os.close(compare.make_source(base, size))
            bench = Bench(seaweed, redis, base / "source.bin", base)
            if args.profile:
                for server in servers:
                    profile(bench, timed_workloads(size), args.profile, server)
                return
            timed: dict[tuple[str, str], list[Sample]] = {CEILING: []}
            for number in range(1, args.rounds + 1):
                timed[CEILING].append(bench.measure_ceiling(size))
                for server in servers:
                    for workload in timed_workloads(size):
                        timed.setdefault((workload.name, server), []).append(
                            bench.measure(workload, server))
                print(f"round {number}/{args.rounds} done", file=sys.stderr, flush=True)
            counted = {row: samples[0] for row, samples in timed.items()
                       if row == CEILING or row[1] == servers[0]}
            for workload in counted_workloads(size):
                counted[workload.name, servers[0]] = bench.measure(workload, servers[0])
        finally:
            redis.stop()
            seaweed.stop()
    print(description)
    print(f"{args.rounds} rounds of {args.size:g} MiB; waitress threads=4, gunicorn one gthread "
          "worker with threads=4; SeaweedFS and Redis on the same machine")
    print(table(timed, size))
    print()
    print(requests_table(counted, size))


if __name__ == "__main__":
    main()
