"""The CloudEvents attribute rules, one case per rule."""

from __future__ import annotations

import pytest

from wire.spec import (
    InvalidEvent,
    attribute_text,
    check_attributes,
    is_rfc3339_time,
    parse_time,
)

MINIMAL = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def invalid(**changes: object) -> InvalidEvent:
    attributes = {**MINIMAL, **changes}
    with pytest.raises(InvalidEvent) as caught:
        check_attributes({k: v for k, v in attributes.items() if v is not None})  # type: ignore[misc]
    return caught.value


def test_a_minimal_event_is_valid() -> None:
    check_attributes(MINIMAL)


@pytest.mark.parametrize("name", ["id", "source", "specversion", "type"])
def test_each_required_attribute_is_required(name: str) -> None:
    attributes = {k: v for k, v in MINIMAL.items() if k != name}
    with pytest.raises(InvalidEvent) as caught:
        check_attributes(attributes)
    assert caught.value.attribute == name
    assert caught.value.status == 400


@pytest.mark.parametrize("name", ["id", "source", "specversion", "type", "subject", "dataschema"])
def test_context_attributes_must_not_be_empty(name: str) -> None:
    assert invalid(**{name: ""}).attribute == name


@pytest.mark.parametrize("version", ["0.3", "1", "2.0", "1.0.2"])
def test_only_specversion_1_0_is_accepted(version: str) -> None:
    assert "not supported" in invalid(specversion=version).message


@pytest.mark.parametrize(
    "value",
    ["2018-04-05T17:31:00Z", "2018-04-05T17:31:00.123456789Z", "2018-04-05T18:31:00+01:00"],
)
def test_rfc3339_times_with_seconds_and_offset_are_valid(value: str) -> None:
    check_attributes({**MINIMAL, "time": value})


@pytest.mark.parametrize(
    "value",
    ["2018-04-05T18:31Z", "2018-04-05 18:31:00Z", "2018-04-05T18:31:00", "2018-02-30T00:00:00Z"],
)
def test_times_without_seconds_offset_or_a_real_date_are_invalid(value: str) -> None:
    assert invalid(time=value).attribute == "time"


@pytest.mark.parametrize("source", ["/a/b", "#fragment", "urn:shop:x", "https://x.io/a?b=c", "a"])
def test_source_may_be_any_uri_reference(source: str) -> None:
    check_attributes({**MINIMAL, "source": source})


@pytest.mark.parametrize("source", ["not a uri", "%zz", "a\tb"])
def test_source_must_be_a_uri_reference(source: str) -> None:
    assert invalid(source=source).attribute == "source"


def test_dataschema_must_be_an_absolute_uri() -> None:
    check_attributes({**MINIMAL, "dataschema": "urn:shop:schema:t"})
    assert invalid(dataschema="/relative/path").attribute == "dataschema"


@pytest.mark.parametrize(
    "media", ["application/json", "text/plain; charset=utf-8", 'multipart/x; boundary="a b"']
)
def test_datacontenttype_is_an_rfc2046_media_type(media: str) -> None:
    check_attributes({**MINIMAL, "datacontenttype": media})


@pytest.mark.parametrize("media", ["xyz", "text/", "/json", "text/plain; charset"])
def test_malformed_media_types_are_invalid(media: str) -> None:
    assert invalid(datacontenttype=media).attribute == "datacontenttype"


@pytest.mark.parametrize("name", ["MyExt", "my-ext", "my.ext", "", "ü"])
def test_attribute_names_are_lower_case_letters_and_digits(name: str) -> None:
    assert invalid(**{name: "x"}).attribute == name


def test_data_is_not_an_attribute_name() -> None:
    with pytest.raises(InvalidEvent):
        check_attributes({**MINIMAL, "data": "x"})


def test_long_extension_names_are_accepted_because_the_limit_is_a_should() -> None:
    check_attributes({**MINIMAL, "averyveryverylongextensionname": "x"})


