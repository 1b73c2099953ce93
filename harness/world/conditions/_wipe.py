"""A `world:` step's `wipe`: reset and re-enrolment.

A new Windows install on a cleared TPM, a new Entra join and a new MDM enrollment (a new
device record). What of the old install's world the new one keeps, each condition says
(WorldCondition.reinstalled).
"""

from __future__ import annotations

from typing import Any

from .. import DeviceLife, StepChange, WorldCondition, world_condition


@world_condition
class Wipe(WorldCondition):
    name = "wipe"
    step = StepChange(
        "wipe",
        bool,
        order=60,
        default=False,
        description="reset and re-enrolment: a new Windows install on a cleared TPM, a new Entra "
        "join and a new MDM enrollment (a new device record)",
        new_enrollment=True,
    )

    def change(self, life: DeviceLife, value: Any) -> None:
        if value:
            life.reinstall()
