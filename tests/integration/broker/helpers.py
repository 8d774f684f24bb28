"""Posting events to a broker under test and reading what it recorded."""

from __future__ import annotations

import base64
from typing import Any

import requests

from tests.support.broker_process import BrokerProcess
from tests.support.events import wire_event
from tests.support.oidc import RunningIssuer
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Received
from wire.http_binding import WireEvent, to_binary, to_structured
from wire.oidc.keys import IssuerSettings, KeySet
from wire.oidc.verify import TokenVerifier, VerifiedToken


def post(broker: BrokerProcess, event: WireEvent, structured: bool = False) -> WireEvent:
    """POST `event` to the default broker; assert 202."""
    headers, body = to_structured(event) if structured else to_binary(event)
    response = requests.post(broker.ingress(), headers=headers, data=body, timeout=5)
    assert response.status_code == 202, response.text
    return event


def send(broker: BrokerProcess, event_type: str, data: Any = None, **attributes: Any) -> WireEvent:
    """Build a valid event and POST it."""
    return post(broker, wire_event(event_type, data, **attributes))


def journal_event(broker: BrokerProcess, event_id: str) -> dict[str, Any]:
    """The journal entry (with attempts) of the event with this CloudEvents id."""
    events = broker.get("/_shop/events?limit=1000")["events"]
    seq = next(e["seq"] for e in events if e["id"] == event_id)
    document: dict[str, Any] = broker.get(f"/_shop/events/{seq}")
    return document


def wait_for_state(
    broker: BrokerProcess, event_id: str, trigger: str, state: str, timeout: float = 10.0
) -> dict[str, Any]:
    """The journal entry once the delivery to `trigger` is in `state` (fails with the last)."""

    def probe() -> dict[str, Any] | None:
        document = journal_event(broker, event_id)
        states = {d["trigger"]: d["state"] for d in document["deliveries"]}
        return document if states.get(trigger) == state else None

    return wait_for(probe, timeout=timeout, what=f"{trigger} of {event_id} to be {state}")


def decoded_error_data(value: str) -> bytes:
    return base64.b64decode(value)


def verified(issuer: RunningIssuer, received: Received, audience: str) -> VerifiedToken:
    """The token a delivery carried, verified as its receiver would verify it."""
    scheme, _, token = received.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    return TokenVerifier(KeySet(IssuerSettings(issuer.url)), audience).verify(token)