@pytest.mark.parametrize("value", [1, -(2**31), 2**31 - 1, True, "s"])
def test_extensions_take_strings_integers_and_booleans(value: object) -> None:
    check_attributes({**MINIMAL, "ext": value})  # type: ignore[dict-item]


@pytest.mark.parametrize("value", [1.5, 2**31, -(2**31) - 1, [1], {"a": 1}])
def test_extensions_refuse_floats_big_integers_and_structures(value: object) -> None:
    assert invalid(ext=value).attribute == "ext"


@pytest.mark.parametrize("name", ["id", "type", "source", "time"])
def test_context_attributes_must_be_strings(name: str) -> None:
    assert invalid(**{name: 25}).attribute == name


def test_invalid_event_names_the_problem_as_json() -> None:
    error = invalid(id="")
    assert error.to_json() == {"error": "attribute 'id' must not be empty", "attribute": "id"}


@pytest.mark.parametrize(
    ("value", "text"), [(True, "true"), (False, "false"), (7, "7"), ("x", "x")]
)
def test_attribute_text_is_the_canonical_string_form(value: object, text: str) -> None:
    assert attribute_text(value) == text  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "\n",
        "a\nb",
        "x\x00",
        "tab\t",
        "\x7f",
        "\x85",
        "\u009f",
        "\ud800",
        "a\udfffb",
        "\ufdd0",
        "\ufffe",
        "\U0001ffff",
        "\U0010fffe",
    ],
)
@pytest.mark.parametrize("name", ["source", "subject", "type", "id", "myext"])
def test_string_attributes_refuse_control_characters_noncharacters_and_surrogates(
    name: str, value: str
) -> None:
    error = invalid(**{name: value if name != "source" else f"/s{value}"})
    assert error.attribute == name
    assert "U+" in error.message


@pytest.mark.parametrize("value", ["ü", "€ x", "\u00a0", "\U0001f600", "\ufdcf", "\ufdf0"])
def test_other_unicode_characters_are_fine_in_strings(value: str) -> None:
    check_attributes({**MINIMAL, "subject": value, "ext": value})


@pytest.mark.parametrize("name", ["time", "dataschema", "datacontenttype", "specversion"])
def test_a_trailing_newline_never_passes_a_format_check(name: str) -> None:
    valid = {
        "time": "2018-04-05T17:31:00Z",
        "dataschema": "urn:x",
        "datacontenttype": "text/plain",
        "specversion": "1.0",
    }[name]
    assert invalid(**{name: valid + "\n"}).attribute == name


def test_an_error_quotes_a_long_value_only_in_part() -> None:
    error = invalid(time="x" * 100_000)
    assert len(error.message) < 200 and "100000 characters" in error.message
    assert len(str(error.to_json())) < 300
    long_name = "a" * 10_000
    assert len(str(invalid(**{long_name: 1.5}).to_json())) < 300


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("1990-12-31T23:59:60Z", True),
        ("2016-12-31T18:59:60-05:00", True),
        ("1990-06-30T23:59:60.5Z", True),
        ("1990-06-29T23:59:60Z", False),
        ("1990-12-31T23:58:60Z", False),
    ],
)
def test_a_leap_second_is_a_timestamp_only_where_one_can_fall(value: str, valid: bool) -> None:
    assert is_rfc3339_time(value) is valid
    if valid:
        assert parse_time(value).second == 59


def test_lower_case_t_and_z_are_a_timestamp() -> None:
    assert is_rfc3339_time("2024-01-01t00:00:00z")
    assert parse_time("2024-01-01t00:00:00.5z").microsecond == 500000


def test_a_media_type_takes_rfc_2045_tokens() -> None:
    check_attributes({**MINIMAL, "datacontenttype": "application/x-{curly}"})
    assert invalid(datacontenttype="application/x[square]").attribute == "datacontenttype"
