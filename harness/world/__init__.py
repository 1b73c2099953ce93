"""World conditions as registered parts: each fact of a device's world in one module.

A condition (a `WorldCondition` registered with `@world_condition`) declares its scenario
fields (`Setting`) and its `world:` step key (`StepChange`); the scenario models, the device
plan, the run's helper services (`@helper_service`) and the device's life are assembled from
the registry. See README.md, "Adding a world condition".
"""

import importlib

from ._helpers import (
    HELPERS,
    HelperContext,
    HelperService,
    helper_service,
    require_helper,
    start_helpers,
    wanted_helpers,
)
from ._life import DeviceLife, FactoryOrder, NetworkPath
from ._models import Strict
from ._plan import PlanDraft, TPMPlan
from ._registry import (
    REGISTRY,
    ConditionRegistry,
    Setting,
    StepChange,
    WorldCondition,
    WorldValues,
    world_condition,
)

__all__ = [
    "HELPERS",
    "REGISTRY",
    "ConditionRegistry",
    "DeviceLife",
    "FactoryOrder",
    "HelperContext",
    "HelperService",
    "NetworkPath",
    "PlanDraft",
    "Setting",
    "StepChange",
    "Strict",
    "TPMPlan",
    "WorldCondition",
    "WorldValues",
    "helper_service",
    "require_helper",
    "start_helpers",
    "wanted_helpers",
    "world_condition",
]

# The built-in conditions register themselves; imported last, as they use the names above.
importlib.import_module(f"{__name__}.conditions")
