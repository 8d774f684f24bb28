"""The local broker's replay endpoint as the CLI uses it, and a replay's plan in a terminal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from shop.inspect.deadletters import ApiError
from shop.inspect.reach import why_no_answer
from shop.inspect.render import table

_SEQ = re.compile(r"^\d+$")


def until_bound(text: str) -> int | str:
    """`--until`: a seq, or an ISO-8601 time (one without an offset is local time); ValueError."""
    stripped = text.strip()
    if _SEQ.match(stripped):
        return int(stripped)
    moment = datetime.fromisoformat(stripped)
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.isoformat()


@dataclass(frozen=True)
class ReplayClient:
    """`POST /_shop/replay` of one broker."""

    broker_admin: str
    timeout: float = 120.0

    def replay(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer; ApiError for a 4xx or no answer (a 503 of a replay that
        sent only part comes back, with what went)."""
        url = f"{self.broker_admin.rstrip('/')}/_shop/replay"
        try:
            response = requests.post(url, json=dict(body), timeout=self.timeout)
        except requests.RequestException as error:
            raise ApiError(
                None, f"the broker at {self.broker_admin} did not answer: {why_no_answer(error)}"
            ) from None
        try:
            answer = dict(response.json())
        except ValueError:
            answer = {"error": response.text.strip()[:300]}
        if response.status_code >= 400 and "events" not in answer:
            raise ApiError(response.status_code, str(answer.get("error", answer)))
        return response.status_code, answer


def render_plan(events: list[dict[str, Any]]) -> str:
    """The events a replay sends (or would): seq, id, type, subject, Triggers; once sent, the
    new seq of each (or why it was not sent)."""
    sent = bool(events) and "new_seq" in events[0]
    rows = []
    for item in events:
        row: list[object] = [item["seq"], item["id"], item["type"], item["subject"]]
        row.append(", ".join(item["triggers"]))
        if sent:
            row.append(item["new_seq"] or item.get("error"))
        rows.append(row)
    headers = ["SEQ", "ID", "TYPE", "SUBJECT", "TRIGGERS"] + (["NEW SEQ"] if sent else [])
    return table(headers, rows)
