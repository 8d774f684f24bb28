"""The OIDC_* variables of KitConfig: read once, both halves or neither, mistakes named at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.config import ConfigError, KitConfig
from wire.oidc.keys import IssuerSettings
from wire.oidc.sender_token import DEFAULT_TOKEN_FILE
from wire.oidc.subjects import SubjectPattern

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "order.shop.svc.cluster.local"


def config(**env: str) -> KitConfig:
    return KitConfig.from_env("order", env)


def test_sender_identity_is_off_by_default_and_the_token_file_is_knatives() -> None:
    default = config()
    assert default.sender_identity is None
    assert default.sender_token_file == DEFAULT_TOKEN_FILE == "/oidc/token"
    assert config(OIDC_TOKEN_FILE="/run/token").sender_token_file == "/run/token"


def test_audience_and_issuer_turn_it_on(tmp_path: Path) -> None:
    ca, token = tmp_path / "ca.crt", tmp_path / "token"
    ca.write_text("ca")
    token.write_text("token")
    identity = config(
        OIDC_AUDIENCE=AUDIENCE,
        OIDC_ISSUER=ISSUER,
        OIDC_DISCOVERY_URL="https://kubernetes.default.svc/.well-known/openid-configuration",
        OIDC_ALLOWED_SUBJECTS="system:serviceaccount:shop:a, system:serviceaccount:ops:*",
        OIDC_CA_FILE=str(ca),
        OIDC_DISCOVERY_TOKEN_FILE=str(token),
    ).sender_identity
    assert identity is not None
    assert identity.audience == AUDIENCE
    assert identity.issuer == IssuerSettings(
        ISSUER,
        discovery_url="https://kubernetes.default.svc/.well-known/openid-configuration",
        ca_file=str(ca),
        discovery_token_file=str(token),
    )
    assert identity.allowed_subjects == (
        SubjectPattern("system:serviceaccount:shop:a"),
        SubjectPattern("system:serviceaccount:ops:*"),
    )


def test_the_discovery_document_defaults_to_the_issuers_well_known_path() -> None:
    identity = config(OIDC_AUDIENCE=AUDIENCE, OIDC_ISSUER=ISSUER).sender_identity
    assert identity is not None and identity.allowed_subjects == ()
    assert identity.issuer.discovery == f"{ISSUER}/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OIDC_AUDIENCE": AUDIENCE}, "OIDC_AUDIENCE is set but OIDC_ISSUER is not"),
        ({"OIDC_ISSUER": ISSUER}, "OIDC_ISSUER is set but OIDC_AUDIENCE is not"),
        (
            {"OIDC_ALLOWED_SUBJECTS": "system:serviceaccount:shop:*"},
            "OIDC_ALLOWED_SUBJECTS is set, but senders are not checked",
        ),
        (
            {"OIDC_AUDIENCE": AUDIENCE, "OIDC_ISSUER": "kubernetes.default.svc"},
            "OIDC_ISSUER must be an https:// (or http://) URL",
        ),
        (
            {"OIDC_AUDIENCE": AUDIENCE, "OIDC_ISSUER": ISSUER, "OIDC_DISCOVERY_URL": "/x"},
            "OIDC_DISCOVERY_URL must be an https:// (or http://) URL",
        ),
        (
            {"OIDC_AUDIENCE": AUDIENCE, "OIDC_ISSUER": ISSUER, "OIDC_CA_FILE": "/no/ca.crt"},
            "OIDC_CA_FILE names '/no/ca.crt', which is not a file",
        ),
        (
            {
                "OIDC_AUDIENCE": AUDIENCE,
                "OIDC_ISSUER": ISSUER,
                "OIDC_DISCOVERY_TOKEN_FILE": "/no/token",
            },
            "OIDC_DISCOVERY_TOKEN_FILE names '/no/token', which is not a file",
        ),
        (
            {
                "OIDC_AUDIENCE": AUDIENCE,
                "OIDC_ISSUER": ISSUER,
                "OIDC_ALLOWED_SUBJECTS": "system:serviceaccount:*:order",
            },
            "'system:serviceaccount:*:order' has a '*' before its end",
        ),
    ],
)
def test_a_half_or_wrong_setting_is_a_config_error_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        config(**env)
    assert message in str(refused.value)
