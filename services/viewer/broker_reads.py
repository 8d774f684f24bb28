"""The viewer's reads of the local broker's own endpoints (`/_shop/...`), passed through.

The journal's event detail (services.viewer.deliveries) and the traces (services.viewer.traces)
come from the broker whose journal the viewer restores from (JOURNAL_URL): its origin is where
every `/_shop/` read goes. A cluster's broker has none of them and answers 404, which the page
shows as it comes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import Flask, Response, current_app

from kit import RequestError

_EXTENSION = "shop.viewer.broker_reads"


@dataclass(frozen=True)
class BrokerReads:
    """Where the broker's journal is, which broker's events are the viewer's, how long to wait."""

    journal_url: str | None
    #: `namespace/name` of the viewer's broker (the journal holds every broker's events).
    broker: str | None
    timeout: float

    def url(self, path: str) -> str:
        """The broker's URL of `path` (`/_shop/...`): the journal's origin and that path."""
        if self.journal_url is None:
            raise RequestError(
                503, "the viewer reads no broker journal: set JOURNAL_URL (or K_SINK)"
            )
        parts = urlsplit(self.journal_url)
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    def get(self, path: str, params: Mapping[str, str] | None = None) -> requests.Response:
        """The broker's answer to `GET path`; 502 when it does not answer."""
        url = self.url(path)
        try:
            return requests.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise RequestError(502, f"the broker at {url} did not answer: {error}") from None

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The broker's JSON answer to `GET path`; 502 for anything but a 200 with JSON."""
        answer = self.get(path, params)
        try:
            answer.raise_for_status()
            return answer.json()
        except (requests.RequestException, ValueError) as error:
            raise RequestError(502, f"cannot read {answer.url}: {error}") from None


def passed_through(answer: requests.Response) -> Response:
    """The broker's answer, status and body unchanged."""
    return Response(
        answer.content,
        status=answer.status_code,
        content_type=answer.headers.get("Content-Type", "application/json"),
    )


def install_broker_reads(app: Flask, reads: BrokerReads) -> None:
    """Give `app`'s routes these broker reads (create_app calls it)."""
    app.extensions[_EXTENSION] = reads


def broker_reads() -> BrokerReads:
    """The current app's broker reads."""
    reads: BrokerReads = current_app.extensions[_EXTENSION]
    return reads
