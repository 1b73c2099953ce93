"""Reading scenario YAML, with every error pointing at its file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ScenarioError
from ._model import GroupSettings, Hardware, ResolvedGroup, Scenario, ScenarioFile, TPMSettings

Location = tuple[str | int, ...]

_BUILT_IN_DEFAULTS: dict[str, Any] = {
    "platform": "physical",
    "os_build": "10.0.22631.2792",
    "ownership": "corporate",
    "upn_domain": "contoso.com",
}


def _lines(node: yaml.Node, path: Location, out: dict[Location, int], source: str) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise ScenarioError(
                    source,
                    key_node.start_mark.line + 1,
                    _field((*path, key)),
                    "key appears twice in the same mapping",
                )
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out, source)


def _line_of(location: Location, lines: dict[Location, int]) -> int | None:
    for end in range(len(location), -1, -1):
        if location[:end] in lines:
            return lines[location[:end]]
    return None


def _field(location: Location) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _error_from(
    exc: ValidationError, source: str, lines: dict[Location, int], prefix: Location = ()
) -> ScenarioError:
    first = exc.errors()[0]
    location: Location = (
        *prefix,
        *(p for p in first["loc"] if not isinstance(p, str) or not p.startswith("function-")),
    )
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "literal_error" or first["type"] == "enum":
        expected = first.get("ctx", {}).get("expected")
        message = f"must be one of {expected}" if expected else message
    extra = len(exc.errors()) - 1
    if extra:
        message += f" (and {extra} more error{'s' if extra > 1 else ''})"
    return ScenarioError(source, _line_of(location, lines), _field(location), message)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file; raises ScenarioError naming file, line and field."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, None, "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        line = Path(path).read_bytes()[: exc.start].count(b"\n") + 1
        raise ScenarioError(source, line, "", "is not UTF-8 text") from exc
    return parse_scenario(text, source)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # An unclosed bracket is noticed where the text ends; the opening mark is the useful line.
        mark = exc.context_mark or exc.problem_mark
        what = f"{exc.context}, {exc.problem}" if exc.context else str(exc.problem)
        raise ScenarioError(source, mark.line + 1 if mark else None, "", f"not valid YAML: {what}") from exc
    except yaml.YAMLError as exc:  # e.g. a control character, found by the reader
        position = getattr(exc, "position", None)
        line = text[:position].count("\n") + 1 if isinstance(position, int) else None
        raise ScenarioError(source, line, "", f"not valid YAML: {exc}") from exc
    if root is None or not isinstance(data, dict):
        raise ScenarioError(source, 1, "", "a scenario is a mapping with 'name' and 'groups'")
    lines: dict[Location, int] = {}
    _lines(root, (), lines, source)
    try:
        document = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        raise _error_from(exc, source, lines) from exc
    seen: set[str] = set()
    for index, group in enumerate(document.groups):
        if group.name in seen:
            location: Location = ("groups", index, "name")
            raise ScenarioError(
                source,
                _line_of(location, lines),
                _field(location),
                f"group name '{group.name}' is used twice",
            )
        seen.add(group.name)
    _check_references(document, source, lines)
    return Scenario(
        name=document.name,
        description=document.description,
        seed=document.seed,
        path=source,
        principals=document.principals,
        steps=document.steps,
        backend=document.backend,
        groups=[
            _resolve(document.defaults, group, source, lines, index)
            for index, group in enumerate(document.groups)
        ],
    )


def _check_references(document: ScenarioFile, source: str, lines: dict[Location, int]) -> None:
    """Steps name groups and principals that exist."""
    groups = {g.name for g in document.groups}
    principals = {"admin"} | {p.name for p in document.principals}
    for index, step in enumerate(document.steps):
        kind = step.kind
        for position, group in enumerate(step.groups()):
            if group not in groups:
                location: Location = ("steps", index, kind, "groups", position)
                if kind in ("world", "expect"):
                    location = ("steps", index, kind, "group")
                raise ScenarioError(
                    source, _line_of(location, lines), _field(location), f"no group named '{group}'"
                )
        if step.attest is not None and step.attest.principal not in principals:
            location = ("steps", index, kind, "as")
            raise ScenarioError(
                source,
                _line_of(location, lines),
                _field(location),
                f"no principal named '{step.attest.principal}' (declare it under 'principals')",
            )


def _resolve(
    defaults: GroupSettings,
    group: GroupSettings,
    source: str,
    lines: dict[Location, int],
    index: int,
) -> ResolvedGroup:
    merged: dict[str, Any] = dict(_BUILT_IN_DEFAULTS)
    for layer in (defaults, group):
        for key, value in layer.model_dump(exclude_unset=True, exclude_none=True).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    merged.setdefault("hardware", Hardware().model_dump())
    merged.setdefault("tpm", TPMSettings().model_dump())
    merged.pop("count", None)
    group_fields = group.model_dump(include={"name", "count", "description", "expect"})
    try:
        return ResolvedGroup.model_validate({**merged, **group_fields, "line": lines.get(("groups", index))})
    except ValidationError as exc:
        raise _error_from(exc, source, lines, ("groups", index)) from exc
