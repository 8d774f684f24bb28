"""A signing key, the documents that publish it, and tokens shaped like Kubernetes' own.

In a cluster, Knative asks the API server (TokenRequest) for a ServiceAccount token with the
receiver's audience; receivers fetch the API server's OIDC discovery document and JWKS to check
it. Locally the key lives in the state folder: `shop up` serves the documents, and the broker,
which sends for every Trigger, mints with the same key file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from wire.oidc.keys import DISCOVERY_PATH
from wire.oidc.subjects import SERVICE_ACCOUNT_PREFIX

ALGORITHM = "RS256"
JWKS_PATH = "/openid/v1/jwks"
DEFAULT_LIFETIME_SECONDS = 3600.0


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 thumbprint of the key, as the API server names its keys."""
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The issuer's private key from `path`, made (2048-bit RSA, mode 0600) if it is not there."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return key


class LocalIssuer:
    """Mints tokens and publishes the key that verifies them."""

    def __init__(self, url: str, key: rsa.RSAPrivateKey) -> None:
        self.url = url.rstrip("/")
        self._key = key
        self.kid = key_id(key.public_key())

    @classmethod
    def from_key_file(cls, url: str, path: Path) -> LocalIssuer:
        return cls(url, load_or_create_key(path))

    def mint(self, subject: str, audience: str, lifetime: float = DEFAULT_LIFETIME_SECONDS) -> str:
        """A token for `audience` naming `subject`, with the claims a ServiceAccount token has."""
        return self.sign(self.claims(subject, audience, lifetime))

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def claims(
        self, subject: str, audience: str, lifetime: float = DEFAULT_LIFETIME_SECONDS
    ) -> dict[str, Any]:
        """The claims of a fresh token: those of a ServiceAccount token the API server issues."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": subject,
            "aud": [audience],
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
            "jti": str(uuid.uuid4()),
        }
        parts = subject.split(":")
        if len(parts) == 4 and ":".join(parts[:2]) == SERVICE_ACCOUNT_PREFIX:
            claims["kubernetes.io"] = {
                "namespace": parts[2],
                "serviceaccount": {"name": parts[3]},
            }
        return claims

    def discovery_document(self) -> dict[str, Any]:
        """What the API server answers at /.well-known/openid-configuration."""
        return {
            "issuer": self.url,
            "jwks_uri": self.url + JWKS_PATH,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [jwk]}

    def documents(self) -> dict[str, dict[str, Any]]:
        """The issuer's published documents by path."""
        return {DISCOVERY_PATH: self.discovery_document(), JWKS_PATH: self.jwks()}
