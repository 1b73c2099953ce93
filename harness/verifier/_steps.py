"""The steps of the evaluator's decision order (see _evaluate), each a list of checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from ..pki import TPMIdentity
from ..status import (
    NETWORK,
    TPM_ABSENT,
    TPM_NOT_READY,
    HResult,
    StatusDetail,
)
from ..windows import supports_enrollment_attestation
from ._advisories import format_version, matching_advisory, parse_version
from ._certs import (
    check_aik_certificate,
    load_certificate,
    load_certificate_and_key,
    same_public_key,
    verify_chain,
)
from ._checks import Check, fail, ok
from ._model import Evidence, NonceState, Policy
from ._structures import check_signing_key_structure
from ._tpm import (
    EvidenceFormatError,
    PublicKey,
    TPMKey,
    check_aik_attributes,
    check_bound_key_attributes,
    check_certify,
    key_strength,
    parse_public,
    split_claim,
    verify_signature,
)

_CLIENT_ERRORS: dict[int, StatusDetail] = {
    **dict.fromkeys(TPM_ABSENT, StatusDetail.TPM_NOT_AVAILABLE),
    **dict.fromkeys(TPM_NOT_READY, StatusDetail.TPM_NOT_READY),
    HResult.CERTSRV_E_INVALID_EK: StatusDetail.TPM_NOT_TRUSTED,
    HResult.NTE_EXISTS: StatusDetail.MDM_KEY_ALREADY_IN_TPM,
    HResult.NTE_NOT_SUPPORTED: StatusDetail.ENTRA_KEY_NOT_ATTESTED,
}


def client_error_detail(code: int, evidence: Evidence) -> StatusDetail:
    if code in NETWORK:
        if evidence.aik_pub is not None and evidence.aik_cert is None:
            return StatusDetail.AIK_CERT_NOT_PROVIDED
        return StatusDetail.CLIENT_REQUEST_REJECTED
    return _CLIENT_ERRORS.get(code, StatusDetail.CLIENT_REQUEST_REJECTED)


@dataclass(frozen=True)
class AikCertificate:
    """The AIK certificate, parsed and its path built once per evaluation."""

    checks: list[Check]
    certificate: x509.Certificate | None = None
    identity: TPMIdentity | None = None
    key: Any = None  # the certificate's public key, parsed once

    @property
    def verified_tpm(self) -> TPMIdentity | None:
        """The TPM the certificate names, when it chains to a trusted AIK root and follows the
        TCG profile: the AIK CA wrote it from an EK certificate it chained to the vendor."""
        if self.certificate is None or not all(c.passed for c in self.checks):
            return None
        return self.identity


def examine_aik_certificate(
    cert_der: bytes, policy: Policy, now: dt.datetime, chain: tuple[bytes, ...] = ()
) -> AikCertificate:
    """Parse the AIK certificate and the intermediates the client sent, build the path to a
    trusted AIK root (through them and the policy's), and check the TCG profile."""
    try:
        certificate, key = load_certificate_and_key(cert_der)
    except ValueError as exc:
        return AikCertificate([fail("aik_cert.parses", str(exc))])
    checks = [ok("aik_cert.parses")]
    sent: list[x509.Certificate] = []
    for index, der in enumerate(chain):
        try:
            sent.append(load_certificate(der))
        except ValueError as exc:
            checks.append(fail("aik_cert.chain", f"AIKCertChain certificate {index + 1}: {exc}"))
            return AikCertificate(checks)
    checks.append(
        verify_chain(
            "aik_cert.chain",
            certificate,
            roots=policy.aik_roots,
            intermediates=[*sent, *policy.aik_intermediates],
            now=now,
        )
    )
    profile, identity = check_aik_certificate(certificate, key)
    checks.extend(profile)
    return AikCertificate(checks, certificate, identity, key)


def check_platform(evidence: Evidence, policy: Policy, tpm: TPMIdentity | None) -> list[Check]:
    """Virtual machines by their SMBIOS strings, then by their TPM: the verified one when the
    AIK certificate names it (evidence beats the client's claim), else the claimed maker."""
    rules = policy.platforms
    platform = rules.virtual_platform(evidence.device_manufacturer, evidence.device_model)
    if platform is not None:
        return [
            fail(
                "platform.physical", f"model '{evidence.device_model}' is a virtual machine ({platform.name})"
            )
        ]
    if tpm is not None:
        virtual = rules.virtual_tpm(tpm.manufacturer, tpm.model)
        if virtual is not None:
            claimed = evidence.tpm_manufacturer
            differs = claimed and _vendor(claimed) != _vendor(tpm.manufacturer)
            told = f"; the client claimed {claimed}" if differs else ""
            return [
                fail(
                    "platform.verified_tpm",
                    f"the verified AIK certificate names {tpm.manufacturer} '{tpm.model}', a virtual TPM "
                    f"({virtual.name}){told}",
                )
            ]
    else:
        virtual = rules.virtual_tpm(evidence.tpm_manufacturer, None)
        if virtual is not None:
            return [
                fail(
                    "platform.physical",
                    f"TPM manufacturer {evidence.tpm_manufacturer} is a virtual TPM ({virtual.name})",
                )
            ]
    checks = [ok("platform.physical", evidence.device_model)]
    if supports_enrollment_attestation(evidence.os_version):
        checks.append(ok("platform.os_build", evidence.os_version))
    else:
        checks.append(fail("platform.os_build", f"OS {evidence.os_version} is below the minimum builds"))
    return checks


def _vendor(manufacturer: str) -> str:
    return manufacturer.strip().removeprefix("id:").upper()


def check_tpm_claims(evidence: Evidence, tpm: TPMIdentity | None) -> Check | None:
    """A failed check when the client's TPMManufacturer or TPMFirmwareVersion contradicts the
    verified TPM: a client lying about its TPM. None when they agree or nothing is verified."""
    if tpm is None:
        return None
    claimed, firmware = evidence.tpm_manufacturer, evidence.tpm_firmware
    contradictions = []
    if claimed and _vendor(claimed) != _vendor(tpm.manufacturer):
        contradictions.append(f"manufacturer {claimed}, verified {tpm.manufacturer}")
    if firmware and firmware.upper() != tpm.version.upper():
        contradictions.append(f"firmware {firmware}, verified {tpm.version}")
    if not contradictions:
        return None
    return fail("tpm.claims_match_evidence", "client claimed " + "; ".join(contradictions))


def check_aik(
    certificate: AikCertificate, pub_blob: bytes, policy: Policy
) -> tuple[list[Check], Any, Check | None]:
    """The AIK checks, the AIK's key, and a failed tpm.firmware check if an advisory covers it."""
    checks = list(certificate.checks)
    if certificate.certificate is None:
        return checks, None, None
    identity = certificate.identity
    try:
        aik = parse_public(pub_blob)
        aik_key = aik.crypto_key()
    except EvidenceFormatError as exc:
        checks.append(fail("aik_pub.parses", str(exc)))
        return checks, None, None
    checks.append(check_signing_key_structure("aik_pub.structure", aik, restricted=True))
    checks.append(check_aik_attributes("aik_pub.attributes", aik))
    checks.append(key_strength("aik_pub.key_strength", aik_key))
    checks.append(
        ok("aik_pub.matches_cert")
        if same_public_key(certificate.key, aik_key)
        else fail("aik_pub.matches_cert", "AIKPub is not the key the AIK certificate certifies")
    )
    advisory = matching_advisory(identity, policy.firmware_advisories) if identity is not None else None
    if advisory is None or identity is None:
        return checks, aik_key, None
    version = format_version(parse_version(identity.version))
    finding = fail(
        "tpm.firmware",
        f"firmware {version} of {identity.manufacturer} {identity.model} is affected by "
        f"{advisory.name}, per {advisory.source}",
    )
    return checks, aik_key, finding


def check_nonce(nonce: NonceState) -> list[Check]:
    if not nonce.issued:
        return [fail("nonce.issued", "qualifying data is not a nonce this server issued")]
    if nonce.expired:
        return [fail("nonce.fresh", "nonce has expired")]
    if nonce.used:
        return [fail("nonce.unused", "nonce was already used")]
    return [ok("nonce.fresh", "issued by this server, unexpired, first use")]


def check_certified_key(
    prefix: str, claim_blob: bytes, pub_blob: bytes, aik_key: Any, nonce: bytes
) -> tuple[list[Check], PublicKey | None]:
    """The checks of a key the AIK certified, and the key (None when it does not convert)."""
    try:
        claim = split_claim(claim_blob)
        key: TPMKey = parse_public(pub_blob)
    except EvidenceFormatError as exc:
        return [fail(f"{prefix}.parses", str(exc))], None
    checks = [check_signing_key_structure(f"{prefix}.key_structure", key, restricted=False)]
    checks.extend(check_certify(prefix, claim.attest, certified=key, nonce=nonce))
    checks.append(verify_signature(f"{prefix}.signature", aik_key, claim.attest, claim.signature))
    checks.append(check_bound_key_attributes(f"{prefix}.key_attributes", key))
    try:
        crypto_key = key.crypto_key()
    except EvidenceFormatError as exc:
        checks.append(fail(f"{prefix}.key_strength", str(exc)))
        return checks, None
    checks.append(key_strength(f"{prefix}.key_strength", crypto_key))
    return checks, crypto_key


def check_token_device(device_id: str, presented: PublicKey, registered: Mapping[str, bytes]) -> Check:
    """The Entra key presented (AADPub, already parsed) is the one registered for the device."""
    spki = registered.get(device_id)
    if spki is None:
        return fail("entra.token_device", f"device {device_id} is not registered with the identity provider")
    # The identity provider keeps the SubjectPublicKeyInfo it was given: equal DER is the same
    # key; otherwise (another encoding of a point, say) the keys are compared by their numbers.
    if presented.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == spki:
        return ok("entra.token_device", device_id)
    try:
        registered_key = load_der_public_key(spki)
    except ValueError as exc:
        return fail("entra.token_device", str(exc))
    if not same_public_key(presented, registered_key):  # type: ignore[arg-type]
        return fail("entra.token_device", f"AADPub is not the key registered for device {device_id}")
    return ok("entra.token_device", device_id)


def verified_tpm(
    cert_der: bytes | None, policy: Policy, now: dt.datetime, chain: tuple[bytes, ...] = ()
) -> TPMIdentity | None:
    """The TPM named by an AIK certificate that chains to a trusted AIK root and follows the
    TCG profile, the path built as the evaluator builds it; None without such a certificate."""
    if cert_der is None:
        return None
    return examine_aik_certificate(cert_der, policy, now, tuple(chain)).verified_tpm
