"""Several worker processes sharing one upload directory.

The parent binds one listening socket, then forks ``--workers`` processes
that each serve it with waitress (``waitress.serve(app, sockets=[sock])``);
the kernel hands every new connection to one of them.  Each process builds
its own ``TusFilter`` on the same ``tmp_file_dir``: the filter's per-upload
``flock`` locks serialise the requests of one upload across processes, so
the chunks of one upload may land on different workers and the application
is still called exactly once per upload.  gunicorn or mod_wsgi with several
processes work the same way; what matters is the one shared ``tmp_file_dir``.

From the repository root::

    python -m examples.workers --workers 4   # http://127.0.0.1:8080/files

``GET /`` says which process answered.  Ctrl+C, or SIGTERM to the parent,
stops them all.  Finished files land in ``<directory>/received`` (default
``examples/var/workers/received``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import waitress

from .wsgi_app import make_application

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "var" / "workers"
THREADS = 8

log = logging.getLogger("examples.workers")


def run_worker(sock: socket.socket, directory: Path) -> None:
    """In a forked child: serve ``sock`` until signalled, then leave the process."""
    code = 1
    try:
        # Built after the fork: each process has its own filter and threads.
        waitress.serve(make_application(directory), sockets=[sock], threads=THREADS)
        code = 0
    except (SystemExit, KeyboardInterrupt):
        code = 0
    except Exception:
        log.exception("worker %d failed", os.getpid())
    finally:
        os._exit(code)  # never return into the parent's code


def stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: leave through ``SystemExit``, which waitress stops cleanly on.

    Further SIGTERMs are ignored, so they cannot interrupt the shutdown.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)


def supervise(pids: list[int]) -> int:
    """Wait for the workers; when one exits, or the parent is told to stop, stop all.

    Returns the parent's exit status: 0 if it was told to stop, 1 if a
    worker died on its own.
    """
    status = 0
    try:
        # WNOWAIT leaves the dead worker unreaped until the loops below: a
        # SIGTERM arriving just after the wait must not make them signal a
        # reaped pid (ProcessLookupError, or another process that reused it).
        dead = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        log.error("worker %d exited; stopping the others", dead.si_pid)
        status = 1
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        for pid in pids:
            os.waitpid(pid, 0)
    return status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(name)s %(message)s")

    signal.signal(signal.SIGTERM, stop)  # before forking: the workers inherit it
    sock = socket.create_server((args.host, args.port))
    host, port = sock.getsockname()[:2]
    pids = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            run_worker(sock, args.directory)
        pids.append(pid)
    sock.close()  # the workers hold it open
    print(f"serving http://{host}:{port}/files with {args.workers} worker processes "
          f"({', '.join(map(str, pids))}); finished files land in {args.directory / 'received'}",
          flush=True)
    sys.exit(supervise(pids))


if __name__ == "__main__":
    main()
