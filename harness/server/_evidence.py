"""Believe evidence, not claims: the TPM the server verified, and what a contradicting claim means.

The AIK certificate chains to this server's AIK CA, which wrote into it the TPM manufacturer,
model and firmware of the EK certificate it chained to a manufacturer root. Those are the TPM
columns of the report; the client's TPMManufacturer and TPMFirmwareVersion are only claims.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..status import AttestationStatus, StatusDetail
from ..tcg import TCG_VENDORS, TPMIdentity
from ..verifier import (
    Check,
    Policy,
    Verdict,
    check_aik_certificate,
    load_certificate,
    verify_chain,
)

# Verdicts decided before the platform is judged (evaluator steps 1-3): evidence about the TPM
# cannot change them.
_DECIDED_EARLIER = (StatusDetail.AUTHENTICATION_FAILED, StatusDetail.TOKEN_MISSING_DEVICE_ID)


def _vendor(manufacturer: str) -> str:
    return manufacturer.strip().removeprefix("id:").upper()


def verified_tpm(
    aik_cert: bytes | None, policy: Policy, now: dt.datetime, chain: Sequence[bytes] = ()
) -> TPMIdentity | None:
    """The TPM named by an AIK certificate that chains to a trusted AIK root and follows the
    TCG profile; None when there is no such certificate. The path is built as the evaluator
    builds it: through the intermediates the client sent (AIKCertChain) and the trusted ones."""
    if aik_cert is None:
        return None
    try:
        certificate = load_certificate(aik_cert)
        sent = [load_certificate(der) for der in chain]
    except ValueError:
        return None
    intermediates = [*sent, *policy.aik_intermediates]
    path = verify_chain(
        "aik_cert.chain", certificate, roots=policy.aik_roots, intermediates=intermediates, now=now
    )
    if not path.passed:
        return None
    checks, identity = check_aik_certificate(certificate)
    if identity is None or not all(c.passed for c in checks):
        return None
    return identity


def judge_claims(
    verdict: Verdict,
    *,
    claimed: str,
    claimed_firmware: str,
    tpm: TPMIdentity | None,
    policy: Policy,
) -> Verdict:
    """The verdict, overruled where verified evidence contradicts what the client claimed.

    A virtual TPM is "Feature isn't supported" whatever model the client claims, as the
    evaluator's platform step would have found had the client told the truth. A physical TPM
    claimed as another vendor's, or with other firmware, is a client lying about its TPM:
    "Client request is rejected".
    """
    if tpm is None or verdict.status is AttestationStatus.NOT_STARTED or verdict.detail in _DECIDED_EARLIER:
        return verdict
    if _vendor(tpm.manufacturer) in policy.virtual_tpm_vendors:
        if verdict.detail is StatusDetail.FEATURE_NOT_SUPPORTED:
            return verdict
        differs = claimed and _vendor(claimed) != _vendor(tpm.manufacturer)
        told = f"; the client claimed {claimed}" if differs else ""
        check = Check(
            "platform.verified_tpm",
            False,
            f"the verified AIK certificate names {tpm.manufacturer}, a virtual TPM{told}",
        )
        return _overrule(verdict, StatusDetail.FEATURE_NOT_SUPPORTED, check)
    if verdict.status is not AttestationStatus.ATTESTED:
        return verdict
    contradictions = []
    if claimed and _vendor(claimed) != _vendor(tpm.manufacturer):
        contradictions.append(f"manufacturer {claimed}, verified {tpm.manufacturer}")
    if claimed_firmware and claimed_firmware.upper() != tpm.version.upper():
        contradictions.append(f"firmware {claimed_firmware}, verified {tpm.version}")
    if contradictions:
        check = Check("tpm.claims_match_evidence", False, "client claimed " + "; ".join(contradictions))
        return _overrule(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, check)
    return verdict


def _overrule(verdict: Verdict, detail: StatusDetail, check: Check) -> Verdict:
    return Verdict(
        AttestationStatus.NOT_ATTESTED,
        detail,
        [*verdict.checks, check],
        f"{check.name}: {check.detail}",
        verdict.token_claims,
    )


def tpm_columns(
    tpm: TPMIdentity | None, claimed_version: str, claimed_manufacturer: str, claimed_firmware: str = ""
) -> dict[str, str]:
    """The report's TPM columns: from the verified certificate when there is one, else the claim
    (a device that did not attest reports its TPM from hardware inventory)."""
    if tpm is None:
        manufacturer, model, firmware, source = claimed_manufacturer, "", claimed_firmware, "claimed"
        version = claimed_version
    else:
        manufacturer, model, firmware, source = tpm.manufacturer, tpm.model, tpm.version, "verified"
        version = "2.0"  # only a TPM 2.0 can answer TPM2_ActivateCredential
    vendor = TCG_VENDORS.get(_vendor(manufacturer))
    if vendor:
        manufacturer = f"{vendor} ({manufacturer})"
    if not manufacturer and not version:
        source = ""
    return {
        "tpm_version": version,
        "tpm_manufacturer": manufacturer,
        "tpm_model": model,
        "tpm_firmware": firmware,
        "tpm_evidence": source,
    }
