"""Reading every YAML document under a manifest folder, with the line of each field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from shop.manifests.errors import ManifestError
from shop.manifests.fields import Origin, field_path, index_path

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Document:
    """One non-empty YAML document: its value, where it is, and its first repeated key if any."""

    origin: Origin
    value: object
    duplicate_key: tuple[str, int] | None = None  # (field path, line of the repetition)


def manifest_files(directory: Path) -> list[Path]:
    """Every `*.yaml` / `*.yml` file under `directory`, recursively, in sorted order.

    Files and folders whose name starts with a dot (editor backups, `.git`) are skipped.
    """
    if not directory.is_dir():
        raise ManifestError(str(directory), None, None, None, "not a directory")
    return sorted(
        path
        for path in directory.rglob("*")
        if path.suffix in (".yaml", ".yml")
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )


def read_documents(path: Path) -> Iterator[Document]:
    """The non-empty YAML documents of one file, in order."""
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(display, None, None, None, f"cannot read: {error}") from None
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[str, int] = {}
            # Index before constructing: construction flattens `<<` merges into the node.
            duplicate = _index_lines(node, "", lines, set())
            value = loader.construct_document(node)
            if value is None:
                continue
            yield Document(Origin(display, node.start_mark.line + 1, lines), value, duplicate)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(error, "problem", None) or str(error)
        raise ManifestError(display, line, None, None, f"invalid YAML: {problem}") from None
    finally:
        loader.dispose()


def _index_lines(
    node: yaml.Node, path: str, lines: dict[str, int], seen: set[int]
) -> tuple[str, int] | None:
    """Record the line of every field under `node`; return the first repeated key and its line."""
    if id(node) in seen:  # an alias: its fields were indexed where the anchor is
        return None
    seen.add(id(node))
    duplicate: tuple[str, int] | None = None
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            child = field_path(path, str(key_node.value))
            if key_node.value in keys and duplicate is None:
                duplicate = (child, key_node.start_mark.line + 1)
            keys.add(key_node.value)
            lines.setdefault(child, key_node.start_mark.line + 1)
            duplicate = duplicate or _index_lines(value_node, child, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = index_path(path, index)
            lines.setdefault(child, item.start_mark.line + 1)
            duplicate = duplicate or _index_lines(item, child, lines, seen)
    return duplicate
