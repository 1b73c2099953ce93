"""Checks over the TPM's own structures, given as marshalled bytes."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tpm2_pytss import (
    TPM2_ALG,
    TPM2_ECC,
    TPM2_ST,
    TPM2B_PUBLIC,
    TPMA_OBJECT,
    TPMS_ATTEST,
)

from ..errors import EvidenceFormatError as EvidenceFormatError
from ._checks import Check, fail, ok
from ._wire import (
    ATTEST_CERTIFY,
    Attestation,
    WireError,
    read_attest_header,
    read_certify_body,
    read_public_area,
    read_signature,
)

TPM_GENERATED_VALUE = 0xFF544347
MIN_RSA_BITS = 2048
MIN_ECC_BITS = 256

_HASHES: dict[int, tuple[str, hashes.HashAlgorithm]] = {
    int(TPM2_ALG.SHA1): ("sha1", hashes.SHA1()),
    int(TPM2_ALG.SHA256): ("sha256", hashes.SHA256()),
    int(TPM2_ALG.SHA384): ("sha384", hashes.SHA384()),
    int(TPM2_ALG.SHA512): ("sha512", hashes.SHA512()),
}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


_CURVES: dict[int, ec.EllipticCurve] = {
    int(TPM2_ECC.NIST_P256): ec.SECP256R1(),
    int(TPM2_ECC.NIST_P384): ec.SECP384R1(),
    int(TPM2_ECC.NIST_P521): ec.SECP521R1(),
}


@dataclass(frozen=True)
class TPMKey:
    """A TPM2B_PUBLIC as sent, with the fields the checks read, each read once at parsing."""

    blob: bytes
    area: bytes  # the marshalled TPMT_PUBLIC inside
    type: int = 0
    name_alg: int = 0
    attributes: int = 0
    symmetric: int = 0  # TPMT_SYM_DEF_OBJECT.algorithm (TPM_ALG_NULL for a signing key)
    scheme: int = 0  # the key's signing or encryption scheme (TPM_ALG_NULL: any)
    exponent: int = 0  # RSA
    modulus: bytes = b""  # RSA
    curve: int = 0  # ECC
    point: tuple[bytes, bytes] = (b"", b"")  # ECC

    @cached_property
    def public(self) -> TPM2B_PUBLIC:
        """The tpm2-pytss structure, for the TPM operations that take one (make_credential)."""
        try:
            public, _ = TPM2B_PUBLIC.unmarshal(self.blob)
        except Exception as exc:  # tpm2-pytss raises several types
            raise EvidenceFormatError(f"TPM2B_PUBLIC does not parse: {exc}") from exc
        return public

    def name(self) -> bytes:
        """nameAlg || H_nameAlg(TPMT_PUBLIC), computed from the bytes, not asked of a TPM."""
        algorithm = _HASHES.get(self.name_alg)
        if algorithm is None:
            raise EvidenceFormatError(f"unsupported name algorithm 0x{self.name_alg:04x}")
        return struct.pack(">H", self.name_alg) + hashlib.new(algorithm[0], self.area).digest()

    def crypto_key(self) -> PublicKey:
        """The public key, built from its numbers (an RSA exponent of 0 means 65537)."""
        try:
            if self.type == int(TPM2_ALG.RSA):
                return rsa.RSAPublicNumbers(
                    self.exponent or 65537, int.from_bytes(self.modulus, "big")
                ).public_key()
            if self.type == int(TPM2_ALG.ECC):
                curve = _CURVES.get(self.curve)
                if curve is None:
                    raise EvidenceFormatError(f"ECC curve 0x{self.curve:04x} is not accepted")
                x, y = (int.from_bytes(c, "big") for c in self.point)
                return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        except ValueError as exc:  # not a valid RSA modulus or curve point
            raise EvidenceFormatError(f"key cannot be converted: {exc}") from exc
        raise EvidenceFormatError("key is neither RSA nor ECC")


def parse_public(blob: bytes) -> TPMKey:
    """Parse a marshalled TPM2B_PUBLIC of an RSA or ECC key; every byte must belong to it."""
    if len(blob) < 4:
        raise EvidenceFormatError("TPM2B_PUBLIC is shorter than its header")
    (size,) = struct.unpack(">H", blob[:2])
    if size + 2 != len(blob):
        raise EvidenceFormatError(f"TPM2B_PUBLIC size field says {size}, blob holds {len(blob) - 2}")
    try:
        area = read_public_area(blob[2:])
    except WireError as exc:
        raise EvidenceFormatError(f"TPM2B_PUBLIC does not parse: {exc}") from exc
    return TPMKey(
        blob=blob,
        area=blob[2:],
        type=area.type,
        name_alg=area.name_alg,
        attributes=area.attributes,
        symmetric=area.symmetric,
        scheme=area.scheme,
        exponent=area.exponent,
        modulus=area.modulus,
        curve=area.curve,
        point=area.point,
    )


@dataclass(frozen=True)
class AttestationClaim:
    """TPM2B_ATTEST || TPMT_SIGNATURE, as the client sends them back to back."""

    attest: bytes  # the marshalled TPMS_ATTEST (what the AIK signed)
    signature: bytes  # the marshalled TPMT_SIGNATURE


def split_claim(blob: bytes) -> AttestationClaim:
    if len(blob) < 2:
        raise EvidenceFormatError("claim does not start with a TPM2B_ATTEST: it is shorter than a size")
    (size,) = struct.unpack(">H", blob[:2])
    if len(blob) < 2 + size:
        raise EvidenceFormatError(f"claim does not start with a TPM2B_ATTEST: its size says {size}")
    attest = blob[2 : 2 + size]
    signature = blob[2 + size :]
    if not attest or not signature:
        raise EvidenceFormatError("claim lacks the attestation or the signature")
    return AttestationClaim(attest=attest, signature=signature)


def parse_attest(attest: bytes) -> Attestation:
    """The fields the checks read of a TPMS_ATTEST; every byte must belong to it."""
    try:
        header, reader = read_attest_header(attest)
        if header.type == ATTEST_CERTIFY:
            return read_certify_body(header, reader)
    except WireError as exc:
        raise EvidenceFormatError(f"TPMS_ATTEST does not parse: {exc}") from exc
    # Another type fails the type check; its body is still parsed whole, by tpm2-pytss.
    try:
        _, consumed = TPMS_ATTEST.unmarshal(attest)
    except Exception as exc:
        raise EvidenceFormatError(f"TPMS_ATTEST does not parse: {exc}") from exc
    if consumed != len(attest):
        raise EvidenceFormatError("TPMS_ATTEST has trailing bytes")
    return header


def attest_nonce(attest: bytes) -> bytes | None:
    """The extraData (qualifying data) of an attestation, or None when it does not parse."""
    try:
        return parse_attest(attest).extra_data
    except EvidenceFormatError:
        return None


def check_certify(prefix: str, attest: bytes, *, certified: TPMKey, nonce: bytes) -> list[Check]:
    """Magic, type, qualifying data and certified name of a TPM2_Certify attestation."""
    try:
        parsed = parse_attest(attest)
    except EvidenceFormatError as exc:
        return [fail(f"{prefix}.attest_parses", str(exc))]
    checks = [ok(f"{prefix}.attest_parses")]
    magic = parsed.magic
    checks.append(
        ok(f"{prefix}.magic")
        if magic == TPM_GENERATED_VALUE
        else fail(f"{prefix}.magic", f"magic 0x{magic:08x} is not TPM_GENERATED_VALUE")
    )
    kind = parsed.type
    checks.append(
        ok(f"{prefix}.type")
        if kind == int(TPM2_ST.ATTEST_CERTIFY)
        else fail(f"{prefix}.type", f"attest type 0x{kind:04x} is not TPM_ST_ATTEST_CERTIFY")
    )
    extra = parsed.extra_data
    checks.append(
        ok(f"{prefix}.nonce_bound")
        if extra == nonce
        else fail(f"{prefix}.nonce_bound", "qualifying data is not the server's nonce")
    )
    if parsed.certified_name is not None:
        attested = parsed.certified_name
        try:
            expected = certified.name()
        except EvidenceFormatError as exc:
            checks.append(fail(f"{prefix}.name", str(exc)))
        else:
            checks.append(
                ok(f"{prefix}.name")
                if attested == expected
                else fail(f"{prefix}.name", "attested name is not nameAlg||H(pubArea) of the key sent")
            )
    return checks


def verify_signature(name: str, key: PublicKey, signed: bytes, signature: bytes) -> Check:
    """Verify a marshalled TPMT_SIGNATURE over `signed` with the signer's public key."""
    try:
        parsed = read_signature(signature)
    except WireError as exc:
        return fail(name, f"TPMT_SIGNATURE does not parse: {exc}")
    digest = _HASHES.get(parsed.hash)
    try:
        if parsed.algorithm in (int(TPM2_ALG.RSASSA), int(TPM2_ALG.RSAPSS)):
            if digest is None or not isinstance(key, rsa.RSAPublicKey):
                return fail(name, "signature scheme does not fit the signing key")
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if parsed.algorithm == int(TPM2_ALG.RSASSA)
                else padding.PSS(mgf=padding.MGF1(digest[1]), salt_length=padding.PSS.AUTO)
            )
            key.verify(parsed.rsa, signed, pad, digest[1])
        elif parsed.algorithm == int(TPM2_ALG.ECDSA):
            if digest is None or not isinstance(key, ec.EllipticCurvePublicKey):
                return fail(name, "signature scheme does not fit the signing key")
            r, s = (int.from_bytes(part, "big") for part in parsed.ecdsa)
            key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(digest[1]))
        else:
            return fail(name, f"signature algorithm 0x{parsed.algorithm:04x} is not accepted")
    except InvalidSignature:
        return fail(name, "signature does not verify with the AIK")
    return ok(name)


