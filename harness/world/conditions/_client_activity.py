"""client.activity: a device in use handles a push within a minute or two; an idle one, in
connected standby, at its next maintenance wake (3 to 5 minutes)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from .. import PlanDraft, Setting, WorldCondition, world_condition

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

Activity = Literal["active", "idle"]
ACTIVITY: Setting[Activity] = Setting(
    "client",
    "activity",
    Activity,
    "active",
    "'idle': in connected standby; a push is handled at its next maintenance wake (3 to 5 "
    "minutes), not within a minute or two",
)


@world_condition
class ClientActivity(WorldCondition):
    name = "client.activity"
    settings = (ACTIVITY,)

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        draft.behaviour = replace(draft.behaviour, idle=ACTIVITY.of(group) == "idle")
