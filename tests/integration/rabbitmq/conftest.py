"""One `shop up --rabbitmq` of the chart rendered with values-rabbitmq.yaml, on the real
RabbitMQ at 127.0.0.1:5672: the saga on the RabbitMQBroker class.

The Broker's name is this run's own (its exchange and queues are named after it), and what it
declared on RabbitMQ is deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.rendering import CHART, find_helm, is_helm, render_module
from tests.conftest import require
from tests.support.rabbitmq import AMQP, delete_broker, require_rabbitmq
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

NAMESPACE = "shop"


@pytest.fixture(scope="package")
def broker_name() -> str:
    return f"saga-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
def rabbitmq_manifests(tmp_path_factory: pytest.TempPathFactory, broker_name: str) -> Path:
    require_rabbitmq()
    helm = find_helm(4)
    require(is_helm(helm, 4), "helm 4 is not installed -> make tools")
    render = render_module()
    folder = tmp_path_factory.mktemp("rabbitmq-manifests")
    files = render.render(
        helm,
        set_values=(*render.MANIFEST_VALUES, f"broker.name={broker_name}"),
        values_files=(CHART / "values-rabbitmq.yaml",),
    )
    render.write(files, folder)
    return folder


@pytest.fixture(scope="package")
def shop(
    tmp_path_factory: pytest.TempPathFactory, rabbitmq_manifests: Path, broker_name: str
) -> Iterator[ShopUp]:
    state = tmp_path_factory.mktemp("rabbitmq") / "state"
    try:
        with ShopUp(rabbitmq_manifests, state, extra_args=["--rabbitmq", AMQP]) as running:
            yield running
    finally:
        delete_broker(NAMESPACE, broker_name, _trigger_names(rabbitmq_manifests))


def _trigger_names(folder: Path) -> list[str]:
    text = (folder / "80-triggers.yaml").read_text(encoding="utf-8")
    documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(text) if d]
    return [d["metadata"]["name"] for d in documents]


@pytest.fixture(scope="package")
def client(shop: ShopUp) -> ShopClient:
    return ShopClient(shop.endpoints)


@pytest.fixture
def customer(client: ShopClient) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    return client.register(f"Rabbit Customer {tag}", f"rabbit-{tag}@example.com")
