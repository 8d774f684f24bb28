"""TokenVerifier against a real issuer: what it accepts, and the exact reason for each refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from tests.support.oidc import RunningIssuer, new_key
from wire.oidc.keys import IssuerSettings, KeySet
from wire.oidc.verify import (
    DEFAULT_LEEWAY_SECONDS,
    InvalidToken,
    TokenVerifier,
    bearer_token,
)

ORDER = "order.shop.svc.cluster.local"
PAYMENT = "payment.shop.svc.cluster.local"
SENDER = "system:serviceaccount:shop:order-created-oidc-eventing.knative.dev-trigger"


def verifier_of(issuer: RunningIssuer, audience: str = ORDER) -> TokenVerifier:
    return TokenVerifier(KeySet(IssuerSettings(issuer.url)), audience)


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(token)
    return str(refused.value)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], hmac_secret: bytes | None) -> str:
    """A compact JWS built by hand: PyJWT refuses to sign HS256 with a PEM, and to sign `none`."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if hmac_secret is None:
        return signing_input + "."
    signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_a_token_the_issuer_minted_for_the_audience_is_accepted(
    oidc_issuer: RunningIssuer,
) -> None:
    verified = verifier_of(oidc_issuer).verify(oidc_issuer.mint(SENDER, ORDER))
    assert verified.subject == SENDER
    assert verified.issuer == oidc_issuer.url
    assert verified.claims["kubernetes.io"]["namespace"] == "shop"
    assert verified.expires_at == pytest.approx(time.time() + 3600, abs=5)


def test_an_expired_token_is_refused(oidc_issuer: RunningIssuer) -> None:
    past = int(time.time()) - 600
    token = oidc_issuer.sign(oidc_issuer.claims(SENDER, ORDER, iat=past, nbf=past, exp=past + 60))
    assert refusal(verifier_of(oidc_issuer), token) == "the token has expired"


def test_a_token_expired_within_the_leeway_is_still_accepted(oidc_issuer: RunningIssuer) -> None:
    now = int(time.time())
    claims = oidc_issuer.claims(SENDER, ORDER, iat=now - 600, nbf=now - 600, exp=now - 5)
    assert verifier_of(oidc_issuer).verify(oidc_issuer.sign(claims)).subject == SENDER


def test_a_token_not_valid_before_a_time_beyond_the_leeway_is_refused(
    oidc_issuer: RunningIssuer,
) -> None:
    later = int(time.time() + DEFAULT_LEEWAY_SECONDS + 120)
    token = oidc_issuer.sign(oidc_issuer.claims(SENDER, ORDER, nbf=later, exp=later + 3600))
    assert refusal(verifier_of(oidc_issuer), token) == "the token is not valid yet"


def test_a_token_for_another_audience_is_refused(oidc_issuer: RunningIssuer) -> None:
    token = oidc_issuer.mint(SENDER, "eventing.knative.dev/broker/shop/default")
    assert refusal(verifier_of(oidc_issuer), token) == f"the token is not for audience {ORDER!r}"


def test_a_token_for_another_subscriber_does_not_open_this_one(
    oidc_issuer: RunningIssuer,
) -> None:
    # Replayed: a token the payment service was sent, presented to the order service.
    token = oidc_issuer.mint(SENDER, PAYMENT)
    assert verifier_of(oidc_issuer, PAYMENT).verify(token).subject == SENDER
    assert refusal(verifier_of(oidc_issuer, ORDER), token) == (
        f"the token is not for audience {ORDER!r}"
    )


def test_a_token_of_another_issuer_is_refused(oidc_issuer: RunningIssuer) -> None:
    token = oidc_issuer.sign(oidc_issuer.claims(SENDER, ORDER, iss="https://elsewhere.example"))
    assert refusal(verifier_of(oidc_issuer), token) == (
        f"the token is not from issuer {oidc_issuer.url!r}"
    )


def test_a_token_without_a_subject_is_refused(oidc_issuer: RunningIssuer) -> None:
    token = oidc_issuer.sign(oidc_issuer.claims(SENDER, ORDER, sub=None))
    assert refusal(verifier_of(oidc_issuer), token) == "the token has no 'sub' claim"


def test_a_token_signed_by_another_key_under_the_issuers_kid_is_refused(
    oidc_issuer: RunningIssuer,
) -> None:
    impostor = new_key()
    token = oidc_issuer.sign(oidc_issuer.claims(SENDER, ORDER), key=impostor, kid=oidc_issuer.kid)
    assert refusal(verifier_of(oidc_issuer), token) == "the token's signature does not verify"


def test_an_unsigned_token_alg_none_is_refused(oidc_issuer: RunningIssuer) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": oidc_issuer.kid}
    token = forged(header, oidc_issuer.claims(SENDER, ORDER), hmac_secret=None)
    assert refusal(verifier_of(oidc_issuer), token) == (
        "the token's algorithm 'none' is not accepted"
    )


def public_key_forms(issuer: RunningIssuer) -> dict[str, bytes]:
    public = issuer.key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = json.dumps(issuer.issuer.jwks()["keys"][0]).encode()
    return {"pem": pem, "jwk": jwk, "bare jwk": RSAAlgorithm.to_jwk(public).encode()}


@pytest.mark.parametrize("form", ["pem", "jwk", "bare jwk"])
def test_an_hs256_token_keyed_with_the_issuers_public_key_is_refused(
    oidc_issuer: RunningIssuer, form: str
) -> None:
    secret = public_key_forms(oidc_issuer)[form]
    header = {"alg": "HS256", "typ": "JWT", "kid": oidc_issuer.kid}
    token = forged(header, oidc_issuer.claims(SENDER, ORDER), hmac_secret=secret)
    assert refusal(verifier_of(oidc_issuer), token) == (
        "the token's algorithm 'HS256' is not accepted"
    )


def test_a_token_naming_another_rsa_algorithm_than_its_key_is_refused(
    oidc_issuer: RunningIssuer,
) -> None:
    token = jwt.encode(
        oidc_issuer.claims(SENDER, ORDER),
        oidc_issuer.key,
        algorithm="PS256",
        headers={"kid": oidc_issuer.kid},
    )
    assert refusal(verifier_of(oidc_issuer), token) == (
        f"key {oidc_issuer.kid!r} is for RS256, not PS256"
    )


@pytest.mark.parametrize("text", ["", "not a jwt", "a.b.c", "Bearer x"])
def test_what_is_not_a_jwt_is_refused(oidc_issuer: RunningIssuer, text: str) -> None:
    assert refusal(verifier_of(oidc_issuer), text) == "the bearer token is not a JWT"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer  abc ", "abc"),
        ("BEARER abc", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_takes_the_token_of_a_bearer_header_only(
    header: str | None, token: str | None
) -> None:
    assert bearer_token(header) == token
