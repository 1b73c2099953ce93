"""YAML files whose every error names the file, line and field (scenarios, RBAC files).

The YAML is composed once for line numbers (and duplicate keys, which a plain load
would silently keep the last of) and loaded once for data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import FileError

Location = tuple[str | int, ...]


def field_name(location: Location) -> str:
    """('groups', 1, 'tpm') -> 'groups[1].tpm'."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class YamlDocument:
    source: str
    data: dict[str, Any]
    lines: dict[Location, int]
    error_type: type[FileError]

    def line_of(self, location: Location) -> int | None:
        """The line of the location, or of its nearest enclosing node."""
        for end in range(len(location), -1, -1):
            if location[:end] in self.lines:
                return self.lines[location[:end]]
        return None

    def error(self, location: Location, message: str) -> FileError:
        return self.error_type(self.source, self.line_of(location), field_name(location), message)


def read_text(path: str | Path, error_type: type[FileError]) -> str:
    source = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error_type(source, None, "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        line = Path(path).read_bytes()[: exc.start].count(b"\n") + 1
        raise error_type(source, line, "", "is not UTF-8 text") from exc


def parse_mapping(text: str, source: str, error_type: type[FileError], shape: str) -> YamlDocument:
    """A YAML mapping with the line of every node; `shape` says what the top level must be."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # An unclosed bracket is noticed where the text ends; the opening mark is the useful line.
        mark = exc.context_mark or exc.problem_mark
        what = f"{exc.context}, {exc.problem}" if exc.context else str(exc.problem)
        raise error_type(source, mark.line + 1 if mark else None, "", f"not valid YAML: {what}") from exc
    except yaml.YAMLError as exc:  # e.g. a control character, found by the reader
        position = getattr(exc, "position", None)
        line = text[:position].count("\n") + 1 if isinstance(position, int) else None
        raise error_type(source, line, "", f"not valid YAML: {exc}") from exc
    if root is None or not isinstance(data, dict):
        raise error_type(source, 1, "", shape)
    lines: dict[Location, int] = {}
    _lines(root, (), lines, source, error_type)
    return YamlDocument(source, data, lines, error_type)


def _lines(
    node: yaml.Node, path: Location, out: dict[Location, int], source: str, error_type: type[FileError]
) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise error_type(
                    source, line, field_name((*path, key)), "key appears twice in the same mapping"
                )
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out, source, error_type)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out, source, error_type)


def more_errors(count: int) -> str:
    """The suffix that says how many validation errors were not named."""
    return f" (and {count} more error{'s' if count > 1 else ''})" if count else ""
