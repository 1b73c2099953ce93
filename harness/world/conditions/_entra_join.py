"""entra.join: how the device joined Entra; and a `world:` step's `entra: {rejoin: tpm}`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from .. import DeviceLife, PlanDraft, Setting, StepChange, Strict, WorldCondition, world_condition

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

EntraJoin = Literal["tpm", "software", "offline-domain-join", "none"]
JOIN: Setting[EntraJoin] = Setting(
    "entra",
    "join",
    EntraJoin,
    "tpm",
    "device key in the TPM, in software, in software after an offline domain join, or not "
    "joined at all (the token is a user token)",
)


class EntraChange(Strict):
    """'rejoin: tpm': the device joins Entra again with its key in the TPM (an Autopilot
    offline domain join completing its hybrid join)."""

    rejoin: Literal["tpm"]


@world_condition
class EntraJoinCondition(WorldCondition):
    name = "entra.join"
    settings = (JOIN,)
    step = StepChange("entra", EntraChange | None, order=50)

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        join = JOIN.of(group)
        draft.behaviour = replace(
            draft.behaviour, entra_key_in_tpm=join == "tpm", entra_joined=join != "none"
        )

    def change(self, life: DeviceLife, value: Any) -> None:
        if life.client is not None:
            life.client.rejoin()
