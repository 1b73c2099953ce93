"""The vocabulary of the device attestation status report.

Status values and status details are the exact strings an admin reads in the
report, so scenarios, the server and the report writers share this one module.
"""

from __future__ import annotations

from enum import StrEnum


class AttestationStatus(StrEnum):
    ATTESTED = "Attested"
    NOT_ATTESTED = "Not attested"
    IN_PROGRESS = "In progress"
    NOT_STARTED = "Not started"


class StatusDetail(StrEnum):
    NONE = ""
    ENTRA_KEY_NOT_ATTESTED = "Entra key can't be attested"
    IN_PROCESS = "Attestation is in process"
    TPM_NOT_TRUSTED = "TPM isn't trusted"
    TPM_NOT_AVAILABLE = "TPM isn't available"
    TPM_NOT_READY = "TPM isn't ready"
    CLIENT_REQUEST_REJECTED = "Client request is rejected"
    AIK_CERT_NOT_PROVIDED = "AIK certificate wasn't provided"
    MISSING_PARAMETERS = "Client didn't provide all required parameters"
    MDM_KEY_ALREADY_IN_TPM = "MDM key is already in TPM"
    FEATURE_NOT_SUPPORTED = "Feature isn't supported"
    TOKEN_DEVICE_MISMATCH = "Entra token doesn't match device identity"
    TOKEN_MISSING_DEVICE_ID = "Entra token is missing device identity"
    AUTHENTICATION_FAILED = "Authentication failed"


# The source page recommends re-running the Attest device action for these.
RETRY_RECOMMENDED: frozenset[StatusDetail] = frozenset(
    {
        StatusDetail.AIK_CERT_NOT_PROVIDED,
        StatusDetail.IN_PROCESS,
        StatusDetail.MDM_KEY_ALREADY_IN_TPM,
        StatusDetail.TPM_NOT_READY,
        StatusDetail.AUTHENTICATION_FAILED,
        StatusDetail.MISSING_PARAMETERS,
        StatusDetail.TOKEN_DEVICE_MISMATCH,
    }
)
