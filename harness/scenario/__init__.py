"""Scenario files: YAML fleets validated with line-accurate errors."""

from ._loader import load_scenario, parse_scenario
from ._model import (
    VIRTUAL_PLATFORMS,
    ClientSettings,
    EntraSettings,
    Expectation,
    Group,
    GroupSettings,
    Hardware,
    NetworkSettings,
    Platform,
    ResolvedGroup,
    Scenario,
    ScenarioFile,
    TPMSettings,
)

__all__ = [
    "VIRTUAL_PLATFORMS",
    "ClientSettings",
    "EntraSettings",
    "Expectation",
    "Group",
    "GroupSettings",
    "Hardware",
    "NetworkSettings",
    "Platform",
    "ResolvedGroup",
    "Scenario",
    "ScenarioFile",
    "TPMSettings",
    "load_scenario",
    "parse_scenario",
]
