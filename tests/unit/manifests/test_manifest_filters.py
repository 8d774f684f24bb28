"""Trigger filters are admitted by the filter compiler of services/filters, errors named by path."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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


def _fake_filters(error_path: str, message: str) -> types.ModuleType:
    """A stand-in services.filters whose compiler always refuses with the given path."""
    module = types.ModuleType("services.filters")

    class FilterError(ValueError):
        def __init__(self, path: str, message: str) -> None:
            super().__init__(f"{path}: {message}")
            self.path = path
            self.message = message

    def compile_trigger_filter(spec: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
        raise FilterError(error_path, message)

    module.FilterError = FilterError  # type: ignore[attr-defined]
    module.compile_trigger_filter = compile_trigger_filter  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("error_path", "full_path"),
    [
        ("spec.filters[1].cesql", "spec.filters[1].cesql"),
        ("filters[1].cesql", "spec.filters[1].cesql"),
        ("", "spec"),
    ],
)
def test_a_filter_error_is_placed_under_spec(
    write: Write,
    manifest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    error_path: str,
    full_path: str,
) -> None:
    monkeypatch.setitem(sys.modules, "services.filters", _fake_filters(error_path, "bad"))
    write("30.yaml", TRIGGER + "  filters:\n    - cesql: x\n    - cesql: y\n")
    with pytest.raises(ManifestError) as caught:
        load_topology(manifest_dir)
    assert (caught.value.path, caught.value.message) == (full_path, "bad")


def test_triggers_without_filters_do_not_need_the_filter_compiler(
    write: Write, manifest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "services.filters", None)
    write("30.yaml", TRIGGER)
    assert len(load_topology(manifest_dir).triggers) == 1
