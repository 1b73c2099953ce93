"""An EK certificate against the EK Credential Profile and the vendor's CAs (pure checks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..pki import OID_EK_CERTIFICATE, TPMIdentity, is_ca, issued_by, parse_tpm_san, valid_at, vendor_hex
from ._model import EK_PROFILE, Row, failed, passed, warned

AREA = "EK certificate"
_MAX_SERIAL_OCTETS = 20  # RFC 5280 §4.1.2.2, which the profile's §3.2 adopts
_MAX_DEPTH = 8


def describe(certificate: x509.Certificate) -> str:
    """How a report names a certificate: subject (or that it is empty) and serial."""
    subject = certificate.subject.rfc4514_string() or "(empty subject)"
    return f"'{subject}' serial 0x{certificate.serial_number:X}"


def _serial_octets(serial: int) -> int:
    # DER INTEGER: a leading zero octet when the top bit is set.
    return serial.bit_length() // 8 + 1


def profile_rows(
    prefix: str, certificate: x509.Certificate, *, tpm_manufacturer: str, tpm_firmware: str
) -> list[Row]:
    """Version, serial, SAN, EKU, key usage and CA flag of one EK certificate.

    tpm_manufacturer and tpm_firmware are what GetCapability reported ('id:49424D00').
    """
    rows: list[Row] = []
    name = describe(certificate)
    clause32 = f"{EK_PROFILE} §3.2 (certificate fields)"
    clause33 = f"{EK_PROFILE} §3.3 (certificate extensions)"
    if certificate.version == x509.Version.v3:
        rows.append(passed(f"{prefix}.profile.version", AREA, f"X.509 v3: {name}", clause32))
    else:
        rows.append(failed(f"{prefix}.profile.version", AREA, f"{name} is not X.509 v3", clause32))
    octets = _serial_octets(certificate.serial_number)
    serial_evidence = f"serial 0x{certificate.serial_number:X} is {octets} octets"
    if certificate.serial_number > 0 and octets <= _MAX_SERIAL_OCTETS:
        rows.append(passed(f"{prefix}.profile.serial", AREA, serial_evidence, clause32))
    else:
        rows.append(
            failed(f"{prefix}.profile.serial", AREA, f"{serial_evidence}; at most 20, positive", clause32)
        )
    rows.append(_san_row(f"{prefix}.profile.san", certificate, tpm_manufacturer, tpm_firmware, clause33))
    rows.append(_eku_row(f"{prefix}.profile.eku", certificate, clause33))
    rows.append(_key_usage_row(f"{prefix}.profile.key_usage", certificate, clause33))
    rows.append(_ca_row(f"{prefix}.profile.not_ca", certificate, clause33))
    return rows


def _san_row(
    row_id: str, certificate: x509.Certificate, manufacturer: str, firmware: str, clause: str
) -> Row:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return failed(row_id, AREA, "no subjectAltName: the TPM's manufacturer, model and version", clause)
    identity = parse_tpm_san(certificate)
    if identity is None:
        return failed(row_id, AREA, "subjectAltName has no tcg-at-tpmManufacturer (2.23.133.2.1)", clause)
    seen = f"SAN manufacturer {identity.manufacturer}, model '{identity.model}', version {identity.version}"
    if len(certificate.subject) == 0 and not extension.critical:
        return failed(row_id, AREA, f"subject is empty and the SAN is not critical; {seen}", clause)
    if not identity.model or not identity.version:
        return failed(row_id, AREA, f"tpmModel or tpmVersion missing; {seen}", clause)
    if _same_vendor(identity, manufacturer) is not True:
        return failed(row_id, AREA, f"{seen}, but GetCapability reports {manufacturer}", clause)
    if identity.version.upper() != firmware.upper():
        return warned(row_id, AREA, f"{seen}; GetCapability reports firmware {firmware}", clause)
    return passed(row_id, AREA, f"{seen}, as GetCapability reports", clause)


def _same_vendor(identity: TPMIdentity, manufacturer: str) -> bool:
    try:
        return identity.vendor_hex == vendor_hex(manufacturer)
    except ValueError:
        return False


def _eku_row(row_id: str, certificate: x509.Certificate, clause: str) -> Row:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return failed(row_id, AREA, "no extendedKeyUsage; the profile requires 2.23.133.8.1", clause)
    seen = ", ".join(oid.dotted_string for oid in usages)
    if OID_EK_CERTIFICATE in usages:
        return passed(row_id, AREA, f"EKU {seen}", clause)
    return failed(row_id, AREA, f"EKU {seen} lacks tcg-kp-EKCertificate 2.23.133.8.1", clause)


def _key_usage_row(row_id: str, certificate: x509.Certificate, clause: str) -> Row:
    key = certificate.public_key()
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return failed(row_id, AREA, "no keyUsage extension", clause)
    if isinstance(key, rsa.RSAPublicKey):
        ok, wanted = usage.key_encipherment, "keyEncipherment (RSA EK)"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        ok, wanted = usage.key_agreement, "keyAgreement (ECC EK)"
    else:
        return failed(row_id, AREA, f"key type {type(key).__name__} is neither RSA nor ECC", clause)
    if ok:
        return passed(row_id, AREA, f"keyUsage has {wanted}", clause)
    return failed(row_id, AREA, f"keyUsage lacks {wanted}", clause)


def _ca_row(row_id: str, certificate: x509.Certificate, clause: str) -> Row:
    if is_ca(certificate):
        return failed(row_id, AREA, "basicConstraints says CA=true", clause)
    return passed(row_id, AREA, "not a CA", clause)


def chain_row(
    row_id: str,
    leaf: x509.Certificate,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    now: dt.datetime,
    clause: str,
) -> Row:
    """Walk issuer links from the EK certificate to one of the vendor's CAs.

    Every certificate given with --ek-ca is a trust anchor, self-signed or not; the
    intermediates come from the TPM's chain indices. A failure names the certificate
    whose issuer could not be found.
    """
    if not anchors:
        return failed(
            row_id,
            AREA,
            f"{describe(leaf)} issued by '{leaf.issuer.rfc4514_string()}': no --ek-ca given",
            clause,
        )
    path = [leaf]
    current = leaf
    for _ in range(_MAX_DEPTH):
        if not valid_at(current, now):
            return failed(
                row_id, AREA, f"{describe(current)} is not valid at {now:%Y-%m-%d %H:%M} UTC", clause
            )
        anchor = next((a for a in anchors if issued_by(current, a)), None)
        if anchor is not None:
            if not valid_at(anchor, now):
                return failed(row_id, AREA, f"CA {describe(anchor)} is not valid now", clause)
            steps = " -> ".join(describe(c) for c in [*path, anchor])
            return passed(row_id, AREA, f"chains: {steps}", clause)
        parent = next((c for c in intermediates if issued_by(current, c) and is_ca(c)), None)
        if parent is None:
            return failed(
                row_id,
                AREA,
                f"{describe(current)}: issuer '{current.issuer.rfc4514_string()}' is neither a given CA "
                "nor an intermediate in the chain indices (or its signature does not verify)",
                clause,
            )
        path.append(parent)
        current = parent
    return failed(row_id, AREA, f"chain from {describe(leaf)} is longer than {_MAX_DEPTH}", clause)
