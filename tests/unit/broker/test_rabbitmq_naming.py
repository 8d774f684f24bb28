"""RabbitMQBroker names (golden values of eventing-rabbitmq's naming_test.go), messages, rules."""

from __future__ import annotations

import hashlib

import pytest

from shop.broker.rabbitmq import naming
from shop.broker.rabbitmq.message import from_message, to_message
from shop.broker.rabbitmq.plan import PlanError, parallelism_of
from shop.broker.rabbitmq.topology import supports_quorum
from wire.http_binding import WireEvent


@pytest.mark.parametrize(
    ("name", "want"),
    [
        (
            naming.broker_exchange("foobar", "testbroker", "brokeruid"),
            "b.foobar.testbroker.brokeruid",
        ),
        (
            naming.broker_exchange("foobar", "testbroker", "brokeruid", dlx=True),
            "b.foobar.testbroker.dlx.brokeruid",
        ),
        (
            naming.trigger_dead_letter_exchange("foobar", "testtrigger", "triggeruid"),
            "t.foobar.testtrigger.dlx.triggeruid",
        ),
        (
            naming.broker_dead_letter_queue("foobar", "testbroker", "brokeruid"),
            "b.foobar.testbroker.dlq.brokeruid",
        ),
        (
            naming.trigger_queue("foobar", "testtrigger", "brokeruid"),
            "foobar.testtrigger.brokeruid",
        ),
        (
            naming.trigger_dead_letter_queue("foobar", "testtrigger", "triggeruid"),
            "t.foobar.testtrigger.dlq.triggeruid",
        ),
    ],
)
def test_names_are_eventing_rabbitmqs(name: str, want: str) -> None:
    assert name == want


def test_a_long_name_is_cut_with_the_md5_of_its_parent_as_kmeta_does() -> None:
    uid = "0b5ba0d6-5c27-5f0b-9e5a-4b1d5a0e8c11"
    parent = "b.a-rather-long-namespace-for-a-test.a-broker-with-a-long-name."
    # A short suffix: parent[:31 - len(suffix)] + md5(parent) + suffix.
    short = hashlib.md5(parent.encode()).hexdigest()
    assert naming.child_name(parent, "short") == parent[:26] + short + "short"
    # A UID (36 characters): parent[:31] + md5(parent + uid), padded to 63 with the uid's start.
    both = hashlib.md5((parent + uid).encode()).hexdigest()
    assert naming.child_name(parent, uid) == parent[:31] + both
    assert naming.child_name("b.ns.x.", uid) == "b.ns.x." + uid


def test_local_uids_are_uuid5_of_namespace_and_name_and_differ_by_kind() -> None:
    assert naming.broker_uid("shop", "default") == naming.broker_uid("shop", "default")
    assert naming.broker_uid("shop", "default") != naming.trigger_uid("shop", "default")
    assert naming.broker_uid("shop", "default") != naming.broker_uid("shop", "other")


def test_attributes_travel_as_unprefixed_headers_and_content_type() -> None:
    event = WireEvent(
        {
            "specversion": "1.0",
            "id": "1",
            "type": "t",
            "source": "/s",
            "datacontenttype": "application/json",
            "knativebrokerttl": 254,
        },
        b"{}",
    )
    message = to_message(event)
    assert message.headers["content-type"] == "application/json"
    assert message.headers["knativebrokerttl"] == 254
    assert "datacontenttype" not in message.headers
    assert message.delivery_mode == 2 and message.message_id == "1" and message.body == b"{}"
    back = from_message(
        {**message.headers, "x-knative-trigger": "t", "traceparent": "00-..."}, message.body
    )
    assert back == event


@pytest.mark.parametrize(
    ("text", "ok"), [("1", True), ("1000", True), ("0", False), ("1001", False), ("x", False)]
)
def test_parallelism_is_1_to_1000(text: str, ok: bool) -> None:
    annotations = {"rabbitmq.eventing.knative.dev/parallelism": text}
    if ok:
        assert parallelism_of(annotations, "shop/t") == int(text)
    else:
        with pytest.raises(PlanError, match="parallelism"):
            parallelism_of(annotations, "shop/t")
    assert parallelism_of({}, "shop/t") == 1


def test_quorum_queues_need_rabbitmq_3_8() -> None:
    assert supports_quorum("3.10.8") and supports_quorum("3.8.0") and supports_quorum("4.0.1")
    assert not supports_quorum("3.7.28")
