"""tpm.mdm_key: an earlier enrollment left the MDM key persisted in the TPM."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from tpm2_pytss import ESYS_TR, TPM2B_SENSITIVE_CREATE

from ...results import ClientStep
from ...tpm import RunningTPM, TimedESAPI
from ...windows import MDM_KEY_HANDLE
from .. import DeviceLife, Setting, WorldCondition, world_condition
from ._tpm2 import needs_tpm2

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

MDMKeySetting = Literal["absent", "present"]
MDM_KEY: Setting[MDMKeySetting] = Setting(
    "tpm",
    "mdm_key",
    MDMKeySetting,
    "absent",
    "'present': an earlier enrollment left the MDM key persisted in the TPM",
)


def leave_mdm_key(tpm: RunningTPM) -> float:
    """An earlier enrollment's MDM key, persisted where the client keeps it; returns TPM seconds."""
    from ...client import key_templates  # the client's own templates; imported when a device runs

    with TimedESAPI(tpm.tcti) as esapi:
        srk, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), key_templates.srk(), ESYS_TR.OWNER)
        private, public, *_ = esapi.create(srk, TPM2B_SENSITIVE_CREATE(), key_templates.bound_signing_key())
        key = esapi.load(srk, private, public)
        esapi.evict_control(ESYS_TR.OWNER, key, MDM_KEY_HANDLE)
        esapi.flush_context(key)
        esapi.flush_context(srk)
        return esapi.seconds


@world_condition
class MDMKey(WorldCondition):
    name = "tpm.mdm_key"
    settings = (MDM_KEY,)

    def check_group(self, group: ResolvedGroup) -> str | None:
        return needs_tpm2(group, MDM_KEY)

    def after_manufacture(self, life: DeviceLife) -> None:
        tpm = life.harness_tpm()
        if MDM_KEY.planned(life.world) == "present" and tpm is not None:
            seconds = leave_mdm_key(tpm)
            life.note_world(
                ClientStep(step="world.tpm.mdm_key", ok=True, detail="an earlier enrollment's MDM key"),
                seconds,
            )
