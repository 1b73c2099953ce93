"""A `world:` step's `tpm`: a later change to the TPM (lockout, its reset, or Clear TPM)."""

from __future__ import annotations

import time
from typing import Any, Literal

from ...results import ClientStep
from ...tpm import TimedESAPI, lock_out, reset_lockout
from .. import DeviceLife, StepChange, WorldCondition, world_condition

TPMChange = Literal["reset-lockout", "lockout", "clear"]


@world_condition
class TPMChangeCondition(WorldCondition):
    name = "tpm.change"
    step = StepChange(
        "tpm",
        TPMChange | None,
        order=20,
        description="'clear': TPM2_Clear through the platform hierarchy, as the firmware's Clear TPM "
        "does (new owner, storage keys and the persisted MDM key gone; the EK and its certificate stay)",
    )

    def change(self, life: DeviceLife, value: Any) -> None:
        start = time.perf_counter()
        if value == "clear":
            life.clear_tpm()
            detail = "TPM2_Clear with platform authorization: new owner, storage keys and MDM key gone"
            step = ClientStep(
                step="world.tpm.clear", ok=True, detail=detail, seconds=round(time.perf_counter() - start, 4)
            )
            life.note(step, 0.0)
            return
        with TimedESAPI(life.changeable_tpm().tcti) as esapi:
            if value == "reset-lockout":
                reset_lockout(esapi)
                detail = "lockout cleared with the lockout authorization"
            else:
                attempts = lock_out(esapi)
                detail = f"dictionary-attack lockout after {attempts} wrong PINs"
            seconds = esapi.seconds
        step = ClientStep(
            step=f"world.tpm.{value}", ok=True, detail=detail, seconds=round(time.perf_counter() - start, 4)
        )
        life.note(step, seconds)
