"""Checks over DER certificates: chains to trust anchors and the TCG profiles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..tcg import OID_AIK_CERTIFICATE, OID_EK_CERTIFICATE, TPMIdentity, parse_tpm_san
from ._checks import Check, fail, ok
from ._tpm import key_strength


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate completely, so that later checks cannot trip on its parts.

    cryptography parses names, extensions and the key lazily; a certificate whose
    parts are malformed is refused here, as a ValueError, rather than deep in a check.
    """
    try:
        certificate = x509.load_der_x509_certificate(der)
        _ = (certificate.version, certificate.subject, certificate.issuer, certificate.extensions)
        certificate.public_key()
    except Exception as exc:  # cryptography raises several types for malformed parts
        raise ValueError(f"not a well-formed DER certificate: {exc}") from exc
    return certificate


def verify_chain(
    name: str,
    leaf: x509.Certificate,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    now: dt.datetime,
    max_depth: int = 4,
) -> Check:
    """Walk issuer links from leaf to one of `roots`, checking signatures and validity."""
    current = leaf
    for _ in range(max_depth + 1):
        if not _valid_at(current, now):
            return fail(name, f"certificate '{_label(current)}' is not valid at {now:%Y-%m-%d %H:%M}")
        for root in roots:
            if _issued_by(current, root):
                if not _valid_at(root, now):
                    return fail(name, f"trust anchor '{_label(root)}' is not valid now")
                return ok(name, f"chains to '{_label(root)}'")
        parent = next((c for c in intermediates if _issued_by(current, c) and _is_ca(c)), None)
        if parent is None:
            return fail(name, f"issuer '{current.issuer.rfc4514_string()}' is not a trusted root")
        current = parent
    return fail(name, "chain is longer than allowed")


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _label(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def _has_eku(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    try:
        return oid in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def check_tpm_certificate_profile(
    prefix: str, certificate: x509.Certificate, *, eku: x509.ObjectIdentifier
) -> tuple[list[Check], TPMIdentity | None]:
    """The common TCG profile of EK and AIK certificates, and the TPM identity it names."""
    checks: list[Check] = []
    checks.append(
        ok(f"{prefix}.version")
        if certificate.version == x509.Version.v3
        else fail(f"{prefix}.version", "certificate is not X.509 v3")
    )
    checks.append(
        ok(f"{prefix}.eku")
        if _has_eku(certificate, eku)
        else fail(f"{prefix}.eku", f"EKU {eku.dotted_string} is missing")
    )
    checks.append(
        fail(f"{prefix}.not_ca", "certificate says CA=true")
        if _is_ca(certificate)
        else ok(f"{prefix}.not_ca")
    )
    identity = parse_tpm_san(certificate)
    if identity is None:
        checks.append(fail(f"{prefix}.tpm_identity", "no TPM manufacturer in the subjectAltName"))
    else:
        checks.append(
            ok(
                f"{prefix}.tpm_identity",
                f"manufacturer {identity.manufacturer}, model {identity.model}, version {identity.version}",
            )
        )
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        checks.append(key_strength(f"{prefix}.key_strength", key))
    else:
        checks.append(fail(f"{prefix}.key_strength", "key is neither RSA nor ECC"))
    return checks, identity


def check_aik_certificate(certificate: x509.Certificate) -> tuple[list[Check], TPMIdentity | None]:
    checks, identity = check_tpm_certificate_profile("aik_cert", certificate, eku=OID_AIK_CERTIFICATE)
    subject_empty = len(certificate.subject) == 0
    checks.insert(
        1,
        ok("aik_cert.empty_subject")
        if subject_empty
        else fail("aik_cert.empty_subject", f"subject is '{certificate.subject.rfc4514_string()}'"),
    )
    if subject_empty:
        try:
            critical = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
        except x509.ExtensionNotFound:
            critical = False
        if not critical:
            checks.append(fail("aik_cert.san_critical", "SAN must be critical when subject is empty"))
    return checks, identity


def check_ek_certificate(certificate: x509.Certificate) -> tuple[list[Check], TPMIdentity | None]:
    return check_tpm_certificate_profile("ek_cert", certificate, eku=OID_EK_CERTIFICATE)


def same_public_key(
    a: x509.Certificate | rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    b: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
) -> bool:
    key_a = a.public_key() if isinstance(a, x509.Certificate) else a
    if isinstance(key_a, rsa.RSAPublicKey) and isinstance(b, rsa.RSAPublicKey):
        return key_a.public_numbers() == b.public_numbers()
    if isinstance(key_a, ec.EllipticCurvePublicKey) and isinstance(b, ec.EllipticCurvePublicKey):
        return key_a.public_numbers() == b.public_numbers()
    return False
