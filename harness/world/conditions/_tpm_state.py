"""tpm.state: what happened to the TPM after the device joined Entra.

Each state is made with the real mechanism: wrong PINs until the dictionary-attack
lockout, an owner authorization changed by another operating system, a hierarchy
disabled by platform firmware, or a platform reset without TPM2_Startup.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from ...results import ClientStep
from ...tpm import TimedESAPI, change_owner_auth, disable_hierarchy, leave_unstarted, lock_out
from .. import DeviceLife, Setting, WorldCondition, world_condition
from ._tpm2 import needs_tpm2

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

TPMState = Literal[
    "ready",
    "lockout",
    "owner-auth-unknown",
    "endorsement-disabled",
    "storage-disabled",
    "not-started",
]
STATE: Setting[TPMState] = Setting(
    "tpm",
    "state",
    TPMState,
    "ready",
    "what happened to the TPM after the device joined Entra: a dictionary-attack lockout from "
    "failed PIN attempts, owner authorization changed by someone else, a hierarchy disabled by "
    "the platform, or a reset after which firmware never sent TPM2_Startup",
)
_FOREIGN_OWNER_AUTH = b"set by another operating system"


@world_condition
class TPMStateCondition(WorldCondition):
    name = "tpm.state"
    settings = (STATE,)

    def check_group(self, group: ResolvedGroup) -> str | None:
        return needs_tpm2(group, STATE)

    def after_join(self, life: DeviceLife) -> None:
        state = STATE.planned(life.world)
        tpm = life.harness_tpm()
        if state == "ready" or tpm is None:
            return
        start = time.perf_counter()
        seconds = 0.0
        if state == "not-started":
            leave_unstarted(tpm)
            detail = "platform reset through the TPM's control channel; firmware sent no TPM2_Startup"
        else:
            with TimedESAPI(tpm.tcti) as esapi:
                if state == "lockout":
                    attempts = lock_out(esapi)
                    detail = f"dictionary-attack lockout after {attempts} wrong PINs (maxTries 3)"
                elif state == "owner-auth-unknown":
                    change_owner_auth(esapi, _FOREIGN_OWNER_AUTH)
                    detail = "owner authorization changed by another operating system"
                elif state == "endorsement-disabled":
                    disable_hierarchy(esapi, "endorsement")
                    detail = "endorsement hierarchy disabled by platform firmware"
                else:
                    disable_hierarchy(esapi, "storage")
                    detail = "storage hierarchy disabled by platform firmware"
                seconds = esapi.seconds
        step = ClientStep(
            step=f"world.tpm.{state}", ok=True, detail=detail, seconds=round(time.perf_counter() - start, 4)
        )
        life.note(step, seconds)
