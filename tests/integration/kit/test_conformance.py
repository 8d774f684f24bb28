"""The CloudEvents conformance cases against a kit-built service running under gunicorn."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import yaml

from tests.conftest import shared_path
from wire.http_binding import parse_request
from wire.strings import string_problem

CASE_FILES = {
    "valid-events": True,
    "invalid-events": False,
    "valid-batches": True,
    "invalid-batches": False,
}


def cases(kind: str) -> list[Any]:
    """(expected-valid, case) for every case of the given kind: 'event' or 'batch'."""
    folder = shared_path("conformance", "cloudevents")
    found = []
    for name, valid in CASE_FILES.items():
        for case in json.loads((folder / f"{name}.json").read_text())["tests"]:
            if kind in case:
                found.append(pytest.param(valid, case, id=case["id"]))
    return found


def conformance_cases(kind: str) -> list[Any]:
    # Collection must not fail when the inputs are missing; the skip/fail happens in the test.
    try:
        return cases(kind)
    except BaseException:
        return [pytest.param(None, None, id="conformance-inputs-missing")]


def check_status(valid: bool, response: requests.Response) -> None:
    if valid:
        assert 200 <= response.status_code < 300, response.text
        assert response.content == b"", "a 2xx must carry no other body"
    else:
        assert 400 <= response.status_code < 500, response.text
        assert "error" in response.json()


@pytest.mark.parametrize(("valid", "case"), conformance_cases("event"))
def test_structured_mode(kit_url: str, valid: bool, case: dict[str, Any]) -> None:
    if case is None:
        shared_path("conformance", "cloudevents")
    response = requests.post(
        kit_url,
        data=json.dumps(case["event"]),
        headers={"Content-Type": "application/cloudevents+json"},
        timeout=10,
    )
    check_status(valid, response)


@pytest.mark.parametrize(("valid", "case"), conformance_cases("batch"))
def test_batched_mode(kit_url: str, valid: bool, case: dict[str, Any]) -> None:
    if case is None:
        shared_path("conformance", "cloudevents")
    response = requests.post(
        kit_url,
        data=json.dumps(case["batch"]),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        timeout=10,
    )
    check_status(valid, response)


CONTEXT = {"id", "source", "specversion", "type", "subject", "time", "dataschema"}


def as_binary(event: dict[str, Any]) -> tuple[dict[str, str], bytes] | None:
    """The binary-mode request of a case, or None when the case cannot be said in headers."""
    if "data" in event and "data_base64" in event:
        return None
    headers: dict[str, str] = {}
    body = b""
    for name, value in event.items():
        if value is None:
            continue
        if name != name.lower():
            return None  # header names are case-insensitive: the case would change meaning
        if name == "data":
            body = value.encode() if isinstance(value, str) else json.dumps(value).encode()
        elif name == "datacontenttype":
            headers["Content-Type"] = value
        elif isinstance(value, bool):
            headers[f"ce-{name}"] = "true" if value else "false"
        elif isinstance(value, str) or (isinstance(value, int | float) and name not in CONTEXT):
            headers[f"ce-{name}"] = quote(str(value), safe="")
        else:
            return None  # a non-string context attribute has no header form
    return headers, body


def binary_cases() -> list[Any]:
    """The event cases that can be said in headers (e.g. not a numeric id, not MyExtension)."""
    return [
        case
        for case in conformance_cases("event")
        if case.values[1] is None or as_binary(case.values[1]["event"]) is not None
    ]


@pytest.mark.parametrize(("valid", "case"), binary_cases())
def test_binary_mode_where_the_case_maps_onto_headers(
    kit_url: str, valid: bool, case: dict[str, Any]
) -> None:
    if case is None:
        shared_path("conformance", "cloudevents")
    request = as_binary(case["event"])
    assert request is not None
    headers, body = request
    check_status(valid, requests.post(kit_url, data=body, headers=headers, timeout=10))


def templates() -> list[Any]:
    try:
        folder = shared_path("conformance", "cloudevents")
    except BaseException:
        return [pytest.param(None, None, id="conformance-inputs-missing")]
    found = []
    for name in ("v1.yaml", "v1_minimum.yaml"):
        documents = yaml.load_all((folder / name).read_text(), Loader=yaml.BaseLoader)
        for index, document in enumerate(documents):
            for mode in ("binary", "structured"):
                if document.get("Mode", mode) == mode:
                    found.append(pytest.param(document, mode, id=f"{name}-{index}-{mode}"))
    return found


def template_request(template: dict[str, Any], mode: str) -> tuple[dict[str, str], bytes]:
    attributes = dict(template["ContextAttributes"])
    extensions = attributes.pop("Extensions", {}) or {}
    data = template.get("Data", "")
    transport = template.get("TransportExtensions", {}) or {}
    if mode == "structured":
        document = {**attributes, **extensions}
        content_type = attributes.get("datacontenttype", "application/json")
        document["data"] = json.loads(data) if "json" in content_type else data
        headers = {"Content-Type": "application/cloudevents+json", **transport}
        return headers, json.dumps(document).encode()
    headers = {f"ce-{k}": quote(v, safe="") for k, v in {**attributes, **extensions}.items()}
    headers.pop("ce-datacontenttype", None)
    headers["Content-Type"] = attributes.get("datacontenttype", "application/json")
    headers.update(transport)
    return headers, data.encode()


def rule_breakers(template: dict[str, Any]) -> set[str]:
    """The attributes whose template value is not a CloudEvents String.

    The templates write an extension as a YAML block scalar (`|`), which keeps the final newline:
    a control character, which CloudEvents 1.0.2 forbids in any String.
    """
    attributes = dict(template["ContextAttributes"])
    extensions = attributes.pop("Extensions", {}) or {}
    return {name for name, value in {**attributes, **extensions}.items() if string_problem(value)}


def without_final_newlines(template: dict[str, Any]) -> dict[str, Any]:
    """The template as a block scalar written `|-` would give it."""
    attributes = dict(template["ContextAttributes"])
    extensions = {k: v.rstrip("\n") for k, v in (attributes.pop("Extensions", {}) or {}).items()}
    attributes = {k: v.rstrip("\n") for k, v in attributes.items()}
    return {**template, "ContextAttributes": {**attributes, "Extensions": extensions}}


@pytest.mark.parametrize(("template", "mode"), templates())
def test_conformance_tool_templates(
    kit_url: str, template: dict[str, Any] | None, mode: str
) -> None:
    """Each template is taken; one whose value breaks the String rule is refused, naming it."""
    if template is None:
        shared_path("conformance", "cloudevents")
        return
    breakers = rule_breakers(template)
    headers, body = template_request(template, mode)
    response = requests.post(kit_url, data=body, headers=headers, timeout=10)
    if breakers:
        assert response.status_code == 400, response.text
        assert response.json()["attribute"] in breakers
        headers, body = template_request(without_final_newlines(template), mode)
        response = requests.post(kit_url, data=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text


def feature_requests() -> list[Any]:
    """The raw HTTP requests of http-protocol-binding.feature, one per example row."""
    try:
        text = (
            shared_path("conformance", "cloudevents") / "http-protocol-binding.feature"
        ).read_text()
    except BaseException:
        return [pytest.param(None, None, None, id="conformance-inputs-missing")]
    found = []
    for scenario in text.split("Scenario Outline:")[1:]:
        request = re.search(r'Given an HTTP request\s+"""(.*?)"""', scenario, re.S)
        expected = re.search(r"Then the attributes are:(.*?)And the data", scenario, re.S)
        data = re.search(r'JSON:\s+"""(.*?)"""', scenario, re.S)
        examples = re.search(r"Examples:\s*\|[^\n]*\|\n(.*)", scenario, re.S)
        assert request and expected and data and examples
        rows = [r.strip().strip("|").strip() for r in examples.group(1).splitlines() if "|" in r]
        for content_type in rows:
            raw = request.group(1).replace("<contentType>", content_type)
            table = {}
            for line in expected.group(1).strip().splitlines():
                key, value = (cell.strip() for cell in line.strip().strip("|").split("|"))
                if key != "key":
                    table[key] = value.replace("<contentType>", content_type)
            found.append(pytest.param(raw, table, json.loads(data.group(1)), id=f"{content_type}"))
    return found


def split_http(raw: str) -> tuple[dict[str, str], bytes]:
    lines = [line.strip() for line in raw.strip().splitlines()]
    blank = lines.index("")
    headers = dict(line.split(": ", 1) for line in lines[1:blank])
    headers.pop("Host", None)
    headers.pop("Content-Length", None)
    return headers, "\n".join(lines[blank + 1 :]).encode()


@pytest.mark.parametrize(("raw", "attributes", "data"), feature_requests())
def test_http_protocol_binding_feature(
    kit_url: str, raw: str | None, attributes: dict[str, str], data: Any
) -> None:
    if raw is None:
        shared_path("conformance", "cloudevents")
        return
    headers, body = split_http(raw)
    _, [event] = parse_request(headers.get("Content-Type"), headers.items(), body)
    assert {k: str(v) for k, v in event.attributes.items()} == attributes
    assert event.data is not None and json.loads(event.data) == data
    assert requests.post(kit_url, data=body, headers=headers, timeout=10).status_code == 202


def test_every_conformance_file_was_read() -> None:
    folder: Path = shared_path("conformance", "cloudevents")
    assert (
        sum(len(json.loads((folder / f"{n}.json").read_text())["tests"]) for n in CASE_FILES) >= 40
    )
