"""A catch-all handler may take data as the bytes that arrived, unparsed and unchecked."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, KitConfig, SchemaRegistry, Transaction, create_service
from tests.support.events import binary_request

SCHEMAS = SchemaRegistry({"t.typed": {"type": "object", "required": ["x"]}})


@pytest.mark.parametrize("raw_data", [True, False])
def test_raw_data_skips_parsing_and_schema_checks_only_when_asked(
    tmp_path: Path, raw_data: bool
) -> None:
    handlers = HandlerSet()
    seen: list[object] = []

    @handlers.on_any(raw_data=raw_data)
    def keep(event: CloudEvent, tx: Transaction) -> None:
        seen.append(event.get_data())

    config = KitConfig("raw", f"sqlite:///{tmp_path}/raw.db", "/shop/raw", relay_enabled=False)
    client = (
        create_service("raw", handlers, config=config, schemas=SCHEMAS).start().app.test_client()
    )
    headers, _ = binary_request("t.typed", {})
    broken = client.post("/", headers=headers, data=b"{not json")
    headers, body = binary_request("t.typed", {"y": 1})
    off_schema = client.post("/", headers=headers, data=body)
    if raw_data:
        assert (broken.status_code, off_schema.status_code) == (202, 202)
        assert seen == [b"{not json", b'{"y": 1}']
    else:
        assert (broken.status_code, off_schema.status_code) == (400, 400)
        assert seen == []
