"""Knative Trigger filters: `spec.filter.attributes` and `spec.filters`, as Knative has them.

Admission follows the eventing webhook (pkg/apis/eventing/v1/trigger_validation.go) and
evaluation the broker's filter (pkg/eventfilter). Knative filters answer one of three results;
only FAIL drops an event, while NO_FILTER ("nothing to apply") lets it through like PASS. The
third result matters inside `not` and `any`, so it is kept here as Knative keeps it.

Knative quirks kept on purpose (a manifest must mean the same here and in a cluster):
- an entry with no dialect, or whose dialect is empty (`exact: {}`, `any: []`, `cesql: ''`), or
  an exact/prefix/suffix with an empty value, is admitted and then skipped: it filters nothing;
- exact, prefix and suffix take exactly one attribute each (combine several with `all`);
- `filters` replaces `filter` only when the list is non-empty;
- `any` whose filters all fail or are skipped answers what its last filter answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from wire.knative.filters.cesql import CesqlParseError, Value, parse
from wire.knative.filters.cesql.values import to_string

Event = Mapping[str, Value]
Predicate = Callable[[Event], bool]

PASS, FAIL, NO_FILTER = 0, 1, 2
Outcome = Callable[[Event], int]

DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
_ATTRIBUTE_MAPS = ("exact", "prefix", "suffix")
_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9]*")
_NAME_RULE = "attribute names start with a letter and hold only lowercase letters and digits"
_STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "exact": str.__eq__,
    "prefix": str.startswith,
    "suffix": str.endswith,
}


class FilterError(ValueError):
    """A filter Knative would refuse, with the path of the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def compile_trigger_filter(spec: Mapping[str, Any]) -> Predicate:
    """The predicate of a Trigger's `spec`: `filters` when non-empty, else `filter.attributes`."""
    if not isinstance(spec, Mapping):
        raise FilterError("spec", "must be an object")
    legacy = _legacy_filter(spec.get("filter"), "spec.filter")
    filters = _entries(spec.get("filters"), "spec.filters")
    if filters:
        return _predicate(_all(_materialized(filters)))
    return _predicate(legacy or _constant(NO_FILTER))


def compile_filters(filters: Sequence[Mapping[str, Any]], path: str = "spec.filters") -> Predicate:
    """The predicate of a `filters` list: every entry must hold; an empty list matches all."""
    return _predicate(_all(_materialized(_entries(filters, path))))


def compile_user_filter(text: str) -> Predicate:
    """A filter typed by a person: a CESQL expression, or a JSON/YAML object of one dialect."""
    stripped = text.strip()
    if not stripped:
        raise FilterError("filter", "empty: type a CESQL expression or an object such as " + _HINT)
    if stripped.startswith("{"):
        return _user_object(_load_object(stripped))
    try:
        expression = parse(text)
    except CesqlParseError as problem:
        document = _try_yaml(stripped)
        if isinstance(document, Mapping):
            return _user_object(document)
        raise FilterError("filter", f"not a valid CESQL expression: {problem}") from None
    return _predicate(_cesql_outcome(expression.matches))


_HINT = '{"exact": {"type": "order.created"}}'


