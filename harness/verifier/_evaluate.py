"""The attestation evaluator: evidence in, status and status detail out.

Pure: every input is bytes or plain data, time is an argument, and nothing is
read from or written to anywhere. The server looks up what only it can know
(the state of the nonce, the key registered for a device) and passes it in.

Decision order, first match wins (each step lists its detail):

1. Authentication: the token is present, signed by a key of the identity
   provider, for this audience, and not expired -> "Authentication failed".
2. Device identity: the token carries a device ID -> "Entra token is missing
   device identity".
3. Attestation attempted: a client below the minimum build or an enrollment
   protocol before 5.0 sends no attestation items -> status "Not started".
4. Platform: virtual machines (by inventory model or a virtual TPM's
   manufacturer), and builds below the minimum that send attestation items
   anyway -> "Feature isn't supported", whatever else is wrong with them,
   because no fix of the TPM can make them attest.
5. The client's own failure (AttestationStatusHResult), mapped from what it
   met: no or 1.2 TPM -> "TPM isn't available"; lockout, unknown owner auth,
   disabled hierarchy, TPM not started -> "TPM isn't ready"; the AIK CA's
   refusal of the EK -> "TPM isn't trusted"; MDM key exists -> "MDM key is
   already in TPM"; the Entra key not in the TPM -> "Entra key can't be
   attested". A network error depends on where the client met it: with an
   AIKPub and no AIKCert it was the AIK CA -> "AIK certificate wasn't
   provided"; otherwise its request to the MDM service did not get through ->
   "Client request is rejected", as is any refusal the client reports from a
   service (an HRESULT of no TPM or network condition).
6. Parameters: neither AIKCert nor AIKPub -> "Client didn't provide all
   required parameters"; AIKPub without AIKCert -> "AIK certificate wasn't
   provided".
7. AIK: certificate chains to the AIK CA, follows the TCG profile, certifies
   the AIKPub sent, and the AIK is a restricted signing key -> otherwise
   "Client request is rejected". A TPM firmware on the advisory list ->
   "TPM isn't available".
8. MDM key: TPMS_ATTEST magic and type, the server's fresh unused nonce, the
   attested name is the MDMPub's, the AIK signed it, the key is a
   non-restricted key born in the TPM -> otherwise "Client request is rejected".
9. Entra key: no AadAIKAttestationClaim or AADPub -> "Entra key can't be
   attested"; a claim that fails the checks of step 8 -> "Client request is
   rejected".
10. Token versus key: the key registered for the token's device ID is the
   AADPub presented -> otherwise "Entra token doesn't match device identity".
11. Everything passed -> "Attested".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..hresult import HResult, describe
from ..status import AttestationStatus, StatusDetail
from ..windows import supports_enrollment_attestation
from ._certs import check_aik_certificate, load_certificate, same_public_key, verify_chain
from ._checks import Check, fail, ok
from ._tokens import DEVICE_ID_CLAIM, verify_token
from ._tpm import (
    EvidenceFormatError,
    TPMKey,
    attest_nonce,
    check_aik_attributes,
    check_bound_key_attributes,
    check_certify,
    key_strength,
    parse_public,
    split_claim,
    verify_signature,
)

VIRTUAL_MODELS = (
    "virtual machine",
    "cloud pc",
    "microsoft dev box",
    "azure virtual desktop",
)
VIRTUAL_TPM_VENDORS = ("4D534654",)  # "MSFT": Hyper-V and Azure vTPMs

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


@dataclass(frozen=True)
class FirmwareAdvisory:
    """TPM firmware with a known flaw (ROCA, TPM-FAIL): manufacturer id and version prefix."""

    name: str
    manufacturer: str  # "id:49465800"
    version_prefix: str  # matched against the tpmVersion attribute, "id:0004..."


@dataclass(frozen=True)
class Policy:
    aik_roots: Sequence[x509.Certificate]
    token_keys: Mapping[str, Any]
    token_issuer: str
    token_audience: str
    firmware_advisories: Sequence[FirmwareAdvisory] = ()
    virtual_models: Sequence[str] = VIRTUAL_MODELS
    virtual_tpm_vendors: Sequence[str] = VIRTUAL_TPM_VENDORS


@dataclass(frozen=True)
class Evidence:
    enrollment_version: str
    token: str | None
    os_version: str
    device_manufacturer: str = ""
    device_model: str = ""
    tpm_manufacturer: str = ""
    aik_claim: bytes | None = None
    aik_pub: bytes | None = None
    aik_cert: bytes | None = None
    aad_claim: bytes | None = None
    aad_pub: bytes | None = None
    mdm_pub: bytes | None = None
    client_status: str | None = None
    client_hresult: int | None = None

    @property
    def attempted(self) -> bool:
        return self.client_status is not None or any(
            item is not None
            for item in (self.aik_claim, self.aik_pub, self.aik_cert, self.aad_claim, self.aad_pub)
        )


@dataclass(frozen=True)
class NonceState:
    """What the server knows of the nonce an attestation carries (see claimed_nonce)."""

    value: bytes
    issued: bool
    expired: bool = False
    used: bool = False


def claimed_nonce(evidence: Evidence) -> bytes | None:
    """The qualifying data of the MDM key's attestation, for the server to look up."""
    if evidence.aik_claim is None:
        return None
    try:
        return attest_nonce(split_claim(evidence.aik_claim).attest)
    except EvidenceFormatError:
        return None


