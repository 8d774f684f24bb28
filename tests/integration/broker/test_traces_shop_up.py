"""Traces under a real `shop up`: each service is told where to export (the broker's OTLP
receiver) and under which name, and what is exported there joins the broker's own spans.

The service is tests/support/echo_sink.py, which says what environment it got; the span it
would export is exported by the OpenTelemetry SDK, configured from that environment alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.support.events import binary_request
from tests.support.processes import wait_for
from tests.support.runner_manifests import (
    broker_manifest,
    echo_service,
    trigger_manifest,
    write_manifests,
)
from tests.support.shop_up import ShopUp


def start(root: Path, *args: str) -> ShopUp:
    manifests = write_manifests(
        root / "manifests",
        [broker_manifest(), echo_service("traced"), trigger_manifest("to-traced", "traced")],
    )
    return ShopUp(manifests, root / "state", extra_args=args)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    with start(tmp_path_factory.mktemp("traces")) as running:
        yield running


def service_env(shop: ShopUp) -> dict[str, str]:
    response = requests.get(f"{shop.url('traced')}/env", timeout=5)
    response.raise_for_status()
    env: dict[str, str] = response.json()
    return env


def test_every_service_exports_to_the_broker_under_its_name(shop: ShopUp) -> None:
    base = f"http://127.0.0.1:{shop.port}"
    env = service_env(shop)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == base
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == "traced"
    assert shop.endpoints["otlp"] == f"{base}/v1/traces"


def test_a_service_s_span_and_the_broker_s_make_one_trace(shop: ShopUp) -> None:
    env = service_env(shop)
    base = f"http://127.0.0.1:{shop.port}"
    # The SDK as the service would set it up: the endpoint and the name from its environment.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: env["OTEL_SERVICE_NAME"]}))
    exporter = OTLPSpanExporter(endpoint=f"{env['OTEL_EXPORTER_OTLP_ENDPOINT']}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("send", kind=SpanKind.PRODUCER) as span:
        context = span.get_span_context()
    provider.shutdown()
    trace_id, span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    headers, body = binary_request("test.traced", traceparent=f"00-{trace_id}-{span_id}-01")
    response = requests.post(shop.broker_url, headers=headers, data=body, timeout=5)
    assert response.status_code == 202, response.text

    def spans() -> list[dict[str, Any]] | None:
        answer = requests.get(f"{base}/_shop/traces/{trace_id}", timeout=5)
        found: list[dict[str, Any]] = answer.json().get("spans", [])
        return found if len(found) >= 3 else None

    send, receive, deliver = wait_for(spans, timeout=10, what=f"the spans of trace {trace_id}")
    assert (send["service"], send["name"]) == ("traced", "send")
    assert (receive["service"], receive["parent_span_id"]) == ("broker", span_id)
    assert (deliver["name"], deliver["parent_span_id"]) == (
        "shop/to-traced deliver",
        receive["span_id"],
    )


def test_with_no_tracing_services_get_no_endpoint(tmp_path: Path) -> None:
    with start(tmp_path, "--no-tracing") as shop:
        env = service_env(shop)
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
        assert "otlp" not in shop.endpoints
