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
4. Platform: virtual machines, by the policy's platform data (SMBIOS strings;
   the TPM's manufacturer and vendor string, taken from the verified AIK
   certificate when there is one, whatever the client claims), and builds
   below the minimum that send attestation items anyway -> "Feature isn't
   supported", whatever else is wrong with them, because no fix of the TPM
   can make them attest.
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
11. Claims against evidence: the client's TPMManufacturer and
   TPMFirmwareVersion agree with the verified TPM -> otherwise "Client request
   is rejected" (a client lying about its TPM).
12. Everything passed -> "Attested".

The AIK certificate is parsed and its path built once, before step 4, so that
the platform step and step 7 judge the same certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..status import AttestationStatus, HResult, StatusDetail, describe
from ._checks import Check, fail, ok
from ._model import Evidence, NonceState, Policy, Verdict
from ._steps import (
    AikCertificate,
    check_aik,
    check_certified_key,
    check_nonce,
    check_platform,
    check_token_device,
    check_tpm_claims,
    client_error_detail,
    examine_aik_certificate,
)
from ._tokens import DEVICE_ID_CLAIM, TokenVerdict, verify_token


def _not_attested(detail: StatusDetail, checks: list[Check], decision: str, **kw: Any) -> Verdict:
    return Verdict(AttestationStatus.NOT_ATTESTED, detail, checks, decision, **kw)


def _aik_certificate(evidence: Evidence, policy: Policy, now: dt.datetime) -> AikCertificate | None:
    if evidence.aik_cert is None:
        return None
    return examine_aik_certificate(evidence.aik_cert, policy, now, evidence.aik_chain)


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
    token_verdict: TokenVerdict | None = None,
) -> Verdict:
    """Decide a device's attestation status from its enrollment evidence (see module doc).

    `token_verdict`: verify_token's verdict on evidence.token with this policy at `now`, when
    the caller has it already (the server authenticates the request with it), so that the
    token is verified once per enrollment.
    """
    checks: list[Check] = []

    # 1-2. Authentication and device identity.
    if not evidence.token:
        checks.append(fail("token.present", "no bearer token"))
        return _not_attested(StatusDetail.AUTHENTICATION_FAILED, checks, "token.present: no bearer token")
    token = token_verdict or verify_token(
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

    # 4. Platform, judged on the TPM the AIK certificate names when it chains.
    certificate = _aik_certificate(evidence, policy, now)
    tpm = certificate.verified_tpm if certificate is not None else None
    kw: dict[str, Any] = {"token_claims": claims, "tpm": tpm}
    platform = check_platform(evidence, policy, tpm)
    checks.extend(platform)
    failed = _first_failure(platform)
    if failed is not None:
        return _not_attested(StatusDetail.FEATURE_NOT_SUPPORTED, checks, _reason(failed), **kw)

    # 5. The client's own failure.
    if evidence.client_status == "Failure" or (
        evidence.client_hresult is not None and evidence.client_hresult != HResult.S_OK
    ):
        code = evidence.client_hresult if evidence.client_hresult is not None else HResult.E_FAIL
        detail = client_error_detail(code, evidence)
        check = fail("client.status", f"client reported {describe(code)}")
        checks.append(check)
        return _not_attested(detail, checks, _reason(check), **kw)
    checks.append(ok("client.status", "client reported success"))

    # 6. Parameters.
    if evidence.aik_cert is None and evidence.aik_pub is None:
        check = fail("params.aik", "neither AIKCert nor AIKPub was sent")
        checks.append(check)
        return _not_attested(StatusDetail.MISSING_PARAMETERS, checks, _reason(check), **kw)
    if evidence.aik_cert is None:
        check = fail("params.aik_cert", "AIKPub was sent without AIKCert")
        checks.append(check)
        return _not_attested(StatusDetail.AIK_CERT_NOT_PROVIDED, checks, _reason(check), **kw)
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
        return _not_attested(StatusDetail.MISSING_PARAMETERS, checks, _reason(check), **kw)

    # 7. AIK.
    assert certificate is not None  # AIKCert was sent (step 6)
    aik_checks, aik_key, advisory = check_aik(certificate, evidence.aik_pub, policy)
    checks.extend(aik_checks)
    failed = _first_failure(aik_checks)
    if failed is not None or aik_key is None:
        reason = _reason(failed) if failed else "AIK unusable"
        return _not_attested(StatusDetail.CLIENT_REQUEST_REJECTED, checks, reason, **kw)
    if advisory is not None:
        checks.append(advisory)
        return _not_attested(StatusDetail.TPM_NOT_AVAILABLE, checks, _reason(advisory), **kw)

    # 8. MDM key.
    nonce_checks = check_nonce(nonce)
    checks.extend(nonce_checks)
    mdm_checks, _ = check_certified_key("mdm", evidence.aik_claim, evidence.mdm_pub, aik_key, nonce.value)
    checks.extend(mdm_checks)
    failed = _first_failure(nonce_checks + mdm_checks)
    if failed is not None:
        return _not_attested(StatusDetail.CLIENT_REQUEST_REJECTED, checks, _reason(failed), **kw)

    # 9. Entra key.
    if evidence.aad_claim is None or evidence.aad_pub is None:
        check = fail("entra.claim", "no AadAIKAttestationClaim/AADPub: the Entra key is not TPM-bound")
        checks.append(check)
        return _not_attested(StatusDetail.ENTRA_KEY_NOT_ATTESTED, checks, _reason(check), **kw)
    entra_checks, entra_key = check_certified_key(
        "entra", evidence.aad_claim, evidence.aad_pub, aik_key, nonce.value
    )
    checks.extend(entra_checks)
    failed = _first_failure(entra_checks)
    if failed is not None or entra_key is None:
        reason = _reason(failed) if failed else "entra: AADPub unusable"
        return _not_attested(StatusDetail.CLIENT_REQUEST_REJECTED, checks, reason, **kw)

    # 10. Token versus the Entra key presented.
    match = check_token_device(str(device_id), entra_key, registered_keys)
    checks.append(match)
    if not match.passed:
        return _not_attested(StatusDetail.TOKEN_DEVICE_MISMATCH, checks, _reason(match), **kw)

    # 11. Claims against evidence.
    contradiction = check_tpm_claims(evidence, tpm)
    if contradiction is not None:
        checks.append(contradiction)
        return _not_attested(StatusDetail.CLIENT_REQUEST_REJECTED, checks, _reason(contradiction), **kw)

    return Verdict(AttestationStatus.ATTESTED, StatusDetail.NONE, checks, "every check passed", claims, tpm)
