"""A `world:` step's `token_source: repaired`: the identity provider the device reaches is the
tenant's own, in time, again (the lagging replica caught up). The device's next check-in is
refused (it holds no device credential), so it renews its token and enrolls again."""

from __future__ import annotations

from typing import Any, Literal

from .. import DeviceLife, StepChange, WorldCondition, world_condition
from ._entra_token import TOKEN


@world_condition
class TokenSourceRepair(WorldCondition):
    name = "entra.token_source"
    step = StepChange("token_source", Literal["repaired"] | None, order=48)

    def change(self, life: DeviceLife, value: Any) -> None:
        life.change_world({TOKEN.path: "own-device"})
