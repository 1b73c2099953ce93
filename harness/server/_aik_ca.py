"""The AIK certificate authority: EK-based credential activation, then an AIK certificate."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from fastapi import APIRouter, Depends
from tpm2_pytss import TPM2B_NAME
from tpm2_pytss.utils import make_credential

from ..pki import TPMIdentity, certificate_der, vendor_hex
from ..protocol import (
    AikActivateRequest,
    AikActivateResponse,
    AikChallengeRequest,
    AikChallengeResponse,
    b64,
)
from ..status import HResult
from ..verifier import (
    EvidenceFormatError,
    check_aik_attributes,
    check_ek_certificate,
    check_ek_structure,
    check_signing_key_structure,
    load_certificate,
    parse_public,
    same_public_key,
    verify_chain,
)
from ._context import ServerContext, ServiceFailure
from ._deps import context, rate_limited
from ._openapi import errors
from ._schema import parse_iso

router = APIRouter(prefix="/aik", tags=["AIK CA"], dependencies=[Depends(rate_limited)])


def _refuse_ek(reason: str) -> ServiceFailure:
    return ServiceFailure(403, "untrusted_ek", HResult.CERTSRV_E_INVALID_EK, reason)


def _malformed_key(reason: str) -> ServiceFailure:
    return ServiceFailure(400, "malformed_key", HResult.CERTSRV_E_INVALID_ATTESTATION, reason)


@router.post(
    "/challenge",
    response_model=AikChallengeResponse,
    response_model_by_alias=True,
    responses=errors(403, 413, 429),
)
def challenge(request: AikChallengeRequest, ctx: ServerContext = Depends(context)) -> AikChallengeResponse:
    """Check the EK and the AIK, then encrypt a secret to the EK bound to the AIK's name."""
    now = ctx.clock.now()
    if request.ek_cert is None:
        raise _refuse_ek("no EK certificate: the TPM cannot be traced to a manufacturer")
    try:
        ek_certificate = load_certificate(request.ek_cert)
    except ValueError as exc:
        raise ServiceFailure(400, "malformed_ek_certificate", HResult.CERTSRV_E_INVALID_EK, str(exc)) from exc
    sent_chain = []
    for position, der in enumerate(request.ek_chain):
        try:
            sent_chain.append(load_certificate(der))
        except ValueError as exc:
            raise ServiceFailure(
                400, "malformed_ek_certificate", HResult.CERTSRV_E_INVALID_EK, f"ekChain[{position}]: {exc}"
            ) from exc
    profile, identity = check_ek_certificate(ek_certificate)
    failed = next((c for c in profile if not c.passed), None)
    if failed is not None:
        raise _refuse_ek(f"{failed.name}: {failed.detail}")
    assert identity is not None
    try:
        vendor = vendor_hex(identity.manufacturer)
    except ValueError as exc:
        raise _refuse_ek(str(exc)) from exc
    if vendor not in ctx.config.trust.vendors:
        raise _refuse_ek(f"manufacturer {identity.manufacturer} is not in the TCG vendor registry")
    chain = verify_chain(
        "ek_cert.chain",
        ek_certificate,
        roots=[*ctx.config.manufacturer_roots, *ctx.config.trust.ek_roots],
        # The client's NV chain is only a hint: a path counts only when it ends at a trusted root.
        intermediates=[*ctx.config.trust.ek_intermediates, *sent_chain],
        now=now,
    )
    if not chain.passed:
        raise _refuse_ek(f"EK certificate: {chain.detail}")

    try:
        ek = parse_public(request.ek_pub)
        aik = parse_public(request.aik_pub)
    except EvidenceFormatError as exc:
        raise _malformed_key(str(exc)) from exc
    # The verifier's rules for structures a TPM can hold, as the evaluator applies them at enrollment.
    for rule in (
        check_ek_structure("ek_pub.structure", ek),
        check_signing_key_structure("aik_pub.structure", aik, restricted=True),
    ):
        if not rule.passed:
            raise _malformed_key(f"{rule.name}: {rule.detail}")
    try:
        ek_key = ek.crypto_key()
        aik_name = aik.name()
        aik.crypto_key()
    except EvidenceFormatError as exc:
        raise _malformed_key(str(exc)) from exc
    if not same_public_key(ek_certificate, ek_key):
        raise ServiceFailure(
            403,
            "ek_mismatch",
            HResult.CERTSRV_E_INVALID_IDBINDING,
            "EK public key is not the key in the EK certificate",
        )
    attributes = check_aik_attributes("aik_pub.attributes", aik)
    if not attributes.passed:
        raise ServiceFailure(403, "bad_aik", HResult.CERTSRV_E_INVALID_ATTESTATION, attributes.detail)

    secret = secrets.token_bytes(32)
    try:
        blob, encrypted = make_credential(ek.public, secret, TPM2B_NAME(aik_name))
    except Exception as exc:  # tpm2-pytss refuses EKs it cannot encrypt to with several types
        raise _malformed_key(f"cannot make a credential for this EK: {exc}") from exc
    challenge_id = str(uuid.uuid4())
    ctx.store.add_challenge(
        challenge_id,
        hashlib.sha256(secret).digest(),
        request.aik_pub,
        {
            "manufacturer": identity.manufacturer,
            "model": identity.model,
            "version": identity.version,
        },
        now + ctx.config.challenge_lifetime,
    )
    return AikChallengeResponse(
        challengeId=challenge_id,
        credentialBlob=b64(bytes(blob.marshal())),
        encryptedSecret=b64(bytes(encrypted.marshal())),
    )


@router.post(
    "/activate",
    response_model=AikActivateResponse,
    response_model_by_alias=True,
    responses=errors(403, 404, 413, 429),
)
def activate(request: AikActivateRequest, ctx: ServerContext = Depends(context)) -> AikActivateResponse:
    """Issue the AIK certificate to the TPM that could decrypt the challenge."""
    now = ctx.clock.now()
    record = ctx.store.take_challenge(request.challenge_id)
    if record is None:
        raise ServiceFailure(
            404,
            "unknown_challenge",
            HResult.CERTSRV_E_INVALID_RESPONSE,
            "unknown or already used challenge",
        )
    if parse_iso(record["expires_at"]) < now:
        raise ServiceFailure(
            403, "expired_challenge", HResult.CERTSRV_E_EXPIRED_CHALLENGE, "challenge expired"
        )
    if not hmac.compare_digest(bytes(record["secret_sha256"]), hashlib.sha256(request.secret).digest()):
        raise ServiceFailure(
            403, "wrong_secret", HResult.CERTSRV_E_INVALID_RESPONSE, "the decrypted secret is wrong"
        )
    identity = TPMIdentity(**record["identity"])
    aik_key = parse_public(bytes(record["aik_pub"])).crypto_key()
    certificate = ctx.aik_ca.issue_aik_certificate(aik_key, identity, now=now)
    return AikActivateResponse(aikCert=b64(certificate_der(certificate)))
