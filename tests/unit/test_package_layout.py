"""What may import what: services and shared/ never import the developer tool (ticketflow/), and shared/
holds only what at least two services use at run time. Read from the source with ast, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.config import SERVICE_PORTS
from ticketflow.cli import api_command

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (*SERVICE_PORTS, "portal")  # the four APIs and the portal, their web client
# Loaded by gunicorn from the command line (`-c python:shared.gunicorn_conf`), not by an import statement.
LOADED_BY_THE_API_COMMAND = "shared.gunicorn_conf"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth (imports inside functions too).

    `from a import b` yields both a and a.b, since b may be a module.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


SHARED_MODULES = {module_name(path): path for path in sources("shared") if path.name != "__init__.py"}


def shared_closure(start: set[str]) -> set[str]:
    """The shared modules reachable from the named modules through shared's own imports."""
    seen: set[str] = set()
    todo = [name for name in start if name in SHARED_MODULES]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [found for found in imported_modules(SHARED_MODULES[name]) if found in SHARED_MODULES]
    return seen


@pytest.mark.parametrize("path", sources("services") + sources("shared"), ids=lambda path: module_name(path))
def test_services_and_shared_never_import_the_developer_tool(path):
    tool = {name for name in imported_modules(path) if name == "ticketflow" or name.startswith("ticketflow.")}
    assert not tool, f"{module_name(path)} imports {sorted(tool)}: ticketflow/ is the developer tool"


def test_every_shared_module_is_used_by_at_least_two_services_at_run_time():
    assert LOADED_BY_THE_API_COMMAND in SHARED_MODULES
    assert f"python:{LOADED_BY_THE_API_COMMAND}" in api_command("intake", 8001)
    used_by: dict[str, set[str]] = {name: set() for name in SHARED_MODULES}
    for service in SERVICES:
        imports = set().union(*(imported_modules(path) for path in sources(f"services/{service}")))
        for name in shared_closure(imports | {LOADED_BY_THE_API_COMMAND}):
            used_by[name].add(service)
    lonely = {name: sorted(services) for name, services in used_by.items() if len(services) < 2}
    assert not lonely, f"shared/ modules fewer than two services use (move them to their service or the tool): {lonely}"


def test_every_service_has_a_folder():
    assert {path.name for path in (ROOT / "services").iterdir() if (path / "__init__.py").is_file()} == set(SERVICES)
