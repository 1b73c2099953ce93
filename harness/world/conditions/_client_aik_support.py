"""client.aik_support: an older client build that creates no AIK and sends no AIK items."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .. import PlanDraft, Setting, WorldCondition, world_condition

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

AIK_SUPPORT: Setting[bool] = Setting(
    "client", "aik_support", bool, True, "false: an older build that creates no AIK and sends no AIK items"
)


@world_condition
class AikSupport(WorldCondition):
    name = "client.aik_support"
    settings = (AIK_SUPPORT,)

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        draft.behaviour = replace(draft.behaviour, sends_aik_items=AIK_SUPPORT.of(group))
