"""Device check-in: where an enrolled device learns of commands an admin queued for it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ..protocol import CheckinRequest, CheckinResponse, Command
from . import _auth
from ._context import ServerContext
from ._deps import context, count_device_request, rate_limits
from ._openapi import DEVICE_SECURITY, errors

router = APIRouter(prefix="/enrollment", tags=["MDM enrollment"])


@router.post(
    "/checkin",
    response_model=CheckinResponse,
    response_model_by_alias=True,
    responses=errors(400, 401, 413, 429),
    openapi_extra=DEVICE_SECURITY,
)
def checkin(
    body: CheckinRequest,
    request: Request,
    authorization: _auth.AuthorizationHeader = None,
    device_credential: _auth.CredentialHeader = None,
    ctx: ServerContext = Depends(context),
) -> CheckinResponse:
    """Each queued Attest command is handed over once; the device answers it by enrolling again.

    Only an enrolled device may check in: with its device credential, or the Entra token of
    the device its id is bound to. Anything else is 401 and records nothing.
    """
    rate_limits(request).check(request)
    now = ctx.clock.now()
    caller = _auth.identify(
        ctx, body.emm_device_id, token=_auth.bearer(authorization), credential=device_credential, now=now
    )
    if caller.proof not in (_auth.Proof.CREDENTIAL, _auth.Proof.TOKEN):
        rate_limits(request).unauthenticated(request)
    else:
        count_device_request(request, caller, body.emm_device_id)
    if caller.proof not in (_auth.Proof.CREDENTIAL, _auth.Proof.TOKEN):  # both only for a bound id
        raise _auth.refuse(f"check-in needs the {_auth.CREDENTIAL_HEADER} of an enrolled device")
    delivered = ctx.store.checkin(body.emm_device_id, now) or []
    return CheckinResponse(commands=[Command(actionId=action_id) for action_id in delivered])
