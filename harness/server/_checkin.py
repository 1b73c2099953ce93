"""Device check-in: where an enrolled device learns of commands an admin queued for it."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..hresult import HResult
from ._context import ServerContext, ServiceFailure
from ._deps import context

router = APIRouter(prefix="/enrollment", tags=["MDM enrollment"])


class CheckinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emm_device_id: str = Field(alias="emmDeviceId", min_length=1, max_length=128)


class Command(BaseModel):
    type: Literal["Attest"] = "Attest"
    action_id: int = Field(alias="actionId")


class CheckinResponse(BaseModel):
    commands: list[Command]


@router.post("/checkin", response_model=CheckinResponse, response_model_by_alias=True)
def checkin(request: CheckinRequest, ctx: ServerContext = Depends(context)) -> CheckinResponse:
    """Each queued Attest command is handed over once; the device answers it by enrolling again."""
    delivered = ctx.store.checkin(request.emm_device_id, ctx.clock.now())
    if delivered is None:
        raise ServiceFailure(
            404, "unknown_device", HResult.E_FAIL, f"device {request.emm_device_id} is not enrolled"
        )
    return CheckinResponse(commands=[Command(actionId=action_id) for action_id in delivered])
