"""Checks over DER certificates: chains to trust anchors and the TCG profiles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ..pki import (
    OID_AIK_CERTIFICATE,
    OID_EK_CERTIFICATE,
    TPMIdentity,
    is_ca,
    issued_by,
    parse_tpm_san,
    valid_at,
)
from ._checks import Check, fail, ok
from ._tpm import key_strength


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate completely, so that later checks cannot trip on its parts.

    cryptography parses names, extensions and the key lazily; a certificate whose
    parts are malformed is refused here, as a ValueError, rather than deep in a check.
    """
    return load_certificate_and_key(der)[0]


def load_certificate_and_key(der: bytes) -> tuple[x509.Certificate, CertificatePublicKeyTypes]:
    """load_certificate, and the public key it parsed (cryptography builds a new one per call)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        _ = (certificate.version, certificate.subject, certificate.issuer, certificate.extensions)
        key = certificate.public_key()
    except Exception as exc:  # cryptography raises several types for malformed parts
        raise ValueError(f"not a well-formed DER certificate: {exc}") from exc
    return certificate, key


def verify_chain(
    name: str,
    leaf: x509.Certificate,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    now: dt.datetime,
    max_depth: int = 4,
) -> Check:
    """Build a path from leaf through `intermediates` to one of `roots`.

    Every certificate on the path must be valid at `now` and signed by the next; every
    intermediate must be a CA with keyCertSign within its path length. A failure names
    the certificate by subject and serial. Where several intermediates carry the issuer's
    name, each is tried, and the first failure is reported if none leads to a root.
    """
    return _extend(name, [leaf], roots, intermediates, now, max_depth)


def _extend(
    name: str,
    path: list[x509.Certificate],
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    now: dt.datetime,
    max_depth: int,
) -> Check:
    current = path[-1]
    if not valid_at(current, now):
        role = "certificate" if len(path) == 1 else "intermediate"
        return fail(name, f"{role} {describe_certificate(current)} is not valid at {now:%Y-%m-%d %H:%M}")
    for root in roots:
        if issued_by(current, root):
            problem = _anchor_problem(root, path, now)
            if problem:
                return fail(name, problem)
            via = "".join(f" via {describe_certificate(c)}" for c in path[1:])
            return ok(name, f"chains{via} to {describe_certificate(root)}")
    candidates = [c for c in intermediates if c.subject == current.issuer and all(c != p for p in path)]
    if not candidates:
        return fail(
            name,
            f"issuer '{current.issuer.rfc4514_string()}'{_authority_key(current)} of "
            f"{describe_certificate(current)} is not a trusted root, and no intermediate "
            "certificate of that name was given",
        )
    if len(path) > max_depth:
        return fail(name, f"chain is longer than {max_depth} intermediates")
    first_failure: Check | None = None
    for candidate in candidates:
        problem = _intermediate_problem(candidate, current, path)
        outcome = (
            fail(name, problem)
            if problem
            else _extend(name, [*path, candidate], roots, intermediates, now, max_depth)
        )
        if outcome.passed:
            return outcome
        first_failure = first_failure or outcome
    assert first_failure is not None
    return first_failure


def _intermediate_problem(
    candidate: x509.Certificate, child: x509.Certificate, path: list[x509.Certificate]
) -> str:
    label = f"intermediate {describe_certificate(candidate)}"
    if not issued_by(child, candidate):
        return f"{label} did not sign {describe_certificate(child)}"
    return _ca_problem(candidate, label, cas_below=len(path) - 1)


def _anchor_problem(root: x509.Certificate, path: list[x509.Certificate], now: dt.datetime) -> str:
    label = f"trust anchor {describe_certificate(root)}"
    if not valid_at(root, now):
        return f"{label} is not valid at {now:%Y-%m-%d %H:%M}"
    return _ca_problem(root, label, cas_below=len(path) - 1, need_key_usage=False)


def _ca_problem(
    certificate: x509.Certificate, label: str, *, cas_below: int, need_key_usage: bool = True
) -> str:
    """Why a certificate may not issue the path below it ('' when it may)."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return f"{label} is not a CA (no basicConstraints)"
    if not constraints.ca:
        return f"{label} is not a CA (basicConstraints CA=false)"
    if constraints.path_length is not None and cas_below > constraints.path_length:
        return (
            f"{label} allows {constraints.path_length} CA certificate(s) below it, the chain has {cas_below}"
        )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        # A trust anchor is trusted as configured; an intermediate must say it signs certificates.
        return f"{label} has no keyUsage, so no keyCertSign" if need_key_usage else ""
    if not usage.key_cert_sign:
        return f"{label} lacks keyCertSign in keyUsage"
    return ""


def _authority_key(certificate: x509.Certificate) -> str:
    # The issuer's serial is unknown when the issuer is missing; its key id names it exactly.
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return ""
    return f" (key id {aki.key_identifier.hex()})" if aki.key_identifier else ""


@lru_cache(maxsize=256)  # trust anchors and intermediates are described on every evaluation
def describe_certificate(certificate: x509.Certificate) -> str:
    """A certificate by subject and serial: an AIK certificate's subject is empty."""
    subject = certificate.subject.rfc4514_string()
    named = f"'{subject}'" if subject else "(empty subject)"
    return f"{named} serial {certificate.serial_number:#x}"


def _has_eku(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    try:
        return oid in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def check_tpm_certificate_profile(
    prefix: str,
    certificate: x509.Certificate,
    *,
    eku: x509.ObjectIdentifier,
    key: CertificatePublicKeyTypes | None = None,
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
        fail(f"{prefix}.not_ca", "certificate says CA=true") if is_ca(certificate) else ok(f"{prefix}.not_ca")
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
    key = certificate.public_key() if key is None else key
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        checks.append(key_strength(f"{prefix}.key_strength", key))
    else:
        checks.append(fail(f"{prefix}.key_strength", "key is neither RSA nor ECC"))
    return checks, identity


def check_aik_certificate(
    certificate: x509.Certificate, key: CertificatePublicKeyTypes | None = None
) -> tuple[list[Check], TPMIdentity | None]:
    checks, identity = check_tpm_certificate_profile(
        "aik_cert", certificate, eku=OID_AIK_CERTIFICATE, key=key
    )
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
