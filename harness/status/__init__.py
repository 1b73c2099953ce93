"""A device's attestation status and why, in the source page's words: the status and its
details, the HRESULT the client reports (AttestationStatusHResult) and the causes it names,
and the Windows builds below which a device does not attest at all (Not started)."""

from ._hresult import NETWORK, TPM20_RC_BASE, TPM_ABSENT, TPM_NOT_READY, HResult, describe, from_tpm_rc
from ._status import RETRY_RECOMMENDED, AttestationStatus, StatusDetail
from ._windows import MDM_KEY_HANDLE, MINIMUM_BUILDS, parse_build, supports_enrollment_attestation

__all__ = [
    "MDM_KEY_HANDLE",
    "MINIMUM_BUILDS",
    "NETWORK",
    "RETRY_RECOMMENDED",
    "TPM20_RC_BASE",
    "TPM_ABSENT",
    "TPM_NOT_READY",
    "AttestationStatus",
    "HResult",
    "StatusDetail",
    "describe",
    "from_tpm_rc",
    "parse_build",
    "supports_enrollment_attestation",
]
