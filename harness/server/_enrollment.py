"""MDM enrollment: nonces, then the enrollment request the evaluator judges."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import asdict
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Header, Query

from ..protocol import ContextItems, EnrollmentRequest, EnrollmentResponse, NonceResponse, b64
from ..tcg import TCG_VENDORS
from ..verifier import (
    DEVICE_ID_CLAIM,
    NonceState,
    Verdict,
    claimed_nonce,
    evaluate,
    evidence_from_request,
    load_certificate,
)
from ._context import ServerContext, bad_request
from ._deps import context
from ._store import iso

router = APIRouter(prefix="/enrollment", tags=["MDM enrollment"])
log = logging.getLogger(__name__)


@router.get("/nonce", response_model=NonceResponse, response_model_by_alias=True)
def nonce(
    emm_device_id: Annotated[str, Query(alias="emmDeviceId", min_length=1, max_length=128)],
    device_name: Annotated[str, Query(alias="deviceName", min_length=1, max_length=128)],
    ctx: ServerContext = Depends(context),
) -> NonceResponse:
    """A fresh nonce for TPM2_Certify; the device shows as 'in process' until it enrolls."""
    now = ctx.clock.now()
    value = secrets.token_bytes(32)
    ctx.store.issue_nonce(value, emm_device_id, device_name, now, ctx.config.nonce_lifetime)
    return NonceResponse(nonce=b64(value), expiresAt=iso(now + ctx.config.nonce_lifetime))


@router.post("", response_model=EnrollmentResponse, response_model_by_alias=True)
def enroll(
    request: EnrollmentRequest,
    authorization: Annotated[str | None, Header(max_length=8192)] = None,
    ctx: ServerContext = Depends(context),
) -> EnrollmentResponse:
    now = ctx.clock.now()
    items = request.context_items
    token = _bearer(authorization)
    evidence = evidence_from_request(request, token)
    claimed = claimed_nonce(evidence)
    if claimed is None:
        nonce_state = NonceState(value=b"", issued=False)
    else:
        issued, expired, used = ctx.store.consume_nonce(claimed, now)
        nonce_state = NonceState(value=claimed, issued=issued, expired=expired, used=used)
    device_id = _unverified_device_id(token)
    registered: dict[str, bytes] = {}
    if device_id:
        spki = ctx.store.entra_device_key(device_id)
        if spki is not None:
            registered[device_id] = spki
    try:
        verdict = evaluate(evidence, ctx.policy, now=now, nonce=nonce_state, registered_keys=registered)
    except Exception as exc:  # the evaluator must never turn bad evidence into a 500
        log.exception("evaluation failed for %s", items.emm_device_id)
        raise bad_request(f"evidence could not be evaluated: {exc}", "unevaluable_evidence") from exc

    ctx.store.record_enrollment(
        emm_device_id=items.emm_device_id,
        inventory=_inventory(items, verdict),
        status=verdict.status,
        detail=verdict.detail,
        decision=verdict.decision,
        checks=[asdict(c) for c in verdict.checks],
        items=summarise_items(items),
        now=now,
    )
    return EnrollmentResponse(deviceId=items.emm_device_id, enrolled=True)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise bad_request("Authorization must be 'Bearer <token>'")
    return value.strip()


def _unverified_device_id(token: str | None) -> str | None:
    # Only to find which registered key to hand the evaluator; the evaluator verifies the token.
    if not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    value = claims.get(DEVICE_ID_CLAIM)
    return str(value) if value else None


def _inventory(items: ContextItems, verdict: Verdict) -> dict[str, str]:
    tpm_manufacturer = items.tpm_manufacturer
    vendor = TCG_VENDORS.get(tpm_manufacturer.removeprefix("id:").upper())
    if vendor:
        tpm_manufacturer = f"{vendor} ({tpm_manufacturer})"
    return {
        "device_name": items.device_name,
        "entra_device_id": verdict.device_id or "",
        "upn": str(verdict.token_claims.get("upn", "")),
        "os_version": items.os_version,
        "ownership": items.ownership,
        "manufacturer": items.device_manufacturer,
        "model": items.device_model,
        "serial": items.hw_dev_id,
        "tpm_version": items.tpm_version,
        "tpm_manufacturer": tpm_manufacturer,
    }


def summarise_items(items: ContextItems) -> dict[str, str]:
    """What the client sent, readable in a report: sizes and digests of binary items."""
    summary: dict[str, str] = {}
    for field_name, info in ContextItems.model_fields.items():
        value = getattr(items, field_name)
        name = info.alias or field_name
        if value is None:
            continue
        if isinstance(value, bytes):
            text = f"{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}"
            if name == "AIKCert":
                text += _certificate_label(value)
            summary[name] = text
        else:
            summary[name] = str(value)
    return summary


def _certificate_label(der: bytes) -> str:
    try:
        certificate = load_certificate(der)
    except ValueError:
        return ", not a certificate"
    return f", issuer '{certificate.issuer.rfc4514_string()}'"
