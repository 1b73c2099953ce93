"""Small facts about X.509 certificates that the client, the verifier and vendor-check share."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature


def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """`issuer`'s subject names `child`'s issuer and its key verifies `child`'s signature."""
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def split_der(data: bytes) -> list[bytes]:
    """DER values stored back to back (as in an EK chain index), without trailing padding.

    Only the outer lengths are read; each certificate is parsed by whoever uses it (the AIK
    CA, vendor-check's chain row), so a damaged or truncated one is named there, not dropped.
    """
    found: list[bytes] = []
    offset = 0
    while offset + 2 <= len(data) and data[offset] == 0x30:  # a SEQUENCE
        first = data[offset + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            count = first & 0x7F
            header = 2 + count
            length = int.from_bytes(data[offset + 2 : offset + header], "big")
        end = min(offset + header + length, len(data))
        found.append(data[offset:end])
        offset = end
    return found