def key_strength(name: str, key: PublicKey) -> Check:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return fail(name, f"RSA key of {key.key_size} bits, under {MIN_RSA_BITS}")
    elif key.curve.key_size < MIN_ECC_BITS:
        return fail(name, f"ECC key of {key.curve.key_size} bits, under {MIN_ECC_BITS}")
    return ok(name)


_AIK_REQUIRED = (
    TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.RESTRICTED
    | TPMA_OBJECT.SIGN_ENCRYPT
)


def check_aik_attributes(name: str, key: TPMKey) -> Check:
    """An AIK is a restricted signing key that never left, and was born in, its TPM."""
    attributes = key.attributes
    missing = int(_AIK_REQUIRED) & ~attributes
    if missing:
        return fail(name, f"AIK lacks {TPMA_OBJECT(missing)!s}")
    if attributes & int(TPMA_OBJECT.DECRYPT):
        return fail(name, "AIK is also a decryption key")
    return ok(name)


def check_bound_key_attributes(name: str, key: TPMKey) -> Check:
    """The MDM and Entra keys: created in the TPM, unable to leave it, not restricted."""
    attributes = key.attributes
    missing = int(TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.SENSITIVEDATAORIGIN) & ~attributes
    if missing:
        return fail(name, f"key lacks {TPMA_OBJECT(missing)!s}")
    if attributes & int(TPMA_OBJECT.RESTRICTED):
        return fail(name, "key is restricted: a restricted key cannot be the MDM or Entra key")
    if not attributes & int(TPMA_OBJECT.SIGN_ENCRYPT):
        return fail(name, "key cannot sign")
    return ok(name)
