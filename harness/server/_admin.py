"""The admin side: the device attestation status report, the device detail view, the Attest
device action, and (on a manual clock only) moving the server's time."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ..protocol import REPORT_COLUMNS, DeviceIdText, canonical_device_id
from ..status import RETRY_RECOMMENDED, AttestationStatus, HResult, StatusDetail
from ._auth import E_ACCESSDENIED
from ._clock import ClockLimitError, ManualClock
from ._config import Principal
from ._context import ServerContext, ServiceFailure, bad_request, too_many_requests, unauthenticated
from ._deps import context
from ._openapi import ADMIN_SECURITY, errors
from ._push import PushHub, hub, pushed

router = APIRouter(prefix="/admin", tags=["Admin"])

# The product's limits for the Attest device action.
MAX_DEVICES_PER_ACTION = 100
ACTION_INTERVAL = dt.timedelta(minutes=1)
# Far enough for any scenario, near enough that a datetime cannot overflow.
MAX_ADVANCE_SECONDS = 10 * 366 * 24 * 3600
# Deeper than any report is long, small enough for SQLite's 64-bit OFFSET.
MAX_OFFSET = 1_000_000_000


async def principal(
    authorization: Annotated[str | None, Header(max_length=4096, include_in_schema=False)] = None,
    ctx: ServerContext = Depends(context),
) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    found = ctx.principals.get(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise unauthenticated("a known admin bearer token is required", realm="admin")
    return found


async def remote_tasks(who: Principal = Depends(principal)) -> Principal:
    if not who.remote_tasks:
        raise ServiceFailure(
            403,
            "forbidden",
            E_ACCESSDENIED,
            f"principal '{who.name}' lacks the Remote tasks permission the Attest device action needs",
        )
    return who


def report_row(device: dict[str, Any]) -> dict[str, Any]:
    detail = device["detail"]
    return {
        "Device name": device["device_name"],
        "Device ID": device["emm_device_id"],
        "UPN": device["upn"],
        "Device attestation status": device["status"],
        "Status detail": detail,
        "OS": device["os"],
        "OS version": device["os_version"],
        "Ownership": device["ownership"],
        "Last check-in": device["last_checkin"],
        "Enrollment date": device["enrolled_at"],
        "TPM version": device["tpm_version"],
        "TPM manufacturer": device["tpm_manufacturer"],
        "Model": device["model"],
        "retryRecommended": bool(detail) and StatusDetail(detail) in RETRY_RECOMMENDED,
    }


@router.get(
    "/reports/device-attestation",
    responses=errors(401, 429) | {200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    response_class=Response,
    openapi_extra=ADMIN_SECURITY,
)
async def device_attestation_report(
    status: Annotated[AttestationStatus | None, Query(description="Only devices with this status.")] = None,
    ownership: Annotated[
        str | None, Query(pattern="^(Corporate|Personal)$", description="Only this ownership.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows to return.")] = 100,
    _: Principal = Depends(principal),
    ctx: ServerContext = Depends(context),
) -> Response:
    """A page of the report, rendered once per change of the data and shared by all readers."""
    wanted = status.value if status else None

    def render() -> bytes:
        total, devices = ctx.store.report(status=wanted, ownership=ownership, offset=offset, limit=limit)
        page = {
            "columns": list(REPORT_COLUMNS),
            "total": total,
            "offset": offset,
            "limit": limit,
            "rows": [report_row(d) for d in devices],
        }
        return json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    body = await ctx.report_cache.page((wanted, ownership, offset, limit), render)
    return Response(body, media_type="application/json")


@router.get("/devices/{device_id:path}", responses=errors(401, 404), openapi_extra=ADMIN_SECURITY)
def device_detail(
    device_id: str, _: Principal = Depends(principal), ctx: ServerContext = Depends(context)
) -> dict[str, Any]:
    """One device, its attempts and its latest Attest action. The id is percent-encoded in the
    path, '/' included (as %2F or as is), and compared in lower case as every device id is.
    `attest` is the Attest device action (POST only), never a device id here."""
    if device_id == "attest":
        raise ServiceFailure(
            405,
            "method_not_allowed",
            HResult.E_FAIL,
            "the Attest device action takes POST /admin/devices/attest",
            headers={"Allow": "POST"},
        )
    device_id = canonical_device_id(device_id)
    device = ctx.store.device(device_id, ctx.clock.now())
    if device is None:
        raise ServiceFailure(404, "unknown_device", HResult.E_FAIL, f"no device {device_id}")
    return {
        **report_row(device),
        "entraDeviceId": device["entra_device_id"],
        "manufacturer": device["manufacturer"],
        "serial": device["serial"],
        "decision": device["decision"],
        "tpmModel": device["tpm_model"],
        "tpmFirmware": device["tpm_firmware"],
        "tpmEvidence": device["tpm_evidence"],
        "bound": bool(device["bound"]),
        "attempts": device["attempts"],
        "action": device["action"],
    }


class AttestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    device_ids: list[DeviceIdText] = Field(
        alias="deviceIds",
        min_length=1,
        max_length=MAX_DEVICES_PER_ACTION,
        description="Device ids to attest, at most 100.",
    )


@router.post(
    "/devices/attest",
    status_code=202,
    responses=errors(401, 403, 404, 413, 429),
    openapi_extra=ADMIN_SECURITY,
)
def attest_devices(
    request: AttestRequest,
    who: Principal = Depends(remote_tasks),
    ctx: ServerContext = Depends(context),
    channels: PushHub = Depends(hub),
) -> dict[str, Any]:
    """Queue the Attest command for each known device and push it to them (in batches); a device
    with an open push channel checks in at once, any other at its next scheduled check-in.
    Unknown ids are answered per id; if no id is known nothing is queued (404) and the
    one-minute interval does not start."""
    device_ids = list(dict.fromkeys(request.device_ids))  # a device selected twice is asked once
    outcome = ctx.store.request_action(
        principal=who.name, device_ids=device_ids, now=ctx.clock.now(), min_interval=ACTION_INTERVAL
    )
    if outcome.retry_after is not None:
        raise too_many_requests(
            "too_many_actions",
            "wait at least 1 minute between Attest device actions",
            outcome.retry_after.total_seconds(),
        )
    if outcome.action_id is None:
        shown = ", ".join(outcome.unknown[:5]) + (", ..." if len(outcome.unknown) > 5 else "")
        raise ServiceFailure(404, "unknown_devices", HResult.E_FAIL, f"no known device among: {shown}")
    assert outcome.requested_at is not None
    queued = set(outcome.queued)
    channels.schedule(outcome.action_id, outcome.queued, outcome.requested_at)
    return {
        **pushed(channels.release(outcome.requested_at), channels),
        "actionId": outcome.action_id,
        "requestedAt": outcome.requested_at.isoformat(),
        "requestedBy": who.name,
        "queued": len(outcome.queued),
        "unknown": len(outcome.unknown),
        "devices": [
            {"deviceId": device_id, "result": "queued" if device_id in queued else "unknown"}
            for device_id in device_ids
        ],
    }


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    seconds: float = Field(
        ge=0, le=MAX_ADVANCE_SECONDS, allow_inf_nan=False, description="How far to move the clock."
    )


@router.post("/clock/advance", responses=errors(401, 403, 404, 413), openapi_extra=ADMIN_SECURITY)
def advance_clock(
    request: AdvanceRequest,
    _: Principal = Depends(remote_tasks),
    ctx: ServerContext = Depends(context),
    channels: PushHub = Depends(hub),
) -> dict[str, Any]:
    """Move a manual clock forward, so scenarios against an external server can test time rules.

    Moving time expires nonces, tokens and actions for everyone: it needs Remote tasks."""
    if not isinstance(ctx.clock, ManualClock):
        raise ServiceFailure(
            404,
            "not_found",
            HResult.E_FAIL,
            "this server runs on the real clock; start it with --manual-clock to move time",
        )
    try:
        now = ctx.clock.advance(request.seconds)
    except ClockLimitError as exc:
        raise bad_request(str(exc)) from exc
    # Push batches due by the new time go out now.
    return {"now": now.isoformat(), **pushed(channels.release(now), channels)}
