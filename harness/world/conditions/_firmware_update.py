"""A `world:` step's `firmware_update`: the TPM vendor's firmware update.

A new endorsement seed, so a new EK, and its certificate re-issued by the vendor's CA with
the new firmware version (as vendors did after ROCA). The storage hierarchy (the Entra key,
the MDM key) is untouched.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from typing import Any

from pydantic import field_validator
from tpm2_pytss import ESYS_TR, TSS2_Exception

from ...catalog import firmware_version
from ...pki import EK_CERT_NV_INDEX_ECC, EK_CERT_NV_INDEX_RSA, TPMIdentity
from ...results import ClientStep
from ...tpm import TimedESAPI, manufacture
from .. import DeviceLife, StepChange, Strict, WorldCondition, world_condition


class FirmwareUpdate(Strict):
    """The TPM vendor's firmware update: a new version, and the EK certificate re-issued for it."""

    firmware: str

    @field_validator("firmware")
    @classmethod
    def _firmware(cls, value: str) -> str:
        firmware_version(value)
        return value


@world_condition
class FirmwareUpdateCondition(WorldCondition):
    name = "tpm.firmware_update"
    step = StepChange("firmware_update", FirmwareUpdate | None, order=30)

    def change(self, life: DeviceLife, value: Any) -> None:
        tpm = life.changeable_tpm()
        plan = replace(life.tpm_plan, firmware=firmware_version(value.firmware))
        issuer = life.vendor_ca(plan.issuer) if plan.issuer else None
        identity = TPMIdentity(plan.manufacturer_id, plan.model, plan.firmware)
        start = time.perf_counter()
        index = EK_CERT_NV_INDEX_RSA if plan.ek_algorithm == "rsa2048" else EK_CERT_NV_INDEX_ECC
        with TimedESAPI(tpm.tcti) as esapi:
            esapi.change_eps(ESYS_TR.PLATFORM)
            try:
                old = esapi.tr_from_tpmpublic(index)
            except TSS2_Exception:
                old = None  # the factory shipped no certificate
            if old is not None:
                esapi.nv_undefine_space(old, ESYS_TR.PLATFORM)
            manufacture(
                esapi,
                identity=identity,
                issuer=issuer,
                algorithm=plan.ek_algorithm,
                now=dt.datetime.now(dt.UTC),
                one_rdn=plan.one_rdn,
            )
            seconds = esapi.seconds
        who = issuer.name if issuer else "nobody"
        step = ClientStep(
            step="world.tpm.firmware_update",
            ok=True,
            detail=f"firmware {identity.version}; new EK, certificate re-issued by {who}",
            seconds=round(time.perf_counter() - start, 4),
        )
        life.set_tpm_plan(plan)
        life.note(step, seconds)
