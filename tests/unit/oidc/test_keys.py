"""KeySet against a real issuer: rotation, the refetch rate limit, and an issuer that goes away."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shop.identity.issuer import JWKS_PATH
from tests.support.oidc import RunningIssuer
from wire.oidc.keys import DISCOVERY_PATH, IssuerSettings, IssuerUnavailable, KeySet
from wire.oidc.verify import InvalidToken, TokenVerifier

AUDIENCE = "order.shop.svc.cluster.local"
SENDER = "system:serviceaccount:shop:sender"
MIN_REFETCH = 10.0
MAX_AGE = 300.0


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(oidc_issuer: RunningIssuer, clock: Clock) -> KeySet:
    return KeySet(
        IssuerSettings(oidc_issuer.url), max_age=MAX_AGE, min_refetch=MIN_REFETCH, clock=clock
    )


@pytest.fixture
def verifier(keys: KeySet) -> TokenVerifier:
    return TokenVerifier(keys, AUDIENCE)


def test_keys_are_fetched_once_and_kept(
    oidc_issuer: RunningIssuer, keys: KeySet, verifier: TokenVerifier, clock: Clock
) -> None:
    for _ in range(3):
        verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE))
        clock.advance(MIN_REFETCH)
    assert keys.fetches == 1


def test_keys_older_than_max_age_are_fetched_again(
    oidc_issuer: RunningIssuer, keys: KeySet, verifier: TokenVerifier, clock: Clock
) -> None:
    verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE))
    clock.advance(MAX_AGE)
    assert keys.needs_fetch(oidc_issuer.kid)
    verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE))
    assert keys.fetches == 2


def test_a_rotated_key_is_found_by_a_refetch_but_made_up_kids_fetch_nothing_more(
    oidc_issuer: RunningIssuer, keys: KeySet, verifier: TokenVerifier, clock: Clock
) -> None:
    old_kid = oidc_issuer.kid
    verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE))
    assert keys.fetches == 1

    oidc_issuer.rotate()
    rotated = oidc_issuer.mint(SENDER, AUDIENCE)
    clock.advance(MIN_REFETCH / 2)  # too soon after the last fetch to fetch again
    with pytest.raises(InvalidToken, match=f"the issuer has no key '{oidc_issuer.kid}'"):
        verifier.verify(rotated)
    assert keys.fetches == 1

    clock.advance(MIN_REFETCH / 2)
    assert verifier.verify(rotated).subject == SENDER
    assert keys.fetches == 2

    made_up = oidc_issuer.sign(oidc_issuer.claims(SENDER, AUDIENCE), kid="made-up")
    clock.advance(MIN_REFETCH - 1)
    for _ in range(5):
        assert not keys.needs_fetch("made-up")
        with pytest.raises(InvalidToken) as refused:
            verifier.verify(made_up)
        assert str(refused.value) == "the issuer has no key 'made-up'"
    assert keys.fetches == 2

    # The old key is no longer published: its tokens are refused once the set has moved on.
    stale = oidc_issuer.sign(oidc_issuer.claims(SENDER, AUDIENCE), kid=old_kid)
    with pytest.raises(InvalidToken, match=f"the issuer has no key '{old_kid}'"):
        verifier.verify(stale)


def test_an_issuer_unreachable_at_first_use_makes_the_keys_unavailable(
    oidc_issuer: RunningIssuer, keys: KeySet, verifier: TokenVerifier, clock: Clock
) -> None:
    token = oidc_issuer.mint(SENDER, AUDIENCE)
    oidc_issuer.stop()
    with pytest.raises(IssuerUnavailable, match=DISCOVERY_PATH):
        verifier.verify(token)
    # Until the next fetch may be tried, the answer stays "unavailable", never "no such key".
    clock.advance(MIN_REFETCH / 2)
    assert not keys.needs_fetch(oidc_issuer.kid)
    with pytest.raises(IssuerUnavailable):
        verifier.verify(token)
    assert keys.fetches == 1

    oidc_issuer.start()
    clock.advance(MIN_REFETCH / 2)
    assert verifier.verify(token).subject == SENDER
    assert keys.fetches == 2


def test_an_issuer_unreachable_later_leaves_the_cached_keys_in_use(
    oidc_issuer: RunningIssuer, keys: KeySet, verifier: TokenVerifier, clock: Clock
) -> None:
    verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE))
    oidc_issuer.stop()
    clock.advance(MAX_AGE + 1)
    assert verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE)).subject == SENDER
    assert keys.fetches == 2  # it tried, and kept what it had
    clock.advance(MIN_REFETCH / 2)
    assert verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE)).subject == SENDER
    assert keys.fetches == 2  # not hammering the issuer while it is away

    oidc_issuer.start()
    clock.advance(MIN_REFETCH)
    verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE))
    assert keys.fetches == 3


def test_the_discovery_document_may_live_elsewhere_than_the_issuer_name(
    oidc_issuer: RunningIssuer,
) -> None:
    cluster = "https://kubernetes.default.svc.cluster.local"
    settings = IssuerSettings(cluster, discovery_url=oidc_issuer.url + DISCOVERY_PATH)
    verifier = TokenVerifier(KeySet(settings), AUDIENCE)
    token = oidc_issuer.sign(oidc_issuer.claims(SENDER, AUDIENCE, iss=cluster))
    assert verifier.verify(token).issuer == cluster
    with pytest.raises(InvalidToken, match="not from issuer"):
        verifier.verify(oidc_issuer.mint(SENDER, AUDIENCE))


class RecordingIssuer:
    """Serves one issuer's documents over plain http.server and records each Authorization."""

    def __init__(self, issuer: RunningIssuer) -> None:
        documents = issuer.issuer.documents()
        self.authorizations: list[str | None] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.authorizations.append(self.headers.get("Authorization"))
                body = json.dumps(documents[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        documents[DISCOVERY_PATH] = {**documents[DISCOVERY_PATH], "jwks_uri": self.url + JWKS_PATH}
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recording_issuer(oidc_issuer: RunningIssuer) -> Iterator[RecordingIssuer]:
    server = RecordingIssuer(oidc_issuer)
    yield server
    server.close()


def test_the_discovery_token_file_is_sent_with_both_fetches(
    oidc_issuer: RunningIssuer, recording_issuer: RecordingIssuer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("service-account-token\n")
    settings = IssuerSettings(
        oidc_issuer.url,
        discovery_url=recording_issuer.url + DISCOVERY_PATH,
        discovery_token_file=str(token_file),
    )
    TokenVerifier(KeySet(settings), AUDIENCE).verify(oidc_issuer.mint(SENDER, AUDIENCE))
    assert recording_issuer.authorizations == ["Bearer service-account-token"] * 2
