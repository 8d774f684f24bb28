"""Trigger filters are admitted by the filter compiler (wire/knative/filters), errors by path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shop.manifests import ManifestError, load_topology

Write = Callable[[str, str], Path]

TRIGGER = """
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: payment-order-created
  namespace: shop
spec:
  broker: default
  subscriber:
    uri: http://payment.shop.svc.cluster.local/
"""


def test_valid_filters_are_admitted_and_kept_raw(write: Write, manifest_dir: Path) -> None:
    write(
        "30.yaml",
        TRIGGER
        + "  filter:\n    attributes: {type: shop.order.created}\n"
        + "  filters:\n"
        + "    - exact: {type: shop.order.created}\n"
        + "    - any: [{prefix: {source: /shop}}, {suffix: {subject: .json}}]\n"
        + "    - not: {exact: {region: eu}}\n"
        + "    - cesql: \"type LIKE 'shop.%' AND source <> '/test'\"\n",
    )
    (trigger,) = load_topology(manifest_dir).triggers
    assert trigger.filter == {"attributes": {"type": "shop.order.created"}}
    assert trigger.filters is not None
    assert trigger.filters[0] == {"exact": {"type": "shop.order.created"}}
    assert len(trigger.filters) == 4


@pytest.mark.parametrize(
    ("filters", "path"),
    [
        ("    - exact: {type: a}\n      prefix: {source: b}\n", "spec.filters[0]"),
        ("    - cesql: \"type = = 'x'\"\n", "spec.filters[0].cesql"),
        ("    - all:\n        - exact: {Type: a}\n", "spec.filters[0].all[0].exact"),
    ],
)
def test_invalid_filters_stop_startup_naming_the_filter_path(
    write: Write, manifest_dir: Path, filters: str, path: str
) -> None:
    file = write("30.yaml", TRIGGER + "  filters:\n" + filters)
    with pytest.raises(ManifestError) as caught:
        load_topology(manifest_dir)
    assert caught.value.file == str(file)
    assert caught.value.obj == "Trigger shop/payment-order-created"
    assert caught.value.path is not None
    assert caught.value.path.startswith(path)
    assert str(caught.value).startswith(f"{file}:1")  # a line inside the trigger's document


def test_a_filter_error_deep_in_the_list_names_its_full_path(
    write: Write, manifest_dir: Path
) -> None:
    write("30.yaml", TRIGGER + '  filters:\n    - cesql: "type = \'x\'"\n    - cesql: "type =="\n')
    with pytest.raises(ManifestError) as caught:
        load_topology(manifest_dir)
    assert caught.value.path == "spec.filters[1].cesql"
    assert caught.value.message.startswith("invalid CESQL expression")
