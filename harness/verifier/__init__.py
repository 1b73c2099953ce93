"""The attestation verifier: pure functions over the TPM's bytes and DER certificates.

Feed it evidence recorded from any TPM; it does no I/O and holds no state.
"""

from ._certs import (
    check_aik_certificate,
    check_ek_certificate,
    load_certificate,
    same_public_key,
    verify_chain,
)
from ._checks import Check
from ._evaluate import (
    Evidence,
    FirmwareAdvisory,
    NonceState,
    Policy,
    Verdict,
    claimed_nonce,
    evaluate,
)
from ._tokens import DEVICE_ID_CLAIM, TokenVerdict, verify_token
from ._tpm import (
    AttestationClaim,
    EvidenceFormatError,
    TPMKey,
    check_aik_attributes,
    check_certify,
    parse_public,
    split_claim,
    verify_signature,
)

__all__ = [
    "DEVICE_ID_CLAIM",
    "AttestationClaim",
    "Check",
    "Evidence",
    "EvidenceFormatError",
    "FirmwareAdvisory",
    "NonceState",
    "Policy",
    "TPMKey",
    "TokenVerdict",
    "Verdict",
    "check_aik_attributes",
    "check_aik_certificate",
    "check_certify",
    "check_ek_certificate",
    "claimed_nonce",
    "evaluate",
    "load_certificate",
    "parse_public",
    "same_public_key",
    "split_claim",
    "verify_chain",
    "verify_signature",
    "verify_token",
]
