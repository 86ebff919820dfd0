"""Throughput and server memory for large uploads, per protocol.

Starts the filter under waitress in a separate process, uploads generated
files of growing size through tus (one PATCH, and 8 MiB PATCHes), flow.js-style
octet chunks, and uid multipart chunks, and prints MB/s and the server's peak
resident memory (VmHWM) after each size.  Memory that does not grow with the
file size is the point: every body is streamed in blocks.

    .venv/bin/python benchmarks/upload_memory_throughput.py [--sizes 64,256,1024]

Not part of the test run: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

MIB = 1024 * 1024
BLOCK = MIB
CHUNK = 8 * MIB
SERVER = """
import sys, waitress
from tus_filter import TusFilter

def app(environ, start_response):
    upload = environ.get("tus_filter.upload")
    if upload is not None:
        import os
        os.unlink(upload.path)  # the benchmark measures transfer, not the app
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]

server = waitress.create_server(
    TusFilter(app, tmp_file_dir=sys.argv[1], max_size=None),
    host="127.0.0.1", port=0, threads=4, max_request_body_size=1 << 40,
)
print(server.effective_port, flush=True)
server.run()
"""


class Ranged(io.RawIOBase):
    """The bytes ``[start, start + length)`` of the pattern, as a sized, streamed body.

    ``requests`` sends a body with ``len()`` and ``read()`` with that
    ``Content-Length`` and in blocks, never whole.
    """

    def __init__(self, start: int, length: int):
        self._block = hashlib.sha256(b"tus_filter").digest() * (BLOCK // 32)
        self._position = start
        self._left = length
        self._length = length

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        offset = self._position % BLOCK
        piece = self._block[offset : offset + min(size, BLOCK - offset)]
        self._position += len(piece)
        self._left -= len(piece)
        return piece


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tus_upload(base: str, size: int, chunk: int | None) -> None:
    headers = {"Tus-Resumable": "1.0.0"}
    created = requests.post(f"{base}/files", headers={**headers, "Upload-Length": str(size)})
    created.raise_for_status()
    url = created.headers["Location"]
    offset = 0
    step = chunk or size
    while offset < size:
        length = min(step, size - offset)
        response = requests.patch(
            url,
            data=Ranged(offset, length),
            headers={**headers, "Upload-Offset": str(offset),
                     "Content-Type": "application/offset+octet-stream"},
        )
        response.raise_for_status()
        offset = int(response.headers["Upload-Offset"])


def flow_upload(base: str, size: int) -> None:
    count = max(size // CHUNK, 1)
    identifier = f"bench-{size}-{time.time_ns()}"
    for number in range(1, count + 1):
        start = (number - 1) * CHUNK
        length = CHUNK if number < count else size - start
        params = {
            "flowChunkNumber": number, "flowChunkSize": CHUNK, "flowCurrentChunkSize": length,
            "flowTotalSize": size, "flowIdentifier": identifier, "flowFilename": "bench.bin",
            "flowRelativePath": "bench.bin", "flowTotalChunks": count,
        }
        response = requests.post(f"{base}/files", params=params, data=Ranged(start, length),
                                 headers={"Content-Type": "application/octet-stream"})
        response.raise_for_status()


def uid_upload(base: str, size: int) -> None:
    count = max(-(-size // CHUNK), 1)
    uid = ""
    for number in range(count):
        start = number * CHUNK
        length = min(CHUNK, size - start)
        body = Ranged(start, length).readall()  # one chunk: the client holds it, not the server
        response = requests.post(
            f"{base}/files",
            data={"uploadUid": uid, "fileName": "bench.bin", "totalSize": size,
                  "chunkNumber": number, "chunkCount": count},
            files={"content": ("bench.bin", body)},
        )
        response.raise_for_status()
        uid = response.json()["uploadUid"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,256,1024", help="file sizes in MiB")
    args = parser.parse_args()
    sizes = [int(s) * MIB for s in args.sizes.split(",")]
    runs = {
        "tus, one PATCH": lambda base, size: tus_upload(base, size, None),
        "tus, 8 MiB PATCHes": lambda base, size: tus_upload(base, size, CHUNK),
        "flow.js octet, 8 MiB chunks": flow_upload,
        "uid multipart, 8 MiB chunks": uid_upload,
    }
    print(f"{'protocol':32} {'size':>9} {'MB/s':>8} {'server peak RSS':>16}")
    for name, run in runs.items():
        with tempfile.TemporaryDirectory() as directory:
            server = subprocess.Popen([sys.executable, "-c", SERVER, directory],
                                      stdout=subprocess.PIPE, text=True)
            try:
                assert server.stdout is not None
                base = f"http://127.0.0.1:{server.stdout.readline().strip()}"
                for size in sizes:
                    started = time.perf_counter()
                    run(base, size)
                    elapsed = time.perf_counter() - started
                    print(f"{name:32} {size // MIB:>6} MiB {size / MIB / elapsed:>8.1f} "
                          f"{peak_rss_mib(server.pid):>12.1f} MiB", flush=True)
            finally:
                server.terminate()
                server.wait(10)
    os.sync()


if __name__ == "__main__":
    main()
