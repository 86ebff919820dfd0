"""The package depends on what it imports, and the glue imports the core, never the reverse.

``install_requires`` must name exactly the distributions whose modules
something in ``tus_filter/`` imports: PasteDeploy, waitress and the example
frameworks are extras.  ``egg:tus_filter#main`` is loaded from every ini in
``test_examples.py`` and ``test_config.py``.
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "tus_filter"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(level, module)`` for each import statement in ``path`` (level 0: absolute)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def third_party_distributions() -> set[str]:
    distributions = packages_distributions()
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for level, module in imports_of(path):
            top = module.split(".")[0]
            if level or top in sys.stdlib_module_names or top in ("_typeshed", "tus_filter"):
                continue
            names.update(name.lower() for name in distributions[top])
    return names


def install_requires() -> set[str]:
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].strip().splitlines()
    return {re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0].lower() for line in lines}


def test_install_requires_is_what_the_package_imports() -> None:
    assert install_requires() == third_party_distributions() == {"webob", "multipart"}


def test_settings_do_not_import_the_wsgi_edge() -> None:
    """config.py is the core's settings; filter.py and paste.py are glue over it."""
    modules = {module for _, module in imports_of(PACKAGE / "config.py")}
    assert not modules & {"filter", "paste", "handler"}
    assert "paste" not in {module for _, module in imports_of(PACKAGE / "filter.py")}
