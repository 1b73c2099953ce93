"""Scenario files: YAML fleets validated with line-accurate errors, and the value types of their
settings (which device plans reuse)."""

from ._assembly import ScenarioModels, scenario_models
from ._external import refuse_settings_for_backend
from ._loader import load_scenario, parse_scenario
from ._model import (
    ClientSettings,
    EntraSettings,
    Group,
    GroupSettings,
    Hardware,
    HistorySettings,
    NetworkSettings,
    ResolvedGroup,
    Scenario,
    ScenarioFile,
    TPMSettings,
)
from ._steps import (
    STEP_KINDS,
    ActionState,
    AttestAction,
    GroupExpectation,
    PrincipalSpec,
    Step,
    WorldChange,
)
from ._types import (
    VIRTUAL_PLATFORMS,
    Backend,
    EKKind,
    Expectation,
    Ownership,
    Platform,
    SanLayout,
    TPMFamilySetting,
)

__all__ = [
    "STEP_KINDS",
    "VIRTUAL_PLATFORMS",
    "ActionState",
    "AttestAction",
    "Backend",
    "ClientSettings",
    "EKKind",
    "EntraSettings",
    "Expectation",
    "Group",
    "GroupExpectation",
    "GroupSettings",
    "Hardware",
    "HistorySettings",
    "NetworkSettings",
    "Ownership",
    "Platform",
    "PrincipalSpec",
    "ResolvedGroup",
    "SanLayout",
    "Scenario",
    "ScenarioFile",
    "ScenarioModels",
    "Step",
    "TPMFamilySetting",
    "TPMSettings",
    "WorldChange",
    "load_scenario",
    "parse_scenario",
    "refuse_settings_for_backend",
    "scenario_models",
]
