"""The EK certificate beyond its profile fields: validity, issuer strength, AKI, AIA and the
subjectDirectoryAttributes; and the platform certificate indices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from ..pki import issued_by
from ._certs import describe
from ._model import EK_PROFILE, Row, failed, passed, skipped, warned

AREA = "EK credential"
FIELDS_CLAUSE = f"{EK_PROFILE} §3.2 (certificate fields); RFC 5280 §4.1.2.5"
ISSUER_CLAUSE = f"{EK_PROFILE} §3.2 (signatureAlgorithm); NIST SP 800-57 Part 1 (112-bit strength)"
AKI_CLAUSE = f"{EK_PROFILE} §3.3 (authorityKeyIdentifier); RFC 5280 §4.2.1.1"
AIA_CLAUSE = f"{EK_PROFILE} §3.3 (authorityInfoAccess); Windows fetches EK intermediates through caIssuers"
SDA_CLAUSE = f"{EK_PROFILE} §3.3 (subjectDirectoryAttributes: tpmSpecification, tpmSecurityAssertions)"
PLATFORM_CLAUSE = (
    "TCG Registry of Reserved TPM 2.0 Handles and Localities v1.2 §2.3.1 (platform certificates)"
)
_SERVICE_YEARS = 10
_FOREVER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
OID_SPECIFICATION = "2.23.133.2.16"
OID_SECURITY_ASSERTIONS = "2.23.133.2.18"
PLATFORM_FIRST, PLATFORM_LAST = 0x01C08000, 0x01C0FFFF


def credential_rows(
    prefix: str, certificate: x509.Certificate, issuers: Sequence[x509.Certificate], now: dt.datetime
) -> list[Row]:
    issuer = next((c for c in issuers if issued_by(certificate, c)), None)
    return [
        _validity(f"{prefix}.validity", certificate, now),
        _issuer(f"{prefix}.issuer_algorithms", certificate, issuer),
        _aki(f"{prefix}.aki", certificate, issuer),
        _aia(f"{prefix}.aia", certificate),
        _sda(f"{prefix}.subject_directory_attributes", certificate),
    ]


def _validity(row_id: str, certificate: x509.Certificate, now: dt.datetime) -> Row:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    seen = f"{start:%Y-%m-%d} to {end:%Y-%m-%d %H:%M:%S}"
    if not start <= now <= end:
        return failed(row_id, AREA, f"{seen}: not valid at {now:%Y-%m-%d}", FIELDS_CLAUSE)
    if end == _FOREVER or end - start >= dt.timedelta(days=365 * _SERVICE_YEARS):
        return passed(row_id, AREA, f"{seen}: valid now and for a device's service life", FIELDS_CLAUSE)
    return warned(row_id, AREA, f"{seen}: shorter than {_SERVICE_YEARS} years", FIELDS_CLAUSE)


def _key_strength(key: object) -> tuple[str, bool]:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}", key.key_size >= 2048
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECC {key.curve.name}", key.curve.key_size >= 256
    return type(key).__name__, False


def _issuer(row_id: str, certificate: x509.Certificate, issuer: x509.Certificate | None) -> Row:
    digest = certificate.signature_hash_algorithm
    hash_name = digest.name if digest else "none"
    strong_hash = digest is not None and digest.digest_size >= 32
    if issuer is None:
        return skipped(
            row_id,
            AREA,
            f"signed with {hash_name}; the issuer's certificate is not at hand (see the chain row)",
            ISSUER_CLAUSE,
        )
    key_name, strong_key = _key_strength(issuer.public_key())
    seen = f"signed with {hash_name} by {describe(issuer)}, an {key_name} key"
    if strong_hash and strong_key:
        return passed(row_id, AREA, seen, ISSUER_CLAUSE)
    return failed(row_id, AREA, f"{seen}: below SHA-256 / RSA 2048 / P-256", ISSUER_CLAUSE)


def _aki(row_id: str, certificate: x509.Certificate, issuer: x509.Certificate | None) -> Row:
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return failed(row_id, AREA, "no authorityKeyIdentifier", AKI_CLAUSE)
    if aki.key_identifier is None:
        return failed(row_id, AREA, "authorityKeyIdentifier without a keyIdentifier", AKI_CLAUSE)
    seen = f"keyIdentifier {aki.key_identifier.hex()}"
    if issuer is None:
        return passed(row_id, AREA, f"{seen} (issuer not at hand to compare)", AKI_CLAUSE)
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return warned(row_id, AREA, f"{seen}; the issuer has no subjectKeyIdentifier", AKI_CLAUSE)
    if ski == aki.key_identifier:
        return passed(row_id, AREA, f"{seen} equals the issuer's subjectKeyIdentifier", AKI_CLAUSE)
    return failed(row_id, AREA, f"{seen} differs from the issuer's {ski.hex()}", AKI_CLAUSE)


def _aia(row_id: str, certificate: x509.Certificate) -> Row:
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return warned(
            row_id,
            AREA,
            "no authorityInfoAccess: Windows cannot fetch the intermediate unless NV or its store holds it",
            AIA_CLAUSE,
        )
    uris = [
        d.access_location.value
        for d in access
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]
    if uris:
        return passed(row_id, AREA, f"caIssuers {', '.join(uris)}", AIA_CLAUSE)
    return warned(row_id, AREA, "authorityInfoAccess without a caIssuers URI", AIA_CLAUSE)


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER value at `offset`."""
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, offset + 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    start = offset + 2 + count
    return tag, start, start + length


