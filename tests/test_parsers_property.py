"""Property tests: the parsers the server runs on client bytes raise only their documented
format error (EvidenceFormatError for TPM structures, ValueError for certificates), whatever
the bytes."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import struct

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.verifier import (
    EvidenceFormatError,
    check_aik_certificate,
    check_certify,
    check_ek_certificate,
    load_certificate,
    parse_public,
    split_certificate_chain,
    split_claim,
    verify_signature,
    verify_token,
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
    from harness.pki import CertificateAuthority, TPMIdentity, certificate_der

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


# --- AIKCertChain (PKCS#7) and token headers: what the server parses before evaluating --------


def _valid_p7b() -> bytes:
    from harness.pki import CertificateAuthority, certificate_der
    from harness.verifier import certificate_chain_item

    now = dt.datetime.now(dt.UTC)
    root = CertificateAuthority.create("AIK Root", "PKI", now=now)
    regional = root.issue_intermediate("Regional AIK CA", "PKI", now=now)
    return certificate_chain_item([certificate_der(regional.certificate), certificate_der(root.certificate)])


P7B = _valid_p7b()


@SETTINGS
@given(st.one_of(st.binary(max_size=400), st.tuples(st.integers(0, len(P7B) - 1), st.integers(0, 255))))
def test_a_certificate_chain_item_raises_only_its_format_error(mutation: bytes | tuple[int, int]) -> None:
    if isinstance(mutation, tuple):
        index, value = mutation
        blob = P7B[:index] + bytes([value]) + P7B[index + 1 :]
    else:
        blob = mutation
    try:
        chain = split_certificate_chain(blob)
    except EvidenceFormatError as exc:
        assert "AIKCertChain" in str(exc)
        return
    for der in chain:
        # A certificate inside that does not parse fails aik_cert.chain when judged.
        with contextlib.suppress(ValueError):
            load_certificate(der)


def test_a_pkcs7_of_another_content_type_is_a_format_error() -> None:
    try:
        split_certificate_chain(base64.b64decode("MA8GCSqGSIb3DQEHAaACBAA="))
    except EvidenceFormatError as exc:
        assert "signedData" in str(exc)
    else:
        raise AssertionError("PKCS#7 data content was accepted as a certificate chain")


RSA_SIGNER = rsa.generate_private_key(65537, 2048)
TOKEN_KEYS = {
    "rsa": RSA_SIGNER.public_key(),
    "p256": ec.generate_private_key(ec.SECP256R1()).public_key(),
    "p384": ec.generate_private_key(ec.SECP384R1()).public_key(),
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "ES256", "HS256", "none", "PS256", "ES384", ""]) | json_values,
        "kid": st.sampled_from(list(TOKEN_KEYS)) | json_values,
        "typ": json_values,
        "crit": json_values,
    },
)


def _segment(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


@SETTINGS
@given(headers, st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.binary(max_size=300))
def test_a_token_of_any_header_is_judged_never_raises(
    header: dict[str, object], claims: dict[str, object], signature: bytes
) -> None:
    token = ".".join(
        [_segment(json.dumps(header).encode()), _segment(json.dumps(claims).encode()), _segment(signature)]
    )
    verdict = verify_token(token, keys=TOKEN_KEYS, issuer="i", audience="a", now=dt.datetime.now(dt.UTC))
    assert not verdict.valid, "random signature bytes verified"
    assert all(c.detail for c in verdict.checks if not c.passed), "every refusal says why"


@SETTINGS
@given(st.sampled_from(["RS256", "ES256"]), st.sampled_from(list(TOKEN_KEYS)))
def test_a_signed_token_verifies_only_under_the_key_type_its_algorithm_needs(
    algorithm: str, kid: str
) -> None:
    signer = RSA_SIGNER if algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    claims = {"iss": "i", "aud": "a", "exp": int(now.timestamp()) + 600, "iat": int(now.timestamp())}
    token = jwt.encode(claims, signer, algorithm=algorithm, headers={"kid": kid})
    verdict = verify_token(token, keys=TOKEN_KEYS, issuer="i", audience="a", now=now)
    assert verdict.valid == (algorithm == "RS256" and kid == "rsa")
