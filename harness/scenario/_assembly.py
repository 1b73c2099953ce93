"""The scenario models as the registered world conditions make them.

The static models (_model, _steps) hold what every scenario has; each registered setting
becomes a field of its section (or of the group), each registered step key a field of a
`world:` step. The models are rebuilt when the registry changes, so a condition registered
later (a plug-in, a test) is a field of the next scenario read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import Field, create_model

from ..world import REGISTRY, Strict
from ._model import (
    ClientSettings,
    EntraSettings,
    Group,
    GroupSettings,
    HistorySettings,
    NetworkSettings,
    ResolvedGroup,
    ScenarioFile,
    SectionChecks,
    TPMSettings,
)
from ._steps import Step, WorldChange

_STATIC_SECTIONS: dict[str, type[SectionChecks]] = {
    "tpm": TPMSettings,
    "client": ClientSettings,
    "entra": EntraSettings,
    "network": NetworkSettings,
    "history": HistorySettings,
}


@dataclass(frozen=True)
class ScenarioModels:
    sections: dict[str, type[Strict]]
    group_settings: type[GroupSettings]
    group: type[Group]
    resolved_group: type[ResolvedGroup]
    world_change: type[WorldChange]
    step: type[Step]
    scenario_file: type[ScenarioFile]


_built: tuple[int, ScenarioModels] | None = None


def scenario_models() -> ScenarioModels:
    """The models for the conditions registered now."""
    global _built
    if _built is None or _built[0] != REGISTRY.generation:
        _built = (REGISTRY.generation, _assemble())
    return _built[1]


def _field(annotation: Any, default: object, description: str) -> tuple[Any, Any]:
    return (annotation, Field(default=default, description=description or None))


def _model(base: type[Strict], fields: dict[str, Any], name: str = "") -> Any:
    """A subclass of `base` (its name, module and docstring) with `fields` added or replaced."""
    return create_model(
        name or base.__name__, __base__=base, __module__=base.__module__, __doc__=base.__doc__, **fields
    )


def _section(name: str) -> type[Strict]:
    base = _STATIC_SECTIONS.get(name)
    if base is None:  # a section only registered conditions use
        namespace = {
            "__doc__": f"The world's {name} settings.",
            "__annotations__": {"section": ClassVar[str]},
            "section": name,
            "__module__": __name__,
        }
        base = type(f"{name.title()}Settings", (SectionChecks,), namespace)
    settings = [s for s in REGISTRY.settings() if s.section == name]
    section: type[Strict] = _model(
        base, {s.name: _field(s.annotation, s.default, s.description) for s in settings}
    )
    return section


def _assemble() -> ScenarioModels:
    sections = {name: _section(name) for name in dict.fromkeys([*_STATIC_SECTIONS, *REGISTRY.sections()])}
    top = [s for s in REGISTRY.settings() if not s.section]
    group_settings: type[GroupSettings] = _model(
        GroupSettings,
        {
            **{name: (model | None, None) for name, model in sections.items()},
            **{s.name: _field(s.annotation | None, None, s.description) for s in top},
        },
    )
    # A group is its settings and what only a group has (name, count, expect); its settings
    # come from the assembled model, so the static Group's own fields are copied onto it.
    own = {n: (f.annotation, f) for n, f in Group.model_fields.items() if n not in GroupSettings.model_fields}
    group: type[Group] = _model(group_settings, own, "Group")
    resolved: type[ResolvedGroup] = _model(
        ResolvedGroup,
        {
            "tpm": (sections["tpm"], ...),
            **{name: (model, model()) for name, model in sections.items() if name != "tpm"},
            **{s.name: _field(s.annotation, s.default, s.description) for s in top},
        },
    )
    world_change: type[WorldChange] = _model(
        WorldChange, {c.name: _field(c.annotation, c.default, c.description) for c in REGISTRY.step_changes()}
    )
    step: type[Step] = _model(Step, {"world": (world_change | None, None)})
    steps_field: Any = Field(default_factory=list, description="what happens after the first enrollment")
    scenario_file: type[ScenarioFile] = _model(
        ScenarioFile,
        {
            "defaults": (group_settings, group_settings()),
            "groups": (Annotated[list[group], Field(min_length=1)], ...),  # type: ignore[valid-type]
            "steps": (list[step], steps_field),  # type: ignore[valid-type]
        },
    )
    return ScenarioModels(sections, group_settings, group, resolved, world_change, step, scenario_file)