def _oid(contents: bytes) -> str:
    parts = [contents[0] // 40, contents[0] % 40]
    value = 0
    for byte in contents[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def attribute_types(extension_value: bytes) -> dict[str, bytes]:
    """SubjectDirectoryAttributes ::= SEQUENCE OF Attribute: each type and its values (DER)."""
    found: dict[str, bytes] = {}
    _, position, end = _tlv(extension_value, 0)
    while position < end:
        _, start, stop = _tlv(extension_value, position)
        _, oid_start, oid_end = _tlv(extension_value, start)
        found[_oid(extension_value[oid_start:oid_end])] = extension_value[oid_end:stop]
        position = stop
    return found


def _specification(values: bytes) -> str:
    """TPMSpecification ::= SEQUENCE { family UTF8String, level INTEGER, revision INTEGER }."""
    _, position, _ = _tlv(values, 0)  # the SET
    _, position, end = _tlv(values, position)  # the SEQUENCE
    fields = []
    while position < end:
        tag, start, stop = _tlv(values, position)
        body = values[start:stop]
        fields.append(body.decode("utf-8", "replace") if tag == 0x0C else str(int.from_bytes(body, "big")))
        position = stop
    return f"family {fields[0]}, level {fields[1]}, revision {fields[2]}" if len(fields) == 3 else "malformed"


def _sda(row_id: str, certificate: x509.Certificate) -> Row:
    try:
        extension = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES)
    except x509.ExtensionNotFound:
        return warned(
            row_id, AREA, "no subjectDirectoryAttributes (TPM specification, security assertions)", SDA_CLAUSE
        )
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
    try:
        attributes = attribute_types(raw)
        spec = _specification(attributes[OID_SPECIFICATION]) if OID_SPECIFICATION in attributes else ""
    except (IndexError, ValueError):
        return failed(row_id, AREA, "subjectDirectoryAttributes is not valid DER", SDA_CLAUSE)
    if not spec:
        return failed(
            row_id, AREA, f"no tpmSpecification ({OID_SPECIFICATION}) among {sorted(attributes)}", SDA_CLAUSE
        )
    assertions = "with" if OID_SECURITY_ASSERTIONS in attributes else "WITHOUT"
    seen = f"tpmSpecification {spec}; {assertions} tpmSecurityAssertions"
    if OID_SECURITY_ASSERTIONS in attributes:
        return passed(row_id, AREA, seen, SDA_CLAUSE)
    return warned(row_id, AREA, seen, SDA_CLAUSE)


def platform_rows(defined: Sequence[int], read: dict[int, bytes]) -> list[Row]:
    """The platform certificate indices: what is there and whether it parses as DER."""
    present = sorted(h for h in defined if PLATFORM_FIRST <= h <= PLATFORM_LAST)
    if not present:
        return [
            skipped(
                "platform.certificate",
                "Platform certificate",
                "no index defined in 0x01C08000-0x01C0FFFF: the platform ships no platform certificate in NV",
                PLATFORM_CLAUSE,
            )
        ]
    rows = []
    for index in present:
        data = read.get(index, b"")
        row_id = f"platform.nv.0x{index:08X}"
        if not data:
            rows.append(
                failed(row_id, "Platform certificate", "index defined but unreadable", PLATFORM_CLAUSE)
            )
            continue
        try:
            certificate = x509.load_der_x509_certificate(data)
            seen = f"X.509 certificate {describe(certificate)} ({len(data)} bytes)"
        except ValueError:
            # A TCG platform certificate is an attribute certificate, which this library does not parse.
            seen = f"{len(data)} bytes, DER SEQUENCE: an attribute certificate" if data[:1] == b"\x30" else ""
        if seen:
            rows.append(passed(row_id, "Platform certificate", seen, PLATFORM_CLAUSE))
        else:
            rows.append(failed(row_id, "Platform certificate", "not DER", PLATFORM_CLAUSE))
    return rows
