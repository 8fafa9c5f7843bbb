"""app/ is the domain: it imports no adapter (GraphQL, the scheduler, the CLI, the server)."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
ADAPTERS = ("graphql_schema", "jobs", "tally", "strawberry", "graphql", "apscheduler", "starlette")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_domain_imports_no_adapter():
    offenders = sorted(
        f"{path.relative_to(APP.parent)}: {name}"
        for path in APP.rglob("*.py")
        for name in imported(path)
        if name.split(".")[0] in ADAPTERS
    )
    assert offenders == []


def test_no_module_of_app_is_over_400_lines():
    long = {
        str(path.relative_to(APP.parent)): n
        for path in APP.rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}
