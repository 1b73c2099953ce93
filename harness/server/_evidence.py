"""The report's TPM columns: the TPM the verifier found named by a trusted AIK certificate.

The AIK certificate chains to this server's AIK CA, which wrote into it the TPM manufacturer,
model and firmware of the EK certificate it chained to a manufacturer root. Those are the TPM
columns of the report; the client's TPMManufacturer and TPMFirmwareVersion are only claims.
What a claim that contradicts the evidence means is the verifier's decision (verdict.tpm and
the checks platform.verified_tpm and tpm.claims_match_evidence).
"""

from __future__ import annotations

from ..pki import TCG_VENDORS, TPMIdentity


def _vendor(manufacturer: str) -> str:
    return manufacturer.strip().removeprefix("id:").upper()


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
