"""client.diagnostic_log_kib: a client build that attaches a diagnostic log to its request."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from .. import PlanDraft, Setting, WorldCondition, world_condition

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

DIAGNOSTIC_LOG_KIB: Setting[int] = Setting(
    "client",
    "diagnostic_log_kib",
    Annotated[int, Field(ge=0, le=4096, strict=True)],
    0,
    "a client build that attaches a diagnostic log of this size to the request",
)


@world_condition
class DiagnosticLog(WorldCondition):
    name = "client.diagnostic_log_kib"
    settings = (DIAGNOSTIC_LOG_KIB,)

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        draft.behaviour = replace(draft.behaviour, diagnostic_log_bytes=DIAGNOSTIC_LOG_KIB.of(group) * 1024)