@dataclass(frozen=True)
class Verdict:
    status: AttestationStatus
    detail: StatusDetail
    checks: list[Check] = field(default_factory=list)
    decision: str = ""
    token_claims: dict[str, Any] = field(default_factory=dict)

    @property
    def device_id(self) -> str | None:
        value = self.token_claims.get(DEVICE_ID_CLAIM)
        return str(value) if value else None


def _not_attested(detail: StatusDetail, checks: list[Check], decision: str, **kw: Any) -> Verdict:
    return Verdict(AttestationStatus.NOT_ATTESTED, detail, checks, decision, **kw)


def _first_failure(checks: Sequence[Check]) -> Check | None:
    return next((c for c in checks if not c.passed), None)


def _reason(check: Check) -> str:
    return f"{check.name}: {check.detail}"


def evaluate(
    evidence: Evidence,
    policy: Policy,
    *,
    now: dt.datetime,
    nonce: NonceState,
    registered_keys: Mapping[str, bytes],
) -> Verdict:
    """Decide a device's attestation status from its enrollment evidence (see module doc)."""
    checks: list[Check] = []

    # 1-2. Authentication and device identity.
    if not evidence.token:
        checks.append(fail("token.present", "no bearer token"))
        return _not_attested(StatusDetail.AUTHENTICATION_FAILED, checks, "token.present: no bearer token")
    token = verify_token(
        evidence.token,
        keys=policy.token_keys,
        issuer=policy.token_issuer,
        audience=policy.token_audience,
        now=now,
    )
    checks.extend(token.checks)
    failed = _first_failure(token.checks)
    if failed is not None:
        return _not_attested(StatusDetail.AUTHENTICATION_FAILED, checks, _reason(failed))
    claims = token.claims
    device_id = claims.get(DEVICE_ID_CLAIM)
    if not device_id:
        checks.append(fail("token.device_id", f"token has no '{DEVICE_ID_CLAIM}' claim"))
        return _not_attested(
            StatusDetail.TOKEN_MISSING_DEVICE_ID,
            checks,
            "token.device_id: claim missing",
            token_claims=claims,
        )
    checks.append(ok("token.device_id", str(device_id)))

    # 3. Attestation attempted at all.
    if not evidence.attempted:
        checks.append(
            fail(
                "attestation.attempted",
                f"enrollment {evidence.enrollment_version} sent no attestation items",
            )
        )
        return Verdict(
            AttestationStatus.NOT_STARTED,
            StatusDetail.NONE,
            checks,
            "attestation.attempted: the client sent no attestation items",
            claims,
        )

    # 4. Platform.
    platform = _check_platform(evidence, policy)
    checks.extend(platform)
    failed = _first_failure(platform)
    if failed is not None:
        return _not_attested(StatusDetail.FEATURE_NOT_SUPPORTED, checks, _reason(failed), token_claims=claims)

    # 5. The client's own failure.
    if evidence.client_status == "Failure" or (
        evidence.client_hresult is not None and evidence.client_hresult != HResult.S_OK
    ):
        code = evidence.client_hresult if evidence.client_hresult is not None else HResult.E_FAIL
        detail = _client_error_detail(code, evidence)
        check = fail("client.status", f"client reported {describe(code)}")
        checks.append(check)
        return _not_attested(detail, checks, _reason(check), token_claims=claims)
    checks.append(ok("client.status", "client reported success"))

    # 6. Parameters.
    if evidence.aik_cert is None and evidence.aik_pub is None:
        check = fail("params.aik", "neither AIKCert nor AIKPub was sent")
        checks.append(check)
        return _not_attested(StatusDetail.MISSING_PARAMETERS, checks, _reason(check), token_claims=claims)
    if evidence.aik_cert is None:
        check = fail("params.aik_cert", "AIKPub was sent without AIKCert")
        checks.append(check)
        return _not_attested(StatusDetail.AIK_CERT_NOT_PROVIDED, checks, _reason(check), token_claims=claims)
    if evidence.aik_pub is None or evidence.aik_claim is None or evidence.mdm_pub is None:
        missing = [
            n
            for n, v in (
                ("AIKPub", evidence.aik_pub),
                ("AIKAttestationClaim", evidence.aik_claim),
                ("MDMPub", evidence.mdm_pub),
            )
            if v is None
        ]
        check = fail("params.mdm_claim", f"missing {', '.join(missing)}")
        checks.append(check)
        return _not_attested(StatusDetail.MISSING_PARAMETERS, checks, _reason(check), token_claims=claims)

    # 7. AIK.
    aik_checks, aik_key, advisory = _check_aik(evidence.aik_cert, evidence.aik_pub, policy, now)
    checks.extend(aik_checks)
    failed = _first_failure(aik_checks)
    if failed is not None or aik_key is None:
        reason = _reason(failed) if failed else "AIK unusable"
        return _not_attested(StatusDetail.CLIENT_REQUEST_REJECTED, checks, reason, token_claims=claims)
    if advisory is not None:
        check = fail("tpm.firmware", f"TPM firmware is affected by {advisory.name}")
        checks.append(check)
        return _not_attested(StatusDetail.TPM_NOT_AVAILABLE, checks, _reason(check), token_claims=claims)

    # 8. MDM key.
    nonce_checks = _check_nonce(nonce)
    checks.extend(nonce_checks)
    mdm_checks = _check_certified_key("mdm", evidence.aik_claim, evidence.mdm_pub, aik_key, nonce.value)
    checks.extend(mdm_checks)
    failed = _first_failure(nonce_checks + mdm_checks)
    if failed is not None:
        return _not_attested(
            StatusDetail.CLIENT_REQUEST_REJECTED, checks, _reason(failed), token_claims=claims
        )

    # 9. Entra key.
    if evidence.aad_claim is None or evidence.aad_pub is None:
        check = fail("entra.claim", "no AadAIKAttestationClaim/AADPub: the Entra key is not TPM-bound")
        checks.append(check)
        return _not_attested(StatusDetail.ENTRA_KEY_NOT_ATTESTED, checks, _reason(check), token_claims=claims)
    entra_checks = _check_certified_key("entra", evidence.aad_claim, evidence.aad_pub, aik_key, nonce.value)
    checks.extend(entra_checks)
    failed = _first_failure(entra_checks)
    if failed is not None:
        return _not_attested(
            StatusDetail.CLIENT_REQUEST_REJECTED, checks, _reason(failed), token_claims=claims
        )

    # 10. Token versus the Entra key presented.
    match = _check_token_device(str(device_id), evidence.aad_pub, registered_keys)
    checks.append(match)
    if not match.passed:
        return _not_attested(StatusDetail.TOKEN_DEVICE_MISMATCH, checks, _reason(match), token_claims=claims)

    return Verdict(AttestationStatus.ATTESTED, StatusDetail.NONE, checks, "every check passed", claims)


