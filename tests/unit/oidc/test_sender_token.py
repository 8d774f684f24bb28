"""The token a producer sends: read from its file at each send, or none when there is no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from wire.oidc.sender_token import bearer_headers


def test_the_file_holds_the_bearer_token_without_its_line_break(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("header.claims.signature\n")
    assert bearer_headers(token_file) == {"Authorization": "Bearer header.claims.signature"}
    token_file.write_text("renewed")
    assert bearer_headers(str(token_file)) == {"Authorization": "Bearer renewed"}


def test_no_file_or_no_path_means_no_token(tmp_path: Path) -> None:
    assert bearer_headers(tmp_path / "absent") == {}
    assert bearer_headers(None) == {}


@pytest.mark.parametrize("content", [b"", b"  \n", b"\xff\xfe"])
def test_a_file_without_a_usable_token_is_an_error_not_an_unsigned_send(
    tmp_path: Path, content: bytes
) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    with pytest.raises(OSError, match=str(token_file)):
        bearer_headers(token_file)


def test_a_directory_in_the_files_place_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        bearer_headers(tmp_path)
