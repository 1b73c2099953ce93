"""The steps of the evaluator's decision order (see _evaluate), each a list of checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..hresult import HResult
from ..status import StatusDetail
from ..windows import supports_enrollment_attestation
from ._advisories import format_version, matching_advisory, parse_version
from ._certs import check_aik_certificate, load_certificate, same_public_key, verify_chain
from ._checks import Check, fail, ok
from ._model import Evidence, NonceState, Policy
from ._tpm import (
    EvidenceFormatError,
    TPMKey,
    check_aik_attributes,
    check_bound_key_attributes,
    check_certify,
    key_strength,
    parse_public,
    split_claim,
    verify_signature,
)

_CLIENT_ERRORS: dict[int, StatusDetail] = {
    HResult.TBS_E_TPM_NOT_FOUND: StatusDetail.TPM_NOT_AVAILABLE,
    HResult.TPM_E_PCP_UNSUPPORTED_TPM_VERSION: StatusDetail.TPM_NOT_AVAILABLE,
    HResult.TPM_E_LOCKOUT: StatusDetail.TPM_NOT_READY,
    HResult.TPM_E_AUTH_FAIL: StatusDetail.TPM_NOT_READY,
    HResult.TPM_E_BAD_AUTH: StatusDetail.TPM_NOT_READY,
    HResult.TPM_E_HIERARCHY: StatusDetail.TPM_NOT_READY,
    HResult.TPM_E_INITIALIZE: StatusDetail.TPM_NOT_READY,
    HResult.CERTSRV_E_INVALID_EK: StatusDetail.TPM_NOT_TRUSTED,
    HResult.NTE_EXISTS: StatusDetail.MDM_KEY_ALREADY_IN_TPM,
    HResult.NTE_NOT_SUPPORTED: StatusDetail.ENTRA_KEY_NOT_ATTESTED,
}
_NETWORK_ERRORS = frozenset(
    {HResult.WINHTTP_CANNOT_CONNECT, HResult.WINHTTP_CONNECTION_ERROR, HResult.WINHTTP_TIMEOUT}
)


def client_error_detail(code: int, evidence: Evidence) -> StatusDetail:
    if code in _NETWORK_ERRORS:
        if evidence.aik_pub is not None and evidence.aik_cert is None:
            return StatusDetail.AIK_CERT_NOT_PROVIDED
        return StatusDetail.CLIENT_REQUEST_REJECTED
    return _CLIENT_ERRORS.get(code, StatusDetail.CLIENT_REQUEST_REJECTED)


def check_platform(evidence: Evidence, policy: Policy) -> list[Check]:
    model = f"{evidence.device_manufacturer} {evidence.device_model}".lower()
    hit = next((m for m in policy.virtual_models if m in model), None)
    if hit is not None:
        return [fail("platform.physical", f"model '{evidence.device_model}' is a virtual machine")]
    vendor = evidence.tpm_manufacturer.removeprefix("id:").upper()
    if vendor in policy.virtual_tpm_vendors:
        return [
            fail(
                "platform.physical",
                f"TPM manufacturer {evidence.tpm_manufacturer} is a virtual TPM",
            )
        ]
    checks = [ok("platform.physical", evidence.device_model)]
    if supports_enrollment_attestation(evidence.os_version):
        checks.append(ok("platform.os_build", evidence.os_version))
    else:
        checks.append(fail("platform.os_build", f"OS {evidence.os_version} is below the minimum builds"))
    return checks


def check_aik(
    cert_der: bytes,
    pub_blob: bytes,
    policy: Policy,
    now: dt.datetime,
    chain: tuple[bytes, ...] = (),
) -> tuple[list[Check], Any, Check | None]:
    """The AIK checks, the AIK's key, and a failed tpm.firmware check if an advisory covers it."""
    try:
        certificate = load_certificate(cert_der)
    except ValueError as exc:
        return [fail("aik_cert.parses", str(exc))], None, None
    checks = [ok("aik_cert.parses")]
    sent: list[x509.Certificate] = []
    for index, der in enumerate(chain):
        try:
            sent.append(load_certificate(der))
        except ValueError as exc:
            checks.append(fail("aik_cert.chain", f"AIKCertChain certificate {index + 1}: {exc}"))
            return checks, None, None
    checks.append(
        verify_chain(
            "aik_cert.chain",
            certificate,
            roots=policy.aik_roots,
            intermediates=[*sent, *policy.aik_intermediates],
            now=now,
        )
    )
    profile, identity = check_aik_certificate(certificate)
    checks.extend(profile)
    try:
        aik = parse_public(pub_blob)
        aik_key = aik.crypto_key()
    except EvidenceFormatError as exc:
        checks.append(fail("aik_pub.parses", str(exc)))
        return checks, None, None
    checks.append(check_aik_attributes("aik_pub.attributes", aik))
    checks.append(key_strength("aik_pub.key_strength", aik_key))
    checks.append(
        ok("aik_pub.matches_cert")
        if same_public_key(certificate, aik_key)
        else fail("aik_pub.matches_cert", "AIKPub is not the key the AIK certificate certifies")
    )
    advisory = matching_advisory(identity, policy.firmware_advisories) if identity is not None else None
    if advisory is None or identity is None:
        return checks, aik_key, None
    version = format_version(parse_version(identity.version))
    finding = fail(
        "tpm.firmware",
        f"firmware {version} of {identity.manufacturer} {identity.model} is affected by "
        f"{advisory.name}, per {advisory.source}",
    )
    return checks, aik_key, finding


def check_nonce(nonce: NonceState) -> list[Check]:
    if not nonce.issued:
        return [fail("nonce.issued", "qualifying data is not a nonce this server issued")]
    if nonce.expired:
        return [fail("nonce.fresh", "nonce has expired")]
    if nonce.used:
        return [fail("nonce.unused", "nonce was already used")]
    return [ok("nonce.fresh", "issued by this server, unexpired, first use")]


def check_certified_key(
    prefix: str, claim_blob: bytes, pub_blob: bytes, aik_key: Any, nonce: bytes
) -> list[Check]:
    try:
        claim = split_claim(claim_blob)
        key: TPMKey = parse_public(pub_blob)
    except EvidenceFormatError as exc:
        return [fail(f"{prefix}.parses", str(exc))]
    checks = check_certify(prefix, claim.attest, certified=key, nonce=nonce)
    checks.append(verify_signature(f"{prefix}.signature", aik_key, claim.attest, claim.signature))
    checks.append(check_bound_key_attributes(f"{prefix}.key_attributes", key))
    try:
        checks.append(key_strength(f"{prefix}.key_strength", key.crypto_key()))
    except EvidenceFormatError as exc:
        checks.append(fail(f"{prefix}.key_strength", str(exc)))
    return checks


def check_token_device(device_id: str, aad_pub: bytes, registered: Mapping[str, bytes]) -> Check:
    spki = registered.get(device_id)
    if spki is None:
        return fail("entra.token_device", f"device {device_id} is not registered with the identity provider")
    try:
        presented = parse_public(aad_pub).crypto_key()
        registered_key = load_der_public_key(spki)
    except (EvidenceFormatError, ValueError) as exc:
        return fail("entra.token_device", str(exc))
    if not same_public_key(presented, registered_key):  # type: ignore[arg-type]
        return fail("entra.token_device", f"AADPub is not the key registered for device {device_id}")
    return ok("entra.token_device", device_id)
