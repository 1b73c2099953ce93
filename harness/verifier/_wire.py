"""Reading the TPM 2.0 wire format (TPM 2.0 Part 2: big-endian integers, TPM2B sized buffers).

The evaluator reads each structure once, straight from the bytes: going through tpm2-pytss
objects (unmarshal, then attribute by attribute) cost more than the signatures themselves.
Only the structures an enrollment carries are read here (TPMT_PUBLIC for RSA and ECC keys,
TPMS_ATTEST, TPMT_SIGNATURE); every byte must belong to the structure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tpm2_pytss import TPM2_ALG, TPM2_ST

from ..errors import WireError as WireError

_NULL = int(TPM2_ALG.NULL)
_XOR = int(TPM2_ALG.XOR)
_ECDAA = int(TPM2_ALG.ECDAA)
_RSAES = int(TPM2_ALG.RSAES)
RSA = int(TPM2_ALG.RSA)
ECC = int(TPM2_ALG.ECC)
ATTEST_CERTIFY = int(TPM2_ST.ATTEST_CERTIFY)
_RSASSA = int(TPM2_ALG.RSASSA)
_RSAPSS = int(TPM2_ALG.RSAPSS)
_ECDSA = int(TPM2_ALG.ECDSA)


_U16, _U32 = struct.Struct(">H"), struct.Struct(">I")
# Fixed runs of fields read in one call: an evaluation reads seven structures, and a call
# per field was most of their cost.
_PUBLIC_HEAD = struct.Struct(">HHI")  # type, nameAlg, objectAttributes
_ATTEST_HEAD = struct.Struct(">IH")  # magic, type
_CLOCK_AND_FIRMWARE = 8 + 4 + 4 + 1 + 8  # TPMS_CLOCK_INFO, firmwareVersion: not read


class Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.offset, self.what = data, 0, what

    def _unpack(self, layout: struct.Struct) -> int:
        try:
            (value,) = layout.unpack_from(self.data, self.offset)
        except struct.error:
            raise WireError(f"{self.what} ends early") from None
        self.offset += layout.size
        return int(value)

    def fields(self, layout: struct.Struct) -> tuple[int, ...]:
        try:
            values: tuple[int, ...] = layout.unpack_from(self.data, self.offset)
        except struct.error:
            raise WireError(f"{self.what} ends early") from None
        self.offset += layout.size
        return values

    def skip(self, size: int) -> None:
        if self.offset + size > len(self.data):
            raise WireError(f"{self.what} ends early")
        self.offset += size

    def u16(self) -> int:
        return self._unpack(_U16)

    def u32(self) -> int:
        return self._unpack(_U32)

    def sized(self) -> bytes:
        """A TPM2B: a 16-bit size, then that many bytes."""
        size = self.u16()
        if self.offset + size > len(self.data):
            raise WireError(f"{self.what} ends early")
        value = self.data[self.offset : self.offset + size]
        self.offset += size
        return value

    def done(self) -> None:
        if self.offset != len(self.data):
            raise WireError(f"{self.what} has trailing bytes")


@dataclass(frozen=True)
class PublicArea:
    type: int
    name_alg: int
    attributes: int
    symmetric: int
    scheme: int
    exponent: int = 0
    modulus: bytes = b""
    curve: int = 0
    point: tuple[bytes, bytes] = (b"", b"")


def _symmetric(reader: Reader) -> int:
    algorithm = reader.u16()
    if algorithm == _XOR:
        reader.u16()  # its hash; TPMU_SYM_MODE is empty for XOR
    elif algorithm != _NULL:
        reader.u16()  # keyBits
        reader.u16()  # mode
    return algorithm


def _scheme(reader: Reader) -> int:
    scheme = reader.u16()
    if scheme == _ECDAA:
        reader.u16()  # hashAlg
        reader.u16()  # count
    elif scheme not in (_NULL, _RSAES):
        reader.u16()  # hashAlg
    return scheme


def read_public_area(area: bytes) -> PublicArea:
    """A marshalled TPMT_PUBLIC of an RSA or ECC key."""
    reader = Reader(area, "TPMT_PUBLIC")
    kind, name_alg, attributes = reader.fields(_PUBLIC_HEAD)
    reader.sized()  # authPolicy
    if kind == RSA:
        symmetric, scheme = _symmetric(reader), _scheme(reader)
        reader.u16()  # keyBits: the modulus says it
        exponent = reader.u32()
        modulus = reader.sized()
        reader.done()
        return PublicArea(kind, name_alg, attributes, symmetric, scheme, exponent=exponent, modulus=modulus)
    if kind == ECC:
        symmetric, scheme = _symmetric(reader), _scheme(reader)
        curve = reader.u16()
        if reader.u16() != _NULL:  # kdf scheme
            reader.u16()
        point = (reader.sized(), reader.sized())
        reader.done()
        return PublicArea(kind, name_alg, attributes, symmetric, scheme, curve=curve, point=point)
    raise WireError(f"key type 0x{kind:04x} is neither RSA nor ECC")


@dataclass(frozen=True)
class Attestation:
    """What the checks read of a TPMS_ATTEST: certified_name only for TPM_ST_ATTEST_CERTIFY."""

    magic: int
    type: int
    extra_data: bytes
    certified_name: bytes | None


def read_attest_header(attest: bytes) -> tuple[Attestation, Reader]:
    """The fields before the type-specific part, and the reader positioned at it."""
    reader = Reader(attest, "TPMS_ATTEST")
    magic, kind = reader.fields(_ATTEST_HEAD)
    reader.sized()  # qualifiedSigner
    extra = reader.sized()
    reader.skip(_CLOCK_AND_FIRMWARE)
    return Attestation(magic, kind, extra, None), reader


def read_certify_body(header: Attestation, reader: Reader) -> Attestation:
    name = reader.sized()
    reader.sized()  # qualifiedName
    reader.done()
    return Attestation(header.magic, header.type, header.extra_data, name)


@dataclass(frozen=True)
class Signature:
    algorithm: int
    hash: int = 0
    rsa: bytes = b""
    ecdsa: tuple[bytes, bytes] = (b"", b"")


def read_signature(blob: bytes) -> Signature:
    """A TPMT_SIGNATURE of RSASSA, RSAPSS or ECDSA (other algorithms are not accepted)."""
    reader = Reader(blob, "TPMT_SIGNATURE")
    algorithm = reader.u16()
    if algorithm in (_RSASSA, _RSAPSS):
        digest, signature = reader.u16(), reader.sized()
        reader.done()
        return Signature(algorithm, digest, rsa=signature)
    if algorithm == _ECDSA:
        digest, r, s = reader.u16(), reader.sized(), reader.sized()
        reader.done()
        return Signature(algorithm, digest, ecdsa=(r, s))
    return Signature(algorithm)
