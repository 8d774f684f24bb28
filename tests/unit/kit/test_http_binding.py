"""Content modes, header percent-coding, structured and batched JSON."""

from __future__ import annotations

import base64
import json

import pytest

from wire.http_binding import (
    Mode,
    WireEvent,
    content_mode,
    decode_header_value,
    encode_header_value,
    event_from_json,
    parse_binary,
    parse_request,
    to_binary,
    to_structured,
    to_structured_document,
)
from wire.spec import InvalidEvent

HEADERS = [("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-source", "/s"), ("ce-type", "t")]
STRUCTURED = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        ("application/json", Mode.BINARY),
        (None, Mode.BINARY),
        ("text/plain", Mode.BINARY),
        ("application/cloudevents+json", Mode.STRUCTURED),
        ("Application/CloudEvents+JSON; charset=utf-8", Mode.STRUCTURED),
        ("application/cloudevents-batch+json", Mode.BATCH),
    ],
)
def test_the_mode_comes_from_content_type_alone(content_type: str | None, mode: Mode) -> None:
    assert content_mode(content_type) is mode


@pytest.mark.parametrize(
    "content_type", ["application/cloudevents+avro", "application/cloudevents-batch+protobuf"]
)
def test_an_event_format_other_than_json_is_a_415(content_type: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        content_mode(content_type)
    assert caught.value.status == 415


def test_a_structured_body_wins_over_ce_headers() -> None:
    body = json.dumps({**STRUCTURED, "id": "from-body"}).encode()
    headers = [*HEADERS, ("ce-id", "from-header")]
    _, [event] = parse_request("application/cloudevents+json", headers, body)
    assert event.id == "from-body"


def test_a_plain_json_post_without_ce_headers_is_invalid() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_request("application/json", [("Content-Type", "application/json")], b"{}")
    assert caught.value.attribute in {"id", "source", "specversion", "type"}


def test_binary_mode_reads_attributes_from_headers_case_insensitively() -> None:
    headers = [("Ce-Specversion", "1.0"), ("CE-ID", "1"), ("ce-Source", "/s"), ("ce-type", "t")]
    _, [event] = parse_request("application/json", headers, b'{"a":1}')
    assert event.attributes == {
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "t",
        "datacontenttype": "application/json",
    }
    assert event.data == b'{"a":1}'


def test_binary_mode_refuses_a_ce_datacontenttype_header() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_request(None, [*HEADERS, ("ce-datacontenttype", "text/plain")], b"")
    assert caught.value.attribute == "datacontenttype"


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("hello%20world", "hello world"),
        ("%e2%82%ac", "€"),  # lower-case hex
        ("%41bc", "Abc"),  # needless escape
        ('"quoted value"', "quoted value"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("100%25", "100%"),
        ("%2525", "%25"),  # decoded exactly once
    ],
)
def test_header_values_are_unquoted_then_percent_decoded_once(raw: str, decoded: str) -> None:
    assert decode_header_value(raw, "x") == decoded


@pytest.mark.parametrize("raw", ["%C0%A0", "%ff", "%e2%82"])
def test_header_values_that_are_not_utf8_after_decoding_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_header_value(raw, "subject")
    assert caught.value.attribute == "subject"


def test_raw_non_ascii_in_a_header_is_invalid() -> None:
    with pytest.raises(InvalidEvent):
        decode_header_value("café", "subject")


@pytest.mark.parametrize("text", ["plain", "a b", 'say "hi"', "100%", "€ and ü", "tab\there"])
def test_encoding_then_decoding_a_header_value_gives_it_back(text: str) -> None:
    encoded = encode_header_value(text)
    assert encoded.isascii() and " " not in encoded and '"' not in encoded
    assert decode_header_value(encoded, "x") == text


def test_json_null_means_absent() -> None:
    event = event_from_json({**STRUCTURED, "subject": None, "time": None, "ext": None})
    assert "subject" not in event.attributes and "ext" not in event.attributes


def test_structured_json_data_becomes_the_binary_body_and_no_content_type_is_invented() -> None:
    event = event_from_json({**STRUCTURED, "data": {"a": [1, 2]}})
    assert event.data == b'{"a":[1,2]}'
    assert "datacontenttype" not in event.attributes
    headers, body = to_binary(event)
    assert "Content-Type" not in headers
    _, [again] = parse_request(None, headers.items(), body)
    assert again == event and to_structured_document(again)["data"] == {"a": [1, 2]}


def test_structured_text_data_is_carried_as_text() -> None:
    event = event_from_json({**STRUCTURED, "datacontenttype": "text/plain", "data": "héllo"})
    assert event.data == "héllo".encode()


def test_data_base64_is_decoded_and_must_be_valid() -> None:
    event = event_from_json({**STRUCTURED, "data_base64": base64.b64encode(b"\x00\x01").decode()})
    assert event.data == b"\x00\x01"
    with pytest.raises(InvalidEvent) as caught:
        event_from_json({**STRUCTURED, "data_base64": "not base64!"})
    assert caught.value.attribute == "data_base64"


def test_data_and_data_base64_are_mutually_exclusive() -> None:
    with pytest.raises(InvalidEvent):
        event_from_json({**STRUCTURED, "data": "x", "data_base64": "eA=="})


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b"[1]", b'"text"'])
def test_a_structured_body_must_be_one_json_object(body: bytes) -> None:
    with pytest.raises(InvalidEvent):
        parse_request("application/cloudevents+json", [], body)


