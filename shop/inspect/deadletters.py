"""The deadletter service's API as the CLI uses it, and how dead letters look in a terminal."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from shop.inspect.reach import why_no_answer
from shop.inspect.render import table

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ApiError(Exception):
    """The deadletter service (or the way to it) answered with an error."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class DeadLetterClient:
    """`GET/POST/DELETE /deadletters...` of one deadletter service."""

    base_url: str
    timeout: float = 10.0

    def list(self, query: Mapping[str, str]) -> dict[str, Any]:
        return self._call("GET", "/deadletters", params=query)

    def summary(self) -> dict[str, Any]:
        return self._call("GET", "/deadletters/summary")

    def show(self, dead_letter_id: int) -> dict[str, Any]:
        return self._call("GET", f"/deadletters/{dead_letter_id}")

    def redeliver(self, dead_letter_id: int, to: str) -> dict[str, Any]:
        """Send one dead letter again: `to` the subscriber that failed it, or the broker."""
        return self._call("POST", f"/deadletters/{dead_letter_id}/redeliver", body={"to": to})

    def redeliver_matching(self, expression: str, to: str, dry_run: bool) -> dict[str, Any]:
        """Send (or with `dry_run` list) every pending dead letter `expression` matches."""
        body = {"filter": expression, "to": to, "dry_run": dry_run}
        return self._call("POST", "/deadletters/redeliver", body=body)

    def delete(self, dead_letter_id: int) -> None:
        self._call("DELETE", f"/deadletters/{dead_letter_id}")

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base_url.rstrip('/')}{path}"
        try:
            response = requests.request(method, url, params=params, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            why = why_no_answer(error)
            message = f"the deadletter service at {self.base_url} did not answer: {why}"
            raise ApiError(None, message) from None
        if response.status_code == 204:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text.strip()}
        if not response.ok:
            raise ApiError(response.status_code, str(body.get("error", body)))
        return dict(body)


def time_bound(text: str, now: datetime | None = None) -> str:
    """`--since`/`--until`: RFC 3339 as it is, or `30s`/`10m`/`2h`/`1d` ago."""
    match = _RELATIVE.match(text.strip())
    if match is None:
        return text
    amount, unit = int(match.group(1)), match.group(2)
    moment = (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    return moment.isoformat(timespec="seconds")


def name_destinations(endpoints: Mapping[str, str]) -> dict[str, str]:
    """Local service URL -> service name, to show `payment` rather than a port number."""
    names: dict[str, str] = {}
    for key, url in endpoints.items():
        if "/" not in key and url.startswith("http"):
            names.setdefault(url.rstrip("/"), key)
    return names


def destination_label(destination: str | None, names: Mapping[str, str]) -> str | None:
    if destination is None:
        return None
    name = names.get(destination.rstrip("/"))
    return f"{name} ({destination})" if name else destination


def render_list(body: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The dead letters as a table, newest first."""
    items = body["dead_letters"]
    if not items:
        return "no dead letters"
    rows = [
        (
            item["id"],
            item["received_at"][:19].replace("T", " "),
            item["type"],
            item["subject"],
            destination_label(item["destination"], names),
            item["error_code"],
            (item["error_data"] or "")[:40],
            "redelivered" if item["redelivered_at"] else "pending",
        )
        for item in items
    ]
    shown = f"{len(items)} of {body['total']}" if body["total"] > len(items) else str(len(items))
    headers = ("ID", "RECEIVED", "TYPE", "SUBJECT", "FAILED AT", "CODE", "ANSWER", "STATE")
    return f"{table(headers, rows)}\n({shown} dead letters)"


def render_detail(item: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """One dead letter: why it failed, its redeliveries, and the original event."""
    lines = [
        f"dead letter {item['id']}: {item['type']} id={item['event_id']} source={item['source']}",
        f"  received     {item['received_at']}",
        f"  failed at    {destination_label(item['destination'], names)}",
        f"  answer       {item['error_code']}: {item['error_data'] or ''}"
        + (" (cut)" if item["error_data_truncated"] else ""),
        f"  redelivered  {item['redelivered_at'] or 'never'}",
    ]
    for attempt in item["redeliveries"]:
        lines.append(
            f"    {attempt['attempted_at']}  {attempt['outcome']}  "
            f"{attempt['status'] if attempt['status'] is not None else 'no answer'}"
        )
    lines.append("event:")
    lines.append(json.dumps(item["event"], indent=2, ensure_ascii=False))
    return "\n".join(lines)


def render_broker_held(items: list[dict[str, Any]]) -> str:
    """Events the local broker keeps itself: their trigger has no dead-letter sink."""
    rows = [
        (
            item["seq"],
            item["time"][:19].replace("T", " "),
            item["type"],
            item["trigger"],
            item["knativeerrordest"],
            item["knativeerrorcode"],
            item["reason"],
        )
        for item in items
    ]
    headers = ("SEQ", "TIME", "TYPE", "TRIGGER", "FAILED AT", "CODE", "REASON")
    return table(headers, rows)
