"""The attestation verifier: pure functions over the TPM's bytes and DER certificates.

Feed it evidence recorded from any TPM; it does no I/O and holds no state.
"""

from ._advisories import (
    FirmwareAdvisory,
    Version,
    VersionRange,
    format_version,
    matching_advisory,
    parse_version,
)
from ._bundle import (
    BUNDLE_FORMAT,
    Bundle,
    BundleFormatError,
    IssuedNonce,
    bundle_document,
    judge_bundle,
    parse_bundle,
    parse_time,
)
from ._certs import (
    check_aik_certificate,
    check_ek_certificate,
    describe_certificate,
    load_certificate,
    same_public_key,
    verify_chain,
)
from ._checks import Check
from ._evaluate import evaluate
from ._model import Evidence, NonceState, Policy, Verdict, claimed_nonce
from ._platforms import PlatformRules, VirtualPlatform, VirtualTPM
from ._request import certificate_chain_item, evidence_from_request, split_certificate_chain
from ._steps import verified_tpm
from ._structures import check_ek_structure, check_signing_key_structure
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
    "BUNDLE_FORMAT",
    "DEVICE_ID_CLAIM",
    "AttestationClaim",
    "Bundle",
    "BundleFormatError",
    "Check",
    "Evidence",
    "EvidenceFormatError",
    "FirmwareAdvisory",
    "IssuedNonce",
    "NonceState",
    "PlatformRules",
    "Policy",
    "TPMKey",
    "TokenVerdict",
    "Verdict",
    "Version",
    "VersionRange",
    "VirtualPlatform",
    "VirtualTPM",
    "bundle_document",
    "certificate_chain_item",
    "check_aik_attributes",
    "check_aik_certificate",
    "check_certify",
    "check_ek_certificate",
    "check_ek_structure",
    "check_signing_key_structure",
    "claimed_nonce",
    "describe_certificate",
    "evaluate",
    "evidence_from_request",
    "format_version",
    "judge_bundle",
    "load_certificate",
    "matching_advisory",
    "parse_bundle",
    "parse_public",
    "parse_time",
    "parse_version",
    "same_public_key",
    "split_certificate_chain",
    "split_claim",
    "verified_tpm",
    "verify_chain",
    "verify_signature",
    "verify_token",
]