def test_a_batch_is_a_json_array_of_events_and_may_be_empty() -> None:
    mode, events = parse_request("application/cloudevents-batch+json", [], b"[]")
    assert mode is Mode.BATCH and events == []
    body = json.dumps([STRUCTURED, {**STRUCTURED, "id": "2"}]).encode()
    _, events = parse_request("application/cloudevents-batch+json", [], body)
    assert [e.id for e in events] == ["1", "2"]


def test_an_invalid_batch_entry_is_named() -> None:
    body = json.dumps([STRUCTURED, {"id": "2"}]).encode()
    with pytest.raises(InvalidEvent, match="batch entry 1"):
        parse_request("application/cloudevents-batch+json", [], body)


def test_a_batch_must_be_an_array() -> None:
    with pytest.raises(InvalidEvent, match="array"):
        parse_request("application/cloudevents-batch+json", [], json.dumps(STRUCTURED).encode())


def test_binary_serialisation_percent_encodes_and_maps_datacontenttype() -> None:
    event = WireEvent(
        {**STRUCTURED, "subject": "a b", "flag": True, "n": 3, "datacontenttype": "text/plain"},
        b"x",
    )
    headers, body = to_binary(event)
    assert headers["ce-subject"] == "a%20b"
    assert headers["ce-flag"] == "true"
    assert headers["ce-n"] == "3"
    assert headers["Content-Type"] == "text/plain"
    assert "ce-datacontenttype" not in headers and body == b"x"


def test_structured_serialisation_keeps_json_data_as_json_and_binary_as_base64() -> None:
    json_event = WireEvent({**STRUCTURED, "datacontenttype": "application/json"}, b'{"a":1}')
    assert to_structured_document(json_event)["data"] == {"a": 1}
    binary = WireEvent({**STRUCTURED, "datacontenttype": "application/octet-stream"}, b"\xff")
    assert to_structured_document(binary)["data_base64"] == "/w=="
    # Bytes that happen to be UTF-8 are still bytes unless the type says text.
    utf8 = WireEvent({**STRUCTURED, "datacontenttype": "application/octet-stream"}, b"abc")
    assert to_structured_document(utf8) == {**utf8.attributes, "data_base64": "YWJj"}
    text = WireEvent({**STRUCTURED, "datacontenttype": "text/plain; charset=utf-8"}, b"abc")
    assert to_structured_document(text)["data"] == "abc"
    not_json = WireEvent(STRUCTURED, b"not json")
    assert to_structured_document(not_json)["data_base64"] == "bm90IGpzb24="
    headers, body = to_structured(json_event)
    assert headers == {"Content-Type": "application/cloudevents+json"}
    assert json.loads(body)["id"] == "1"


def test_a_structured_event_survives_binary_and_back() -> None:
    original = event_from_json(
        {
            **STRUCTURED,
            "subject": "ö x",
            "ext": "v",
            "data": {"k": "v"},
            "time": "2020-01-01T00:00:00Z",
        }
    )
    headers, body = to_binary(original)
    _, [again] = parse_request(headers.get("Content-Type"), headers.items(), body)
    assert again == original


def test_an_attribute_header_sent_twice_is_refused_naming_it() -> None:
    headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
        ("ce-partitionkey", "1"),
        ("CE-PartitionKey", "2"),
    ]
    with pytest.raises(InvalidEvent) as raised:
        parse_binary(headers, None, b"")
    assert raised.value.attribute == "partitionkey"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('"a b"', "a b"),
        ('"a\\"b"', 'a"b'),
        ('""', ""),
        ('"0\\\\\\"', '"0\\\\\\"'),  # not a whole quoted-string: taken as it is
        ('"', '"'),
    ],
)
def test_a_header_value_is_unquoted_only_when_it_is_a_whole_quoted_string(
    raw: str, value: str
) -> None:
    assert decode_header_value(raw, "x") == value


@pytest.mark.parametrize(
    ("content_type", "body", "attribute"),
    [
        (
            "application/cloudevents+json",
            b'{"id": "a", "specversion": "1.0", "id": "b", "source": "/s", "type": "t"}',
            "id",
        ),
        (
            "application/cloudevents-batch+json",
            b'[{"specversion": "1.0", "id": "b", "source": "/s", "type": "t", "type": "u"}]',
            "type",
        ),
    ],
)
def test_a_member_given_twice_is_refused_naming_it(
    content_type: str, body: bytes, attribute: str
) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_request(content_type, [], body)
    assert raised.value.attribute == attribute
    assert "appears more than once" in raised.value.message


def test_data_may_repeat_a_member_name_inside_it() -> None:
    body = (
        b'{"specversion": "1.0", "id": "b", "source": "/s", "type": "t", "data": {"a": 1, "a": 2}}'
    )
    _, (event,) = parse_request("application/cloudevents+json", [], body)
    assert event.attributes["id"] == "b"


def test_a_structured_event_may_start_with_a_byte_order_mark() -> None:
    body = b'\xef\xbb\xbf{"specversion": "1.0", "id": "b", "source": "/s", "type": "t"}'
    _, (event,) = parse_request("application/cloudevents+json", [], body)
    assert event.attributes["id"] == "b"
