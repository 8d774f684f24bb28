"""A Broker of class Kafka in the routes: its topic's partitions, its Triggers' delivery order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shop.broker.routes import Routes, build_routes
from shop.manifests import ManifestError, load_topology
from tests.support.broker_process import broker_manifest, trigger_manifest
from wire.knative.filters import compile_trigger_filter

ORDER = "kafka.eventing.knative.dev/delivery.order"
SUBSCRIBER = {"uri": "http://127.0.0.1:9/"}


def routes(tmp_path: Path, documents: list[dict[str, Any]]) -> Routes:
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(documents))
    return build_routes(
        load_topology(tmp_path), {}, "http://127.0.0.1:8080", compile_trigger_filter, 32
    )


def annotated(document: dict[str, Any], **annotations: str) -> dict[str, Any]:
    document["metadata"]["annotations"] = {
        key.replace("_", "/"): value for key, value in annotations.items()
    }
    return document


def broker(broker_class: str = "Kafka", **spec: Any) -> dict[str, Any]:
    return annotated(broker_manifest(**spec), **{"eventing.knative.dev_broker.class": broker_class})


def ordered_trigger(name: str, value: str) -> dict[str, Any]:
    return annotated(trigger_manifest(name, SUBSCRIBER), **{ORDER.replace("/", "_"): value})


def config_map(data: dict[str, str], name: str = "kafka-config") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop"},
        "data": data,
    }


CONFIG_REF = {"apiVersion": "v1", "kind": "ConfigMap", "name": "kafka-config"}


def test_a_kafka_triggers_delivery_order_is_its_annotation_without_regard_to_case(
    tmp_path: Path,
) -> None:
    built = routes(
        tmp_path,
        [
            broker(),
            ordered_trigger("ordered", "Ordered"),
            ordered_trigger("unordered", "unordered"),
            trigger_manifest("plain", SUBSCRIBER),
        ],
    )
    ordered = {key: route.ordered for key, route in built.triggers.items()}
    assert ordered == {"shop/ordered": True, "shop/unordered": False, "shop/plain": False}


def test_an_invalid_delivery_order_stops_the_start_with_knatives_message(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as raised:
        routes(tmp_path, [broker(), ordered_trigger("sorted", "sorted")])
    error = raised.value
    assert (error.file, error.obj, error.path) == (
        str(tmp_path / "all.yaml"),
        "Trigger shop/sorted",
        f"metadata.annotations[{ORDER}]",
    )
    assert error.line is not None
    assert error.message == (
        f'invalid annotation {ORDER} value: sorted. Allowed values [ "ordered" | "unordered" ]'
    )


@pytest.mark.parametrize("broker_class", ["MTChannelBasedBroker", "RabbitMQBroker"])
def test_another_class_ignores_the_annotation_whatever_its_value(
    tmp_path: Path, broker_class: str
) -> None:
    built = routes(
        tmp_path,
        [
            broker(broker_class),
            ordered_trigger("ordered", "ordered"),
            ordered_trigger("nonsense", "sorted"),
        ],
    )
    assert not any(route.ordered for route in built.triggers.values())
    default = built.broker("shop", "default")
    assert default is not None and default.partitions is None


def test_the_partition_count_comes_from_the_config_map_spec_config_names(tmp_path: Path) -> None:
    built = routes(
        tmp_path,
        [broker(config=CONFIG_REF), config_map({"default.topic.partitions": "3"})],
    )
    default = built.broker("shop", "default")
    assert default is not None and default.partitions == 3


@pytest.mark.parametrize("config", [None, CONFIG_REF])
def test_a_config_map_not_in_the_manifests_has_the_10_partitions_knative_ships(
    tmp_path: Path, config: dict[str, str] | None
) -> None:
    built = routes(tmp_path, [broker() if config is None else broker(config=config)])
    default = built.broker("shop", "default")
    assert default is not None and default.partitions == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, r"data\[default.topic.partitions\]: required: the topic's partition count"),
        ({"default.topic.partitions": "0"}, "invalid configuration - numPartitions: 0"),
        ({"default.topic.partitions": "ten"}, "'ten' is not a 32-bit integer"),
        ({"default.topic.partitions": "2147483648"}, "is not a 32-bit integer"),
    ],
)
def test_a_config_map_without_a_valid_partition_count_stops_the_start(
    tmp_path: Path, data: dict[str, str], message: str
) -> None:
    with pytest.raises(ManifestError, match=message):
        routes(tmp_path, [broker(config=CONFIG_REF), config_map(data)])


def test_a_kafka_brokers_config_must_be_a_config_map(tmp_path: Path) -> None:
    config = {"apiVersion": "v1", "kind": "Secret", "name": "kafka-config"}
    with pytest.raises(ManifestError, match=r"spec\.config\.kind: invalid value: Secret"):
        routes(tmp_path, [broker(config=config)])
