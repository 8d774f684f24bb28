"""Token files as Knative mounts them for a SinkBinding's subject (`/oidc/token`), kept fresh.

Knative's SinkBinding reconciler writes the token into a Secret and renews it before it expires;
the kubelet updates the mounted file. Here the runner writes each file and rewrites it when half
of its lifetime has passed; a reader that opens the file for every send always has a valid token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shop.identity.issuer import LocalIssuer


@dataclass(frozen=True)
class TokenFile:
    path: Path
    subject: str
    audience: str


def write_token(issuer: LocalIssuer, token_file: TokenFile, lifetime: float) -> None:
    """Write a fresh token atomically (a reader sees the old file or the new one, never half)."""
    token_file.path.parent.mkdir(parents=True, exist_ok=True)
    temporary = token_file.path.with_name(f".{token_file.path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(issuer.mint(token_file.subject, token_file.audience, lifetime))
    os.replace(temporary, token_file.path)
