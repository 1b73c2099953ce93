"""client.power_off_after: the device loses power once during enrollment."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from .. import PlanDraft, Setting, WorldCondition, world_condition

if TYPE_CHECKING:
    from ...client import ClientBehaviour
    from ...scenario import ResolvedGroup

POWER_OFF_AFTER: Setting[Literal["nonce"] | None] = Setting(
    "client",
    "power_off_after",
    Literal["nonce"] | None,
    None,
    "'nonce': the device powers off after fetching the enrollment nonce",
)


@world_condition
class PowerOff(WorldCondition):
    name = "client.power_off_after"
    settings = (POWER_OFF_AFTER,)

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        draft.behaviour = replace(
            draft.behaviour, powers_off_after_nonce=POWER_OFF_AFTER.of(group) == "nonce"
        )

    def reinstalled(self, behaviour: ClientBehaviour) -> ClientBehaviour:
        return replace(behaviour, powers_off_after_nonce=False)  # the power cut was one event
