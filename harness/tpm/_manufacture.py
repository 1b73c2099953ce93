"""Manufacturing: give a blank TPM its endorsement key and EK certificate.

What a TPM vendor's factory does, done in-process: create the EK from the TCG
default template, have the vendor's CA certify it, and write the DER
certificate to the TCG NV index with platform authorisation. This costs one
CreatePrimary and one signature instead of `swtpm_setup --create-ek-cert`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from tpm2_pytss import (
    ESYS_TR,
    TPM2_ALG,
    TPM2B_NV_PUBLIC,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMA_NV,
    TPMS_NV_PUBLIC,
)
from tpm2_pytss.utils import NoSuchIndex, create_ek_template

from ..pki import (
    EK_CERT_NV_INDEX_ECC,
    EK_CERT_NV_INDEX_RSA,
    CertificateAuthority,
    PublicKey,
    TPMIdentity,
    certificate_der,
)
from ._esapi import TimedESAPI

EKAlgorithm = Literal["rsa2048", "ecc256"]

_EK_TYPES: dict[str, tuple[str, int]] = {
    "rsa2048": ("EK-RSA2048", EK_CERT_NV_INDEX_RSA),
    "ecc256": ("EK-ECC256", EK_CERT_NV_INDEX_ECC),
}

# The attributes TCG's EK credential profile gives the EK certificate index: written
# once by the platform, readable by owner and by anyone with the (empty) index auth.
EK_CERT_NV_ATTRIBUTES = (
    TPMA_NV.PPWRITE
    | TPMA_NV.WRITEDEFINE
    | TPMA_NV.PPREAD
    | TPMA_NV.OWNERREAD
    | TPMA_NV.AUTHREAD
    | TPMA_NV.NO_DA
    | TPMA_NV.PLATFORMCREATE
)
_NV_CHUNK = 512


@dataclass(frozen=True)
class Manufactured:
    ek_public: bytes  # marshalled TPM2B_PUBLIC
    ek_certificate: bytes | None  # DER, None when the vendor shipped no certificate


def ek_nv_index(algorithm: EKAlgorithm) -> int:
    return _EK_TYPES[algorithm][1]


def ek_public_key(ek_public: TPM2B_PUBLIC) -> PublicKey:
    key = load_der_public_key(ek_public.to_der())
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise TypeError("EK is neither RSA nor ECC")
    return key


def _no_nv(index: int) -> bytes:
    raise NoSuchIndex(index)


def create_ek(esapi: TimedESAPI, algorithm: EKAlgorithm) -> tuple[object, TPM2B_PUBLIC]:
    """Create the EK from the TCG default template (no template in NV at the factory)."""
    _, template = create_ek_template(_EK_TYPES[algorithm][0], _no_nv)
    handle, public, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT)
    return handle, public


def manufacture(
    esapi: TimedESAPI,
    *,
    identity: TPMIdentity,
    issuer: CertificateAuthority | None,
    algorithm: EKAlgorithm = "rsa2048",
    now: dt.datetime,
    one_rdn: bool = True,
) -> Manufactured:
    """Create the EK and, when there is an issuer, store its certificate in NV."""
    handle, public = create_ek(esapi, algorithm)
    esapi.flush_context(handle)
    if issuer is None:
        return Manufactured(ek_public=bytes(public.marshal()), ek_certificate=None)
    certificate = issuer.issue_ek_certificate(ek_public_key(public), identity, now=now, one_rdn=one_rdn)
    der = certificate_der(certificate)
    write_nv_certificate(esapi, ek_nv_index(algorithm), der)
    return Manufactured(ek_public=bytes(public.marshal()), ek_certificate=der)


def write_nv_certificate(esapi: TimedESAPI, index: int, der: bytes) -> None:
    nv_public = TPM2B_NV_PUBLIC(
        nvPublic=TPMS_NV_PUBLIC(
            nvIndex=index,
            nameAlg=TPM2_ALG.SHA256,
            attributes=EK_CERT_NV_ATTRIBUTES,
            dataSize=len(der),
        )
    )
    nv_handle = esapi.nv_define_space(b"", nv_public, auth_handle=ESYS_TR.PLATFORM)
    for offset in range(0, len(der), _NV_CHUNK):
        esapi.nv_write(nv_handle, der[offset : offset + _NV_CHUNK], offset, auth_handle=ESYS_TR.PLATFORM)
