"""The send form posts with the viewer's own token (OIDC_TOKEN_FILE), as the relay does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from services.viewer.app import create_app
from tests.support.recording_sink import RecordingSink
from tests.unit.viewer.conftest import viewer_config


def test_the_send_form_posts_the_token_of_oidc_token_file(
    broker: RecordingSink, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("viewer-token\n")
    config = viewer_config(broker_url=broker.url)
    config = replace(config, kit=replace(config.kit, sender_token_file=str(token_file)))
    client = create_app(config).test_client()
    response = client.post("/api/send", json={"type": "t.sent", "source": "/tests/form"})
    assert response.status_code == 200, response.get_json()
    (request,) = broker.accepted()
    assert request.headers["authorization"] == "Bearer viewer-token"
