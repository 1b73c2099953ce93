"""Reading scenario YAML, with every error pointing at its file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._yamlfile import Location, YamlDocument, field_name, more_errors, parse_mapping, read_text
from ..errors import FileError, ScenarioError
from ._assembly import scenario_models
from ._external import external_tpm_conflict
from ._model import GroupSettings, Hardware, ResolvedGroup, Scenario, ScenarioFile

_BUILT_IN_DEFAULTS: dict[str, Any] = {
    "platform": "physical",
    "os_build": "10.0.22631.2792",
    "ownership": "corporate",
    "upn_domain": "contoso.com",
}


def _error_from(exc: ValidationError, document: YamlDocument, prefix: Location = ()) -> FileError:
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
    return document.error(location, message + more_errors(len(exc.errors()) - 1))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file; raises ScenarioError naming file, line and field."""
    return parse_scenario(read_text(path, ScenarioError), str(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    yaml_doc = parse_mapping(text, source, ScenarioError, "a scenario is a mapping with 'name' and 'groups'")
    try:
        document = scenario_models().scenario_file.model_validate(yaml_doc.data)
    except ValidationError as exc:
        raise _error_from(exc, yaml_doc) from exc
    seen: set[str] = set()
    for index, group in enumerate(document.groups):
        if group.name in seen:
            raise yaml_doc.error(("groups", index, "name"), f"group name '{group.name}' is used twice")
        seen.add(group.name)
    _check_references(document, yaml_doc)
    return Scenario(
        name=document.name,
        description=document.description,
        seed=document.seed,
        path=source,
        principals=document.principals,
        steps=document.steps,
        backend=document.backend,
        groups=[
            _resolve(document.defaults, group, yaml_doc, index) for index, group in enumerate(document.groups)
        ],
    )


def _check_references(document: ScenarioFile, yaml_doc: YamlDocument) -> None:
    """Steps name groups and principals that exist."""
    groups = {g.name for g in document.groups}
    principals = {"admin"} | {p.name for p in document.principals}
    for index, step in enumerate(document.steps):
        kind = step.kind
        for position, group in enumerate(step.groups()):
            if group not in groups:
                location: Location = ("steps", index, kind, "groups", position)
                if kind in ("world", "expect", "expect_report"):
                    location = ("steps", index, kind, "group")
                raise yaml_doc.error(location, f"no group named '{group}'")
        if step.attest is not None and step.attest.principal not in principals:
            raise yaml_doc.error(
                ("steps", index, kind, "as"),
                f"no principal named '{step.attest.principal}' (declare it under 'principals')",
            )
        selection = step.report.attest if step.report is not None else None
        if selection is not None and selection.principal not in principals:
            raise yaml_doc.error(
                ("steps", index, kind, "attest", "as"),
                f"no principal named '{selection.principal}' (declare it under 'principals')",
            )


def _resolve(
    defaults: GroupSettings, group: GroupSettings, yaml_doc: YamlDocument, index: int
) -> ResolvedGroup:
    merged: dict[str, Any] = dict(_BUILT_IN_DEFAULTS)
    for layer in (defaults, group):
        for key, value in layer.model_dump(exclude_unset=True, exclude_none=True).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    merged.setdefault("hardware", Hardware().model_dump())
    merged.setdefault("tpm", scenario_models().sections["tpm"]().model_dump())
    merged.pop("count", None)
    group_fields = group.model_dump(include={"name", "count", "description", "expect"})
    settings_at: dict[str, tuple[str, int | None]] = {}
    for layer, prefix in ((defaults, ("defaults",)), (group, ("groups", index))):
        for name in layer.tpm.model_fields_set if layer.tpm is not None else ():
            location: Location = (*prefix, "tpm", name)
            settings_at[name] = (field_name(location), yaml_doc.line_of(location))
    try:
        resolved = scenario_models().resolved_group.model_validate(
            {
                **merged,
                **group_fields,
                "line": yaml_doc.lines.get(("groups", index)),
                "tpm_settings_at": settings_at,
            }
        )
    except ValidationError as exc:
        raise _error_from(exc, yaml_doc, ("groups", index)) from exc
    if resolved.tpm.tcti is not None:
        error = external_tpm_conflict(resolved, yaml_doc.source, f"the external TPM at {resolved.tpm.tcti}")
        if error is not None:
            raise error
    return resolved
