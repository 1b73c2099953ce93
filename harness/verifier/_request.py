"""The evaluator's view of an enrollment request: the MS-MDE2 context items as sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from pydantic import ValidationError

from ..protocol import EnrollmentRequest
from ._model import Evidence
from ._tpm import EvidenceFormatError


def evidence_from_request(request: EnrollmentRequest | Mapping[str, Any], token: str | None) -> Evidence:
    """Evidence from a request, parsed or as the JSON body the client sent.

    Raises EvidenceFormatError when the body is not an enrollment request or an item that
    must parse before evaluation (AIKCertChain) does not.
    """
    if not isinstance(request, EnrollmentRequest):
        try:
            request = EnrollmentRequest.model_validate(request)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EvidenceFormatError(f"not an enrollment request: {where}: {first['msg']}") from exc
    items = request.context_items
    hresult = items.attestation_status_hresult
    return Evidence(
        enrollment_version=request.enrollment_version,
        token=token,
        os_version=items.os_version,
        device_manufacturer=items.device_manufacturer,
        device_model=items.device_model,
        tpm_manufacturer=items.tpm_manufacturer,
        tpm_firmware=items.tpm_firmware,
        aik_claim=items.aik_attestation_claim,
        aik_pub=items.aik_pub,
        aik_cert=items.aik_cert,
        aad_claim=items.aad_aik_attestation_claim,
        aad_pub=items.aad_pub,
        mdm_pub=items.mdm_pub,
        client_status=items.attestation_status,
        client_hresult=int(hresult, 16) if hresult else None,
        aik_chain=split_certificate_chain(items.aik_cert_chain) if items.aik_cert_chain else (),
    )


def split_certificate_chain(blob: bytes) -> tuple[bytes, ...]:
    """The DER certificates of an AIKCertChain item (PKCS#7 certs-only, as a .p7b file).

    Raises EvidenceFormatError, naming the item, for bytes that are not one: a malformed
    request is refused with a reason, not judged.
    """
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(blob)
    except (ValueError, x509.InvalidVersion) as exc:
        raise EvidenceFormatError(f"ContextItems.AIKCertChain: not DER PKCS#7: {exc}") from exc
    except UnsupportedAlgorithm as exc:
        # cryptography reads only signedData; any other content type (data, envelopedData) lands here.
        raise EvidenceFormatError(
            f"ContextItems.AIKCertChain: PKCS#7 that is not certs-only signedData: {exc}"
        ) from exc
    return tuple(c.public_bytes(Encoding.DER) for c in certificates)


def certificate_chain_item(chain: list[bytes]) -> bytes:
    """The AIKCertChain item for DER certificates (the inverse of split_certificate_chain)."""
    return pkcs7.serialize_certificates([x509.load_der_x509_certificate(d) for d in chain], Encoding.DER)
