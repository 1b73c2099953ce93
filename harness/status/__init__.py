"""A device's attestation status and why, in the source page's words: the status and its
details, and the HRESULT the client reports (AttestationStatusHResult) with the causes it
names. Outcomes only: a world condition never imports this package."""

from ._hresult import NETWORK, TPM20_RC_BASE, TPM_ABSENT, TPM_NOT_READY, HResult, describe, from_tpm_rc
from ._status import RETRY_RECOMMENDED, AttestationStatus, StatusDetail

__all__ = [
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
]
