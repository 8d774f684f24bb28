"""`shop send`'s options that build the event: --field, --data, --extension."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shop.inspect.compose import OptionError, build_object, data_text, extensions


def test_fields_build_nested_json_with_typed_values() -> None:
    assert build_object(
        ["order.id=o-1", "order.total=1200", "order.paid=true", "note=hello world", "tags=[1,2]"]
    ) == {
        "order": {"id": "o-1", "total": 1200, "paid": True},
        "note": "hello world",
        "tags": [1, 2],
    }


def test_a_quoted_value_stays_a_string() -> None:
    assert build_object(['code="007"']) == {"code": "007"}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (["novalue"], "expected a.b.c=value"),
        (["a..b=1"], "expected a.b.c=value"),
        (["a=1", "a.b=2"], "a is set to a value already"),
        (["a=1", "a=2"], "a is set twice"),
    ],
)
def test_contradictory_fields_are_refused(fields: list[str], problem: str) -> None:
    with pytest.raises(OptionError, match=problem):
        build_object(fields)


def test_data_is_taken_as_it_is_or_read_from_a_file(tmp_path: Path) -> None:
    assert data_text('{"a": 1}', []) == '{"a": 1}'
    file = tmp_path / "order.json"
    file.write_text('{"from": "file"}')
    assert data_text(f"@{file}", []) == '{"from": "file"}'
    assert json.loads(data_text(None, ["a=1"]) or "") == {"a": 1}
    assert data_text(None, []) is None


def test_a_missing_data_file_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--data @"):
        data_text(f"@{tmp_path}/missing.json", [])


def test_data_and_fields_exclude_each_other() -> None:
    with pytest.raises(OptionError, match="not both"):
        data_text("{}", ["a=1"])


def test_extensions_are_name_value_pairs() -> None:
    assert extensions(["partitionkey=o-1", "empty="]) == {"partitionkey": "o-1", "empty": ""}
    with pytest.raises(OptionError, match="name=value"):
        extensions(["=x"])
