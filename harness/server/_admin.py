"""The admin side: the device attestation status report and the device detail view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query

from ..hresult import HResult
from ..status import RETRY_RECOMMENDED, AttestationStatus, StatusDetail
from ._config import Principal
from ._context import ServerContext, ServiceFailure
from ._deps import context
from ._store import REPORT_COLUMNS

router = APIRouter(prefix="/admin", tags=["Admin"])


def principal(
    authorization: Annotated[str | None, Header(max_length=4096)] = None,
    ctx: ServerContext = Depends(context),
) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    found = ctx.config.principals.get(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise ServiceFailure(401, "unauthenticated", HResult.E_FAIL, "a known admin bearer token is required")
    return found


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


@router.get("/reports/device-attestation")
def device_attestation_report(
    status: Annotated[AttestationStatus | None, Query()] = None,
    ownership: Annotated[str | None, Query(pattern="^(Corporate|Personal)$")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    _: Principal = Depends(principal),
    ctx: ServerContext = Depends(context),
) -> dict[str, Any]:
    total, devices = ctx.store.report(
        status=status.value if status else None, ownership=ownership, offset=offset, limit=limit
    )
    return {
        "columns": list(REPORT_COLUMNS),
        "total": total,
        "offset": offset,
        "limit": limit,
        "rows": [report_row(d) for d in devices],
    }


@router.get("/devices/{device_id}")
def device_detail(
    device_id: str, _: Principal = Depends(principal), ctx: ServerContext = Depends(context)
) -> dict[str, Any]:
    device = ctx.store.device(device_id)
    if device is None:
        raise ServiceFailure(404, "unknown_device", HResult.E_FAIL, f"no device {device_id}")
    return {
        **report_row(device),
        "entraDeviceId": device["entra_device_id"],
        "manufacturer": device["manufacturer"],
        "serial": device["serial"],
        "decision": device["decision"],
        "attempts": device["attempts"],
    }