def _client_error_detail(code: int, evidence: Evidence) -> StatusDetail:
    if code in _NETWORK_ERRORS:
        if evidence.aik_pub is not None and evidence.aik_cert is None:
            return StatusDetail.AIK_CERT_NOT_PROVIDED
        return StatusDetail.CLIENT_REQUEST_REJECTED
    return _CLIENT_ERRORS.get(code, StatusDetail.CLIENT_REQUEST_REJECTED)


def _check_platform(evidence: Evidence, policy: Policy) -> list[Check]:
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


def _check_aik(
    cert_der: bytes, pub_blob: bytes, policy: Policy, now: dt.datetime
) -> tuple[list[Check], Any, FirmwareAdvisory | None]:
    try:
        certificate = load_certificate(cert_der)
    except ValueError as exc:
        return [fail("aik_cert.parses", str(exc))], None, None
    checks = [ok("aik_cert.parses")]
    checks.append(verify_chain("aik_cert.chain", certificate, roots=policy.aik_roots, now=now))
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
    advisory = None
    if identity is not None:
        advisory = next(
            (
                a
                for a in policy.firmware_advisories
                if a.manufacturer.upper() == identity.manufacturer.upper()
                and identity.version.upper().startswith(a.version_prefix.upper())
            ),
            None,
        )
    return checks, aik_key, advisory


def _check_nonce(nonce: NonceState) -> list[Check]:
    if not nonce.issued:
        return [fail("nonce.issued", "qualifying data is not a nonce this server issued")]
    if nonce.expired:
        return [fail("nonce.fresh", "nonce has expired")]
    if nonce.used:
        return [fail("nonce.unused", "nonce was already used")]
    return [ok("nonce.fresh", "issued by this server, unexpired, first use")]


def _check_certified_key(
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


def _check_token_device(device_id: str, aad_pub: bytes, registered: Mapping[str, bytes]) -> Check:
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
