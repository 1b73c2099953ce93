"""MDM enrollment: nonces, then the enrollment request the evaluator judges.

Who may change a record is decided in _auth; what the record says, from the verifier's
verdict (claims against evidence included) and the TPM it verified (_evidence).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ..protocol import (
    DEVICE_ID_PATTERN,
    MAX_ID,
    MAX_TEXT,
    PLAIN_TEXT_PATTERN,
    ContextItems,
    EnrollmentRequest,
    EnrollmentResponse,
    EnrollmentTrigger,
    NonceResponse,
    b64,
    canonical_device_id,
)
from ..verifier import (
    EvidenceFormatError,
    NonceState,
    Verdict,
    claimed_nonce,
    evaluate,
    evidence_from_request,
    load_certificate,
)
from . import _auth
from ._context import ServerContext, ServiceFailure, bad_request, too_many_requests
from ._deps import context, count_device_request, rate_limits
from ._evidence import tpm_columns
from ._openapi import DEVICE_SECURITY, ENROLLMENT_SECURITY, errors
from ._schema import iso, iso_precise
from ._store import UnboundLimitError, UnownedRoom

router = APIRouter(prefix="/enrollment", tags=["MDM enrollment"])
log = logging.getLogger(__name__)


@router.get(
    "/nonce",
    response_model=NonceResponse,
    response_model_by_alias=True,
    responses=errors(401, 429),
    openapi_extra=DEVICE_SECURITY,
)
def nonce(
    request: Request,
    emm_device_id: Annotated[
        str,
        Query(
            alias="emmDeviceId",
            min_length=1,
            max_length=MAX_ID,
            pattern=DEVICE_ID_PATTERN,
            description="The EmmDeviceId the nonce is bound to (case-insensitive, see EmmDeviceId).",
        ),
    ],
    device_name: Annotated[
        str,
        Query(
            alias="deviceName",
            min_length=1,
            max_length=MAX_TEXT,
            pattern=PLAIN_TEXT_PATTERN,
            description="Shown in the report until the device enrolls.",
        ),
    ],
    trigger: Annotated[
        EnrollmentTrigger | None,
        Query(
            description="Why the device starts this attempt (as EnrollmentTrigger). The server's own "
            "records win: 'attest-action' only if it handed this device an Attest command."
        ),
    ] = None,
    authorization: _auth.AuthorizationHeader = None,
    device_credential: _auth.CredentialHeader = None,
    ctx: ServerContext = Depends(context),
) -> NonceResponse:
    """A fresh nonce for TPM2_Certify, bound to the device; it shows as 'in process' until it enrolls.

    An enrolled device sends its device credential; a device not yet enrolled, a valid Entra token,
    whose identity then claims the id: until the device enrolls, only that identity may change it.
    """
    emm_device_id = canonical_device_id(emm_device_id)
    rate_limits(request).check(request)
    now = ctx.clock.now()
    caller = _auth.identify(
        ctx, emm_device_id, token=_auth.bearer(authorization), credential=device_credential, now=now
    )
    count_device_request(request, caller, emm_device_id)
    _auth.require_device(caller, emm_device_id)
    value = secrets.token_bytes(32)
    claim = caller.token_identity if caller.proof is _auth.Proof.FIRST_ENROLLMENT else ""
    ctx.store.issue_nonce(
        value, emm_device_id, device_name, now, ctx.config.nonce_lifetime, trigger or "", claim=claim
    )
    return NonceResponse(nonce=b64(value), expiresAt=iso(now + ctx.config.nonce_lifetime))


@router.post(
    "",
    response_model=EnrollmentResponse,
    response_model_by_alias=True,
    responses=errors(401, 409, 413, 429),
    openapi_extra=ENROLLMENT_SECURITY,
)
def enroll(
    body: EnrollmentRequest,
    request: Request,
    authorization: _auth.AuthorizationHeader = None,
    device_credential: _auth.CredentialHeader = None,
    ctx: ServerContext = Depends(context),
) -> EnrollmentResponse:
    """Judge the enrollment's evidence and record the result as the device's.

    An id already bound to a device changes only for a request carrying that device's
    credential or the Entra token of the device it is bound to (otherwise 401). A request
    whose nonce was used already is a replay (409). Neither records anything.
    """
    items = body.context_items
    rate_limits(request).check(request)
    now = ctx.clock.now()
    token = _auth.bearer(authorization)
    token_verdict = _auth.verify_token_once(ctx, token, now) if token else None
    caller = _auth.identify(
        ctx,
        items.emm_device_id,
        token=token,
        credential=device_credential,
        now=now,
        token_verdict=token_verdict,
    )
    count_device_request(request, caller, items.emm_device_id)
    if caller.bound:
        _auth.require_device(caller, items.emm_device_id)
    unowned = None
    if not caller.authenticated:
        # Judged, and recorded as nobody's: bounded per address and in all (docs/protocol.md).
        if not caller.known:
            rate_limits(request).new_unbound_row(request)
        unowned = UnownedRoom(ctx.config.max_unbound_devices, ctx.config.stale_unbound_after)
    try:
        evidence = evidence_from_request(body, token)
    except EvidenceFormatError as exc:
        raise bad_request(str(exc)) from exc
    claimed = claimed_nonce(evidence)
    if claimed is None:
        nonce_state = NonceState(value=b"", issued=False)
    else:
        found = ctx.store.consume_nonce(claimed, items.emm_device_id, now)
        if found.used:
            raise ServiceFailure(
                409, "replayed_request", _auth.E_ACCESSDENIED, "the nonce of this request was used already"
            )
        nonce_state = NonceState(value=claimed, issued=found.issued, expired=found.expired)
    registered: dict[str, bytes] = {}
    if caller.token_device:
        spki = ctx.store.entra_device_key(caller.token_device)
        if spki is not None:
            registered[caller.token_device] = spki
    try:
        verdict = evaluate(
            evidence,
            ctx.policy,
            now=now,
            nonce=nonce_state,
            registered_keys=registered,
            token_verdict=token_verdict,
        )
    except Exception as exc:  # the evaluator must never turn bad evidence into a 500
        log.exception("evaluation failed for %s", items.emm_device_id)
        raise bad_request(f"evidence could not be evaluated: {exc}", "unevaluable_evidence") from exc
    credential, digest = _auth.new_credential() if caller.may_bind else (None, None)
    try:
        _record(ctx, items, verdict, caller, digest, now, unowned)
    except UnboundLimitError as exc:
        raise too_many_requests("too_many_unbound_devices", str(exc), 60) from exc
    return EnrollmentResponse(
        deviceId=items.emm_device_id,
        enrolled=True,
        deviceCredential=credential,
        judgedAt=iso_precise(now),
    )


def _record(
    ctx: ServerContext,
    items: ContextItems,
    verdict: Verdict,
    caller: _auth.Caller,
    digest: bytes | None,
    now: dt.datetime,
    unowned: UnownedRoom | None,
) -> None:
    ctx.store.record_enrollment(
        emm_device_id=items.emm_device_id,
        inventory={
            "device_name": items.device_name,
            "entra_device_id": verdict.device_id or "",
            "upn": str(verdict.token_claims.get("upn", "")),
            "os_version": items.os_version,
            "ownership": items.ownership,
            "manufacturer": items.device_manufacturer,
            "model": items.device_model,
            "serial": items.hw_dev_id,
            **tpm_columns(verdict.tpm, items.tpm_version, items.tpm_manufacturer, items.tpm_firmware),
        },
        status=verdict.status,
        detail=verdict.detail,
        decision=verdict.decision,
        checks=[c._asdict() for c in verdict.checks],
        items=summarise_items(items),
        now=now,
        bind_to=caller.token_device if caller.proof is _auth.Proof.FIRST_ENROLLMENT else None,
        credential_sha256=digest,
        # Only an authenticated device's word on why it enrolls is kept (the server's records win).
        trigger=(items.enrollment_trigger or "") if caller.authenticated else "",
        unowned=unowned,
    )


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
