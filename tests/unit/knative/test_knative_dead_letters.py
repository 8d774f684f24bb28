"""A dead-lettered event carries Knative's three error extensions, encoded as Knative does."""

from __future__ import annotations

import base64

import pytest

from wire.knative import add_dead_letter_extensions, dead_letter_extensions

DEST = "http://payment.shop.svc.cluster.local/events"


def test_the_extensions_name_the_destination_status_and_body() -> None:
    assert dead_letter_extensions(DEST, 503, b"busy") == {
        "knativeerrordest": DEST,
        "knativeerrorcode": "503",
        "knativeerrordata": "YnVzeQ==",
    }


def test_a_transport_error_is_reported_as_500() -> None:
    extensions = dead_letter_extensions(DEST, None, b"dispatch error: connection refused")
    assert extensions["knativeerrorcode"] == "500"
    assert base64.b64decode(extensions["knativeerrordata"]) == b"dispatch error: connection refused"


def test_an_empty_body_gives_an_empty_but_present_data_extension() -> None:
    assert dead_letter_extensions(DEST, 422, b"")["knativeerrordata"] == ""


@pytest.mark.parametrize(("size", "length"), [(1, 4), (767, 1024), (768, 1024), (5000, 1024)])
def test_the_encoded_body_is_cut_at_1024_characters(size: int, length: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = dead_letter_extensions(DEST, 500, body)["knativeerrordata"]
    assert len(data) == length
    assert data == base64.b64encode(body).decode()[:1024]


def test_existing_error_extensions_are_kept_and_empty_ones_filled() -> None:
    attributes: dict[str, str | int | bool] = {
        "id": "1",
        "knativeerrordest": "http://first.example/",
        "knativeerrorcode": "",
    }
    merged = add_dead_letter_extensions(attributes, dead_letter_extensions(DEST, 404, b"x"))
    assert merged == {
        "id": "1",
        "knativeerrordest": "http://first.example/",
        "knativeerrorcode": "404",
        "knativeerrordata": "eA==",
    }
    assert "knativeerrordata" not in attributes  # the input is left alone


def test_a_zero_extension_is_empty_and_filled_but_any_other_number_is_kept() -> None:
    # Knative's AddExtension treats a zero value as unset, as Go does.
    attributes: dict[str, str | int | bool] = {"knativeerrorcode": 0, "knativeerrordest": 1}
    merged = add_dead_letter_extensions(attributes, dead_letter_extensions(DEST, 503, b""))
    assert merged["knativeerrorcode"] == "503"
    assert merged["knativeerrordest"] == 1
