"""history.enrolled_before_attestation: the device enrolled before enrollment attestation was on."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .. import PlanDraft, Setting, WorldCondition, world_condition

if TYPE_CHECKING:
    from ...client import ClientBehaviour
    from ...scenario import ResolvedGroup

ENROLLED_BEFORE_ATTESTATION: Setting[bool] = Setting(
    "history",
    "enrolled_before_attestation",
    bool,
    False,
    "the device enrolled before enrollment attestation was on, with an older enrollment protocol "
    "that sends no attestation items, and has been updated since; it attests at its next "
    "enrollment (the Attest device action)",
)


@world_condition
class EnrolledBeforeAttestation(WorldCondition):
    name = "history.enrolled_before_attestation"
    settings = (ENROLLED_BEFORE_ATTESTATION,)

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        # MS-MDE2 enrollment before 5.0 carries no attestation items.
        version = "4.0" if ENROLLED_BEFORE_ATTESTATION.of(group) else ""
        draft.behaviour = replace(draft.behaviour, first_enrollment_version=version)

    def reinstalled(self, behaviour: ClientBehaviour) -> ClientBehaviour:
        return replace(behaviour, first_enrollment_version="")  # a new install enrolls with today's protocol
