"""The dev tool stands apart from the services: what they share lives in wire/ (or kit/)."""

from __future__ import annotations

import ast

from tests.conftest import REPO_ROOT


def imported_modules(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_no_module_of_the_dev_tool_imports_a_service() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: imports {module}"
        for path in sorted((REPO_ROOT / "shop").rglob("*.py"))
        for module in imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        if module == "services" or module.startswith("services.")
    ]
    assert offenders == []
