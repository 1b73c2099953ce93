"""enrollment.path: user-driven, or an Autopilot path that attests the TPM with the AIK service
before the device is provisioned (pre-provisioning's technician flow; self-deploying for a
shared device, which has no user)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from .. import PlanDraft, Setting, WorldCondition, world_condition
from ._entra_join import JOIN

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

ProvisioningPath = Literal["user-driven", "autopilot-preprovisioning", "shared-device"]
PATH: Setting[ProvisioningPath] = Setting(
    "enrollment",
    "path",
    ProvisioningPath,
    "user-driven",
    "user-driven; autopilot-preprovisioning (the technician flow: TPM attestation with the AIK "
    "service before the device is provisioned); shared-device (Autopilot self-deploying: the same "
    "TPM attestation, and no user: the device enrolls without a UPN)",
)


@world_condition
class EnrollmentPathCondition(WorldCondition):
    name = "enrollment.path"
    settings = (PATH,)

    def check_group(self, group: ResolvedGroup) -> str | None:
        path, join = PATH.of(group), JOIN.of(group)
        if path == "shared-device" and join != "tpm":
            return (
                "enrollment.path 'shared-device' self-deploys: it joins Entra with a TPM key "
                "(entra.join: tpm)"
            )
        if path == "autopilot-preprovisioning" and join not in ("tpm", "offline-domain-join"):
            return (
                "enrollment.path 'autopilot-preprovisioning' joins Entra (entra.join: tpm) or a "
                "domain (offline-domain-join)"
            )
        return None

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        draft.behaviour = replace(draft.behaviour, provisioning=PATH.of(group))
