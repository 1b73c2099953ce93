"""The EK certificate from the TPM vendor's online service, for a TPM whose NV holds none."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from tpm2_pytss import TPM2B_PUBLIC

from ..network import certificate_path
from ..status import HResult
from ._failure import ClientFailure
from ._service import ServiceClient


def fetch_online_certificate(
    service: ServiceClient, base_url: str, manufacturer: str, ek_public: bytes
) -> tuple[bytes | None, str]:
    """(DER or None when the vendor holds none, what happened); ClientFailure on a network fault."""
    key = load_der_public_key(bytes(TPM2B_PUBLIC.unmarshal(ek_public)[0].to_der()))
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ClientFailure(HResult.CERTSRV_E_INVALID_EK, "the EK is neither RSA nor ECC")
    path = certificate_path(manufacturer, key)
    certificate = service.online_ek_certificate(base_url.rstrip("/") + path)
    if certificate:
        return certificate, f"EK certificate fetched from the vendor's service ({path})"
    return None, f"the vendor's service holds no certificate for this EK ({path})"
