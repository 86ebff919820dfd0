"""Live servers for tests: waitress in a thread or in several processes, and gunicorn.

Every context manager yields base URLs without a trailing slash
(``http://127.0.0.1:PORT``) on an ephemeral loopback port, and on exit stops
everything it started: sockets, threads, processes and pipes, so that a
test run with ``-W error`` sees no ``ResourceWarning``.  waitress buffers
each request body before the app runs; gunicorn streams it, which is what
tests of stalled and vanishing clients need.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any

import waitress
from waitress import wasyncore

from . import REPO_ROOT

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

THREADS = 8
STOP_TIMEOUT = 10.0
LOOP_POLL = 0.05  # seconds the serve() loop waits for sockets before it looks at its stop flag
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for a gunicorn master
_LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


@contextmanager
def serve(app: WSGIApplication) -> Iterator[str]:
    """Serve ``app`` with waitress on 127.0.0.1 from a daemon thread.

    Yields the base URL.  On exit, requests already being served run to the
    end (raising if one is still running after ``STOP_TIMEOUT``); then the
    listening socket, open connections and the loop thread are closed.
    """
    socket_map: dict[int, Any] = {}
    server = waitress.create_server(app, map=socket_map, host="127.0.0.1", port=0, threads=THREADS)
    stopping = threading.Event()
    loop = threading.Thread(
        target=_run_loop, args=(server, socket_map, stopping), name="waitress-loop", daemon=True
    )
    loop.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Stop the task threads first, while the loop still runs: a task
        # thread touches its channel and the trigger until its last line
        # (HTTPChannel.service pulls the trigger after the response, which
        # the client may already have read).  Closing them under it writes
        # to a closed, or reused, descriptor (EBADF).
        server.task_dispatcher.shutdown(timeout=STOP_TIMEOUT)
        still_serving = bool(server.task_dispatcher.threads)
        stopping.set()
        loop.join(STOP_TIMEOUT)
        if still_serving:
            raise RuntimeError("a waitress task thread was still serving a request")
        if loop.is_alive():
            raise RuntimeError("waitress loop did not stop")


def _run_loop(server: Any, socket_map: dict[int, Any], stopping: threading.Event) -> None:
    """waitress's asyncore loop until ``stopping`` is set; then close every dispatcher.

    The loop is not thread-safe, so only this thread touches the dispatchers,
    and it sees the stop within ``LOOP_POLL`` seconds by itself.  serve()
    used to stop it by pulling waitress's trigger from the test's thread,
    and now and then (about one full run in three) that write found the
    trigger's pipe closed (EBADF), by a closer never found; the stop no
    longer depends on the pipe.
    """
    while socket_map and not stopping.is_set():
        wasyncore.loop(
            timeout=LOOP_POLL, map=socket_map, use_poll=server.adj.asyncore_use_poll, count=1
        )
    _close_all(server, socket_map)


def _close_all(server: Any, socket_map: dict[int, Any]) -> None:
    server.close()  # the listening socket and the trigger
    for channel in list(socket_map.values()):
        channel.handle_close()  # unlike close(), also releases its buffers
    socket_map.clear()


@contextmanager
def serve_processes(
    target: str | os.PathLike[str],
    kwargs: Mapping[str, Any] | None = None,
    *,
    workers: int = 2,
    private: Callable[[int], Mapping[str, Any]] | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[list[str]]:
    """Serve the same app from ``workers`` separate processes.

    ``target`` is either a ``"package.module:callable"`` factory spec, called
    as ``callable(**kwargs)``, or the path of a PasteDeploy ``.ini`` file whose
    ``main`` app is loaded with ``kwargs`` as ``global_conf`` (strings).
    ``kwargs`` must be JSON-serialisable: it crosses a process boundary.
    ``private(i)``, if given, adds worker ``i``'s own kwargs (a
    ``tmp_file_dir`` of its own, say).  The workers inherit this process's
    environment (credentials a fixture put there, for one).

    Yields one base URL per process, each on its own port.  Processes share
    nothing but the filesystem and the services their options name, which is
    what cross-process tests exercise.
    On exit each worker's stdin is closed (it then shuts down cleanly) and
    stragglers are terminated, then killed.
    """
    with ExitStack() as stack:
        processes = []
        for index in range(workers):
            options = {**(kwargs or {}), **(private(index) if private is not None else {})}
            command = [sys.executable, "-m", "tests.support.worker", os.fspath(target)]
            command.append(json.dumps(options))
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            stack.callback(_stop, process)
            processes.append(process)
        deadline = time.monotonic() + startup_timeout
        yield [_read_base_url(process, deadline) for process in processes]


def _read_base_url(process: subprocess.Popen[str], deadline: float) -> str:
    """Wait for the worker's one stdout line: its base URL."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(max(0.0, deadline - time.monotonic())):
            raise RuntimeError(f"worker {process.args!r} did not start in time")
    line = process.stdout.readline().strip()
    if not line.startswith("http://"):
        code = process.wait(STOP_TIMEOUT)
        raise RuntimeError(
            f"worker {process.args!r} exited with {code} before listening "
            "(its stderr is in the captured output)"
        )
    return line


def _stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None and process.stdout is not None
    with suppress(BrokenPipeError):  # the worker is already gone
        process.stdin.close()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.stdout.close()


@contextmanager
def serve_gunicorn(
    target: str,
    kwargs: Mapping[str, Any] | None = None,
    *,
    threads: int = 4,
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """Serve ``target(**kwargs)`` with one gunicorn gthread worker on 127.0.0.1.

    ``target`` is a ``"package.module:factory"`` spec; ``kwargs`` must be
    Python literals (gunicorn parses the call).  gunicorn loads the app,
    binds an ephemeral port and logs it; this yields that base URL.  On exit
    the master (by PID) gets SIGTERM, then SIGKILL after ``KILL_GRACE``
    seconds.  Its log goes to a temporary file, printed when the server stops
    (pytest shows it for a failed test).
    """
    call = f"{target}({', '.join(f'{k}={v!r}' for k, v in (kwargs or {}).items())})"
    command = [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gthread", "--workers", "1", "--threads", str(threads),
        "--bind", "127.0.0.1:0", "--graceful-timeout", "1", "--log-level", "info",
        "--no-control-socket",  # one per home directory: parallel test servers would share it
        "--preload",  # load the app before listening, so a broken one fails the start
        call,
    ]
    with tempfile.TemporaryFile() as log, ExitStack() as stack:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=log)
        stack.callback(lambda: print(_log_text(log)))
        stack.callback(_terminate, process)
        yield _await_listening(process, log, time.monotonic() + startup_timeout)


def _log_text(log: IO[bytes]) -> str:
    """What the server logged so far (``pread``: the server shares the file offset)."""
    fd = log.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")


def _await_listening(process: subprocess.Popen[bytes], log: IO[bytes], deadline: float) -> str:
    """The URL gunicorn logs once it listens."""
    while time.monotonic() < deadline:
        found = _LISTENING.search(_log_text(log))
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before listening")
        time.sleep(0.05)
    raise RuntimeError("gunicorn did not listen in time")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