def _load_object(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as problem:
        raise FilterError("filter", f"not valid JSON or YAML: {problem}") from None


def _try_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _user_object(document: Any) -> Predicate:
    if not isinstance(document, Mapping):
        raise FilterError("filter", "expected a CESQL expression or an object such as " + _HINT)
    outcome = _entry(document, "filter")
    if not any(_is_set(dialect, document.get(dialect)) for dialect in DIALECTS):
        raise FilterError("filter", f"needs one non-empty dialect of {', '.join(DIALECTS)}")
    if outcome is None:
        raise FilterError("filter", "an empty value filters nothing (Knative skips such a filter)")
    return _predicate(outcome)


def _predicate(outcome: Outcome) -> Predicate:
    return lambda event: outcome(event) != FAIL


def _constant(result: int) -> Outcome:
    return lambda event: result


# Admission ------------------------------------------------------------------------------


def _legacy_filter(value: Any, path: str) -> Outcome | None:
    """`spec.filter`: None when absent; NO_FILTER when it has no attributes."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise FilterError(path, "must be an object with 'attributes'")
    for key in value:
        if key != "attributes":
            raise FilterError(f"{path}.{key}", "unknown field; a filter has only 'attributes'")
    attributes = value.get("attributes")
    if attributes is None:
        return _constant(NO_FILTER)
    pairs = _attribute_map(attributes, f"{path}.attributes")
    return _attributes(pairs)


def _attribute_map(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise FilterError(path, "must be a map of attribute name to string value")
    for name, wanted in value.items():
        if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
            raise FilterError(f"{path}[{name}]", f"invalid attribute name: {_NAME_RULE}")
        if not isinstance(wanted, str):
            raise FilterError(
                f"{path}[{name}]", f"value must be a string, got {wanted!r} (quote it in YAML)"
            )
    return dict(value)


def _entries(value: Any, path: str) -> list[Outcome | None]:
    """A list of filter entries, admitted and materialized (None for an entry Knative skips)."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise FilterError(path, "must be a list of filters")
    return [_entry(entry, f"{path}[{index}]") for index, entry in enumerate(value)]


def _entry(entry: Any, path: str) -> Outcome | None:
    """One filter entry, admitted; its outcome, or None when Knative would skip it."""
    if not isinstance(entry, Mapping):
        raise FilterError(path, f"must be an object with one dialect of {', '.join(DIALECTS)}")
    for key in entry:
        if key not in DIALECTS:
            raise FilterError(
                f"{path}.{key}", f"unknown dialect; expected one of {', '.join(DIALECTS)}"
            )
    present = [dialect for dialect in DIALECTS if _is_set(dialect, entry.get(dialect))]
    if len(present) > 1:
        raise FilterError(
            path, f"multiple dialects found ({', '.join(present)}); a filter holds exactly one"
        )
    maps = {key: _single_attribute(entry.get(key), f"{path}.{key}") for key in _ATTRIBUTE_MAPS}
    alls = _entries(entry.get("all"), f"{path}.all")
    anys = _entries(entry.get("any"), f"{path}.any")
    negated = entry.get("not")
    inner = None if negated is None else _entry(negated, f"{path}.not")
    expression = entry.get("cesql")
    matches = None if expression is None else _cesql(expression, f"{path}.cesql")
    # Knative materializes the first dialect that is set, in this order.
    for key in _ATTRIBUTE_MAPS:
        if maps[key]:
            return _attribute_test(maps[key], _STRING_TESTS[key])
    if alls:
        return _all(_materialized(alls))
    if anys:
        return _any(_materialized(anys))
    if negated is not None:
        return _not(inner)
    if matches is not None:
        return _cesql_outcome(matches)
    return None


def _is_set(dialect: str, value: Any) -> bool:
    """Whether a dialect counts as present: Knative tests len() > 0, and non-nil for `not`."""
    if dialect == "not":
        return value is not None
    return bool(value)


def _single_attribute(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    pairs = _attribute_map(value, path)
    if len(pairs) > 1:
        raise FilterError(
            path, f"has {len(pairs)} attributes; Knative allows one per filter (use 'all')"
        )
    return pairs


def _cesql(expression: Any, path: str) -> Callable[[Event], bool] | None:
    if not isinstance(expression, str):
        raise FilterError(path, "must be a string holding a CESQL expression")
    if not expression:
        return None
    try:
        return parse(expression).matches
    except CesqlParseError as problem:
        raise FilterError(path, f"invalid CESQL expression: {problem}") from None


def _materialized(outcomes: list[Outcome | None]) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome is not None]


# Evaluation -----------------------------------------------------------------------------


def _attributes(pairs: dict[str, str]) -> Outcome:
    """`filter.attributes`: each present, and equal to its value, or non-empty for ''."""
    checks = tuple(pairs.items())

    def outcome(event: Event) -> int:
        for name, wanted in checks:
            value = event.get(name)
            if value is None:
                return FAIL
            text = value if type(value) is str else to_string(value)
            if (text != wanted) if wanted else (text == ""):
                return FAIL
        return PASS

    return outcome


def _attribute_test(pairs: dict[str, str], test: Callable[[str, str], bool]) -> Outcome | None:
    """exact, prefix or suffix: present, and the value's string form passes the test."""
    if any(not wanted for wanted in pairs.values()):
        return None  # Knative refuses to build it and skips the entry
    ((name, wanted),) = pairs.items()

    def outcome(event: Event) -> int:
        value = event.get(name)
        if value is None:
            return FAIL
        return PASS if test(value if type(value) is str else to_string(value), wanted) else FAIL

    return outcome


def _cesql_outcome(matches: Callable[[Event], bool]) -> Outcome:
    return lambda event: PASS if matches(event) else FAIL


def _all(outcomes: list[Outcome]) -> Outcome:
    """FAIL at the first failing filter, else what the last one answered (NO_FILTER if none)."""
    return _settled_by(FAIL, outcomes)


def _any(outcomes: list[Outcome]) -> Outcome:
    """PASS at the first passing filter, else what the last one answered (NO_FILTER if none)."""
    return _settled_by(PASS, outcomes)


def _settled_by(decisive: int, outcomes: list[Outcome]) -> Outcome:
    """`decisive` at the first member that answers it, else what the last one answered."""
    if len(outcomes) == 1:
        return outcomes[0]
    members = tuple(outcomes)

    def outcome(event: Event) -> int:
        result = NO_FILTER
        for member in members:
            result = member(event)
            if result == decisive:
                return decisive
        return result

    return outcome


def _not(inner: Outcome | None) -> Outcome:
    """PASS and FAIL swapped; NO_FILTER stays, also for a skipped inner filter."""
    if inner is None:
        return _constant(NO_FILTER)
    swap = (FAIL, PASS, NO_FILTER)
    return lambda event: swap[inner(event)]
