"""A real OIDC issuer for tests: `shop up`'s IssuerServer on a real socket, in a thread of its own.

    def test_something(oidc_issuer: RunningIssuer) -> None:
        token = oidc_issuer.mint("system:serviceaccount:shop:sender", "order.shop.svc")
        oidc_issuer.stop()    # unreachable (connections refused) ...
        oidc_issuer.start()   # ... and back, on the same port
        oidc_issuer.rotate()  # a new signing key; the old one is no longer published

A conftest makes the fixture available with `from tests.support.oidc import oidc_issuer`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shop.identity.issuer import ALGORITHM, LocalIssuer
from shop.identity.server import IssuerServer
from tests.support.processes import free_port

T = TypeVar("T")
_LOOP_CALL_SECONDS = 10.0


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class RunningIssuer:
    """A LocalIssuer whose discovery document and JWKS are served on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = new_key()
        self.issuer = LocalIssuer(self.url, self.key)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="oidc-issuer", daemon=True
        )
        self._server: IssuerServer | None = None

    def __enter__(self) -> RunningIssuer:
        self._thread.start()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_LOOP_CALL_SECONDS)
        self._loop.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Serve the issuer's current documents (again) on its port."""
        if self._server is not None:
            return
        server = IssuerServer(self.issuer, _listening_socket(self.port))
        self._call(server.start())
        self._server = server

    def stop(self) -> None:
        """Close the listening socket: fetches of the documents are refused until `start()`."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self._call(server.close())

    def rotate(self) -> LocalIssuer:
        """Sign with a new key from now on and publish only it (the old key's tokens stop
        verifying once a verifier refetches)."""
        was_running = self.running
        self.stop()
        self.key = new_key()
        self.issuer = LocalIssuer(self.url, self.key)
        if was_running:
            self.start()
        return self.issuer

    @property
    def kid(self) -> str:
        return self.issuer.kid

    def mint(self, subject: str, audience: str, lifetime: float = 3600.0) -> str:
        """A token exactly as the issuer mints it."""
        return self.issuer.mint(subject, audience, lifetime)

    def claims(self, subject: str, audience: str, **overrides: Any) -> dict[str, Any]:
        """The claims of a fresh hour-long token, with `overrides` (None removes a claim)."""
        claims = self.issuer.claims(subject, audience, 3600.0)
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        """`claims` signed with the issuer's key (or `key`), naming the issuer's kid (or `kid`)."""
        return jwt.encode(
            dict(claims),
            key or self.key,
            algorithm=ALGORITHM,
            headers={"kid": kid or self.kid},
        )

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_LOOP_CALL_SECONDS)


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@pytest.fixture
def oidc_issuer() -> Iterator[RunningIssuer]:
    """A local issuer on a free port for one test, stopped afterwards."""
    with RunningIssuer() as issuer:
        yield issuer
