"""A Kafka broker's partitions: Kafka's own partitioner, and one event out per partition."""

from __future__ import annotations

import itertools

import pytest

from shop.broker.envelope import Envelope
from shop.broker.ordering import PartitionOrder, Partitions
from wire.http_binding import WireEvent
from wire.knative.kafka import StickyPartition, key_partition, murmur2, to_positive

# org.apache.kafka.common.utils.UtilsTest.testMurmur2: the values Utils.murmur2 gives.
KAFKA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


def envelope(seq: int, key: str | int | None = None, data: bytes = b"{}") -> Envelope:
    attributes: dict[str, str | int | bool] = {
        "specversion": "1.0",
        "id": f"e-{seq}",
        "source": "/test",
        "type": "t",
    }
    if key is not None:
        attributes["partitionkey"] = key
    return Envelope("shop/default", WireEvent(attributes, data), (), 0.0, seq=seq)


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2)
def test_murmur2_matches_kafkas_published_values(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_to_positive_clears_the_sign_bit_rather_than_negating() -> None:
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-790332482) == 1357151166
    assert to_positive(479470107) == 479470107


@pytest.mark.parametrize(
    ("key", "partitions", "expected"),
    [
        # toPositive(murmur2(key)) % partitions, from the values above.
        ("21", 10, 1173551340 % 10),
        ("foobar", 10, 1357151166 % 10),
        ("a-little-bit-long-string", 10, 1161502112 % 10),
        ("a-little-bit-longer-string", 10, 661178819 % 10),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 3, 2088585677 % 3),
        ("abc", 7, 479470107 % 7),
    ],
)
def test_a_key_goes_to_its_murmur2_made_positive_modulo_the_partition_count(
    key: str, partitions: int, expected: int
) -> None:
    assert key_partition(key, partitions) == expected


def test_keyless_records_stay_on_one_partition_until_a_batch_is_full_then_move() -> None:
    draws = itertools.cycle([4, 1])
    sticky = StickyPartition(10, choose=lambda count: next(draws), batch_bytes=100)
    taken = [sticky.take(40) for _ in range(6)]
    # 40 + 40 + 40 >= 100: the third record is the last on partition 4.
    assert taken == [4, 4, 4, 1, 1, 1]


def test_an_events_partition_comes_from_its_partitionkey_and_is_chosen_once() -> None:
    partitions = Partitions(10, StickyPartition(10, choose=lambda count: 3))
    keyed, numbered, keyless = envelope(1, "foobar"), envelope(2, 21), envelope(3)
    assert partitions.of(keyed) == key_partition("foobar", 10) == keyed.partition
    # A structured-mode integer is the key's text, as a binary-mode header would carry it.
    assert partitions.of(numbered) == key_partition("21", 10)
    assert partitions.of(keyless) == 3
    keyed.partition = 9
    assert partitions.of(keyed) == 9


def test_a_partition_sends_its_next_event_only_once_the_one_before_is_released() -> None:
    order: PartitionOrder[str] = PartitionOrder(Partitions(10))
    a1, a2, a3 = envelope(1, "foobar"), envelope(2, "foobar"), envelope(4, "foobar")
    other = envelope(3, "21")
    assert order.admit("a1", a1, 0.0)
    assert not order.admit("a2", a2, 0.0)
    assert order.admit("other", other, 0.0), "another partition is not held back"
    assert not order.admit("a3", a3, 0.0)
    assert order.waiting() == 2
    assert order.release(a1) == ("a2", 0.0)
    assert order.release(a2) == ("a3", 0.0)
    assert order.release(a3) is None
    assert order.admit("a4", envelope(5, "foobar"), 0.0), "the partition is free again"


def test_a_held_back_event_keeps_what_remains_of_its_delay() -> None:
    order: PartitionOrder[str] = PartitionOrder(Partitions(10))
    first, resumed = envelope(1, "abc"), envelope(2, "abc")
    order.admit("first", first, 0.0)
    order.admit("resumed", resumed, 30.0)
    released = order.release(first)
    assert released is not None
    item, delay = released
    assert item == "resumed" and 29.0 < delay <= 30.0
