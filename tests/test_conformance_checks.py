"""vendor-check's pure checks: ROCA fingerprint, NV attributes, certificate profile and chain."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tpm2_pytss import TPMA_NV

from harness.conformance import FINGERPRINT_PRIMES, roca_fingerprint
from harness.conformance._certs import chain_row, profile_rows
from harness.conformance._identity import TPMProperties, advisory_row, identity_rows
from harness.conformance._nv import check_nv_attributes
from harness.pki import OID_AIK_CERTIFICATE, CertificateAuthority, TPMIdentity, tpm_san

NOW = dt.datetime.now(dt.UTC)
IDENTITY = TPMIdentity("id:49465800", "SLB9672", "id:001A000D")
PROFILE_ATTRIBUTES = (
    TPMA_NV.PPWRITE
    | TPMA_NV.WRITEDEFINE
    | TPMA_NV.PPREAD
    | TPMA_NV.OWNERREAD
    | TPMA_NV.AUTHREAD
    | TPMA_NV.NO_DA
    | TPMA_NV.PLATFORMCREATE
    | TPMA_NV.WRITTEN
)


def _roca_prime(a: int, k: int) -> int:
    # RSALib's construction: p = k*M + (65537^a mod M), M the primorial of the fingerprint primes.
    primorial = math.prod(FINGERPRINT_PRIMES)
    return k * primorial + pow(65537, a, primorial)


def test_roca_fingerprint_found_on_a_modulus_with_rsalib_structure() -> None:
    modulus = _roca_prime(1234567, 2**900 + 12345) * _roca_prime(7654321, 2**901 + 999)
    assert roca_fingerprint(modulus)


def test_roca_fingerprint_absent_from_a_clean_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not roca_fingerprint(key.public_key().public_numbers().n)


def test_roca_fingerprint_absent_when_one_residue_leaves_the_subgroup() -> None:
    # mod 11, 65537 = 10 generates {1, 10}; a factor of 2 (mod 11) puts the modulus outside.
    modulus = _roca_prime(5, 2**700 + 1) * _roca_prime(9, 2**700 + 3)
    other = next(m for m in range(modulus, modulus + 10**6) if m % 11 == 2)
    assert not roca_fingerprint(other)


def test_roca_rejects_a_non_modulus() -> None:
    with pytest.raises(ValueError):
        roca_fingerprint(1)


def test_profile_nv_attributes_pass() -> None:
    row = check_nv_attributes("ek.nv.0x01C00002", "NV", int(PROFILE_ATTRIBUTES), "clause", strict=True)
    assert row.status == "pass"


def test_owner_writable_index_fails_and_names_the_attribute() -> None:
    attributes = int(PROFILE_ATTRIBUTES | TPMA_NV.OWNERWRITE) & ~int(TPMA_NV.NO_DA)
    row = check_nv_attributes("ek.nv.0x01C00002", "NV", attributes, "clause", strict=True)
    assert row.status == "fail"
    assert "OWNERWRITE" in row.evidence and "NO_DA" in row.evidence


def test_chain_index_attributes_only_warn() -> None:
    row = check_nv_attributes("ek.nv.0x01C00100", "NV", int(TPMA_NV.OWNERREAD), "clause", strict=False)
    assert row.status == "warning"


def _ek_cert(ca: CertificateAuthority, **changes: object) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    if not changes:
        return ca.issue_ek_certificate(key, IDENTITY, now=NOW)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.certificate.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(tpm_san(IDENTITY), critical=bool(changes.get("san_critical", True)))
        .add_extension(x509.ExtendedKeyUsage([changes.get("eku", OID_AIK_CERTIFICATE)]), critical=False)  # type: ignore[list-item]
    )
    return builder.sign(ca.key, hashes.SHA256())


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("Vendor EK Root", "Vendor", now=NOW)


def _rows(cert: x509.Certificate) -> dict[str, str]:
    rows = profile_rows("ek", cert, tpm_manufacturer="id:49465800", tpm_firmware="id:001A000D")
    return {r.id: r.status for r in rows}


def test_profile_of_a_good_ek_certificate_passes(ca: CertificateAuthority) -> None:
    assert set(_rows(_ek_cert(ca)).values()) == {"pass"}


def test_wrong_eku_fails_only_the_eku_row(ca: CertificateAuthority) -> None:
    statuses = _rows(_ek_cert(ca, eku=OID_AIK_CERTIFICATE))
    assert statuses["ek.profile.eku"] == "fail"
    assert statuses["ek.profile.san"] == "pass"


def test_non_critical_san_with_empty_subject_fails(ca: CertificateAuthority) -> None:
    statuses = _rows(_ek_cert(ca, san_critical=False))
    assert statuses["ek.profile.san"] == "fail"


def test_san_naming_another_manufacturer_fails(ca: CertificateAuthority) -> None:
    rows = profile_rows("ek", _ek_cert(ca), tpm_manufacturer="id:4E544300", tpm_firmware="id:001A000D")
    san = next(r for r in rows if r.id == "ek.profile.san")
    assert san.status == "fail" and "id:4E544300" in san.evidence


def test_chain_passes_through_an_intermediate_from_nv(ca: CertificateAuthority) -> None:
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Vendor EK Intermediate")])
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(intermediate_key.public_key())
        .serial_number(77)
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    issuer = CertificateAuthority(key=intermediate_key, certificate=intermediate)
    leaf = _ek_cert(issuer)
    row = chain_row(
        "ek.chain", leaf, anchors=[ca.certificate], intermediates=[intermediate], now=NOW, clause=""
    )
    assert row.status == "pass" and "Vendor EK Intermediate" in row.evidence
    missing = chain_row("ek.chain", leaf, anchors=[ca.certificate], intermediates=[], now=NOW, clause="")
    assert missing.status == "fail" and f"serial 0x{leaf.serial_number:X}" in missing.evidence


def _props(manufacturer: int, firmware: int) -> TPMProperties:
    return TPMProperties(0x322E3000, 0, 159, 1, 2023, manufacturer, (0, 0, 0, 0), firmware, 0)


def test_unlisted_vendor_id_fails_the_registry_row() -> None:
    rows = {r.id: r for r in identity_rows(_props(0x5A5A5A00, 0x00070002))}
    assert rows["tpm.manufacturer.registry"].status == "fail"
    assert "id:5A5A5A00" in rows["tpm.manufacturer.registry"].evidence
    assert rows["tpm.vendor_strings"].status == "warning"


def test_firmware_is_judged_by_the_published_ranges() -> None:
    from harness.trust import default_advisories

    shipped = default_advisories()
    # ADV170012: Infineon 4.40-4.42 is affected by ROCA, 4.43 is the fixed build, 7.40 <= 7.61 is affected.
    affected = advisory_row(_props(0x49465800, 0x00040029), shipped, "shipped")
    assert affected.status == "fail"
    assert "ROCA" in affected.evidence
    assert advisory_row(_props(0x49465800, 0x0004002B), shipped, "shipped").status == "pass"
    assert advisory_row(_props(0x49465800, 0x00070028), shipped, "shipped").status == "fail"
    assert advisory_row(_props(0x49465800, 0x001A000D), shipped, "shipped").status == "pass"
