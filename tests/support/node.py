"""Run Node scripts against the client libraries pinned in package-lock.json.

A script reports by printing one JSON value as the last line of its stdout;
anything before that line is free-form logging.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from . import REPO_ROOT

NODE_MODULES = REPO_ROOT / "node_modules"


def require_node_modules() -> None:
    """Raise ``RuntimeError`` telling what to run if ``node_modules`` is missing."""
    if not NODE_MODULES.is_dir():
        raise RuntimeError(f"{NODE_MODULES} is missing: run `make test` (it runs `npm ci`)")


class NodeScriptError(RuntimeError):
    """A Node script failed; the message carries its exit code and output."""


def run_node(
    script: str | os.PathLike[str],
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Any:
    """Run ``node script *args`` from the repository root; return its JSON.

    ``NODE_PATH`` points at the repository's ``node_modules`` so scripts
    anywhere can ``require()`` the pinned libraries; ``env`` adds to (and
    overrides) the inherited environment.  Raises ``NodeScriptError`` on a
    non-zero exit or when the last stdout line is not JSON,
    ``subprocess.TimeoutExpired`` after ``timeout`` seconds, and
    ``RuntimeError`` when node or ``node_modules`` is missing.
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: install Node.js >= 20, then run `make test`")
    require_node_modules()
    result = subprocess.run(
        [node, os.fspath(script), *args],
        cwd=REPO_ROOT,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.returncode != 0:
        raise NodeScriptError(f"node {script} exited with {result.returncode}\n{output}")
    lines = result.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise NodeScriptError(f"node {script}: last stdout line is not JSON\n{output}") from None
