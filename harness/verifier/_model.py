"""What the evaluator takes and gives: evidence, the policy it trusts, the nonce, the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ..pki import TPMIdentity
from ..status import AttestationStatus, StatusDetail
from ._advisories import FirmwareAdvisory
from ._checks import Check
from ._platforms import PlatformRules
from ._tokens import DEVICE_ID_CLAIM
from ._tpm import EvidenceFormatError, attest_nonce, split_claim


@dataclass(frozen=True)
class Policy:
    """What the evaluator trusts; built from a trust store, never from the evidence."""

    aik_roots: Sequence[x509.Certificate]
    token_keys: Mapping[str, Any]
    token_issuer: str
    token_audience: str
    firmware_advisories: Sequence[FirmwareAdvisory] = ()
    aik_intermediates: Sequence[x509.Certificate] = ()
    # Which platforms are virtual machines: data from the trust store (platforms.yaml).
    platforms: PlatformRules = field(default_factory=PlatformRules)


@dataclass(frozen=True)
class Evidence:
    enrollment_version: str
    token: str | None
    os_version: str
    device_manufacturer: str = ""
    device_model: str = ""
    tpm_manufacturer: str = ""
    tpm_firmware: str = ""
    aik_claim: bytes | None = None
    aik_pub: bytes | None = None
    aik_cert: bytes | None = None
    aad_claim: bytes | None = None
    aad_pub: bytes | None = None
    mdm_pub: bytes | None = None
    client_status: str | None = None
    client_hresult: int | None = None
    # Certificates the client sent to help build the AIK chain (AIKCertChain); never trusted
    # by themselves: a path must still end at a root of the policy.
    aik_chain: tuple[bytes, ...] = ()

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
    # The TPM the AIK certificate names, when it chains to a trusted AIK root (the report's
    # verified TPM columns); None when no such certificate was sent.
    tpm: TPMIdentity | None = None
    # Facts the verdict assumed rather than judged (offline: whether the nonce was used before).
    not_judged: tuple[str, ...] = ()

    @property
    def device_id(self) -> str | None:
        value = self.token_claims.get(DEVICE_ID_CLAIM)
        return str(value) if value else None
