"""catalog/asyncapi.json as the official AsyncAPI parser reads it: no error-severity diagnostic.

The parser is npm `@asyncapi/parser`, pinned by tests/interop/asyncapi/package-lock.json;
`make tools` installs it (hack/get-tools.sh: `npm ci --ignore-scripts`). Without node or the
package the test skips, and fails under SHOP_STRICT=1 (CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from catalog.asyncapi import DOCUMENT_FILE, load_document
from tests.conftest import REPO_ROOT, require

PARSER_DIR = REPO_ROOT / "tests" / "interop" / "asyncapi"
SCRIPT = PARSER_DIR / "parse.mjs"


def parse(path: Path) -> dict[str, Any]:
    """The parser's report on `path`: {"parsed": bool, "diagnostics": [...]}."""
    node = shutil.which("node")
    require(node is not None, "node is not installed -> `apt-get install nodejs npm`")
    require(
        (PARSER_DIR / "node_modules" / "@asyncapi" / "parser").is_dir(),
        "the AsyncAPI parser (tests/interop/asyncapi/node_modules) is not installed"
        " -> `make tools` (needs npm)",
    )
    assert node is not None
    result = subprocess.run(
        [node, str(SCRIPT), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def errors(report: dict[str, Any]) -> list[str]:
    return [
        f"{item['path']}: {item['message']} ({item['code']})"
        for item in report["diagnostics"]
        if item["severity"] == "error"
    ]


@pytest.mark.slow
def test_the_official_parser_reads_the_document_without_an_error() -> None:
    report = parse(DOCUMENT_FILE)
    assert errors(report) == []
    assert report["parsed"] is True


@pytest.mark.slow
def test_the_parser_reports_an_operation_whose_message_is_not_on_its_channel(
    tmp_path: Path,
) -> None:
    document = load_document()
    operation = document["operations"]["receive.inventory-order-created"]
    operation["messages"] = [{"$ref": "#/components/messages/order.created"}]
    broken = tmp_path / "asyncapi.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    report = parse(broken)
    assert report["parsed"] is False
    assert any(
        "operations.receive.inventory-order-created.messages" in problem
        and "asyncapi3-operation-messages-from-referred-channel" in problem
        for problem in errors(report)
    ), errors(report)
