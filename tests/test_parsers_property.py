"""Property tests: the parsers the server runs on client bytes raise only their documented
format error (EvidenceFormatError for TPM structures, ValueError for certificates), whatever
the bytes."""

from __future__ import annotations

import contextlib
import datetime as dt
import struct

from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.verifier import (
    EvidenceFormatError,
    check_aik_certificate,
    check_certify,
    check_ek_certificate,
    load_certificate,
    parse_public,
    split_claim,
    verify_signature,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = rsa.generate_private_key(65537, 2048).public_key()


def sized(body: bytes) -> bytes:
    """A TPM2B: a big-endian 16-bit size, then the bytes (so parsing gets past the header)."""
    return struct.pack(">H", len(body)) + body


blobs = st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(sized))


@SETTINGS
@given(blobs)
def test_parse_public_raises_only_its_format_error(blob: bytes) -> None:
    try:
        key = parse_public(blob)
    except EvidenceFormatError:
        return
    for use in (key.name, key.crypto_key):
        with contextlib.suppress(EvidenceFormatError):
            use()


@SETTINGS
@given(blobs, st.binary(max_size=64))
def test_claims_raise_only_their_format_error(blob: bytes, nonce: bytes) -> None:
    try:
        claim = split_claim(blob)
    except EvidenceFormatError:
        return
    # The checks report a failed check for bad bytes; they never raise.
    assert verify_signature("sig", KEY, claim.attest, claim.signature).name == "sig"
    try:
        certified = parse_public(sized(b"\x00\x01\x00\x0b" + bytes(8)))
    except EvidenceFormatError:
        return
    check_certify("mdm", claim.attest, certified=certified, nonce=nonce)


@SETTINGS
@given(st.binary(max_size=2000))
def test_certificates_raise_only_value_error(der: bytes) -> None:
    try:
        certificate = load_certificate(der)
    except ValueError:
        return
    check_ek_certificate(certificate)
    check_aik_certificate(certificate)


def test_a_real_certificate_mutated_raises_only_value_error() -> None:
    from harness.pki import CertificateAuthority, certificate_der
    from harness.tcg import TPMIdentity

    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create("Vendor", "Vendor", now=now)
    der = certificate_der(ca.issue_ek_certificate(KEY, TPMIdentity("id:49465800", "M", "id:0001"), now=now))

    @SETTINGS
    @given(st.integers(0, len(der) - 1), st.integers(0, 255))
    def mutate(index: int, value: int) -> None:
        changed = der[:index] + bytes([value]) + der[index + 1 :]
        try:
            certificate = load_certificate(changed)
        except ValueError:
            return
        check_ek_certificate(certificate)

    mutate()
