"""X.509 as TPMs and their makers use it: the vendors' CAs the harness manufactures EK
certificates under, the TCG certificate profile (the TPM identity in the subjectAltName, the
EK and AIK certificate EKUs, the EK certificate NV indices), and the few certificate facts the
client, the verifier and the conformance tool share (issued by, a CA, valid at, DER values
stored back to back)."""

from ._authorities import (
    CA_LIFETIME,
    LEAF_LIFETIME,
    CertificateAuthority,
    PublicKey,
    certificate_der,
    create_vendor_cas,
    vendor_ca,
    write_private,
)
from ._tcg import (
    EK_CERT_NV_INDEX_ECC,
    EK_CERT_NV_INDEX_RSA,
    MICROSOFT_VTPM_ID,
    OID_AIK_CERTIFICATE,
    OID_EK_CERTIFICATE,
    OID_TPM_MANUFACTURER,
    OID_TPM_MODEL,
    OID_TPM_VERSION,
    TCG_VENDORS,
    TPMIdentity,
    parse_tpm_san,
    tpm_san,
    vendor_hex,
    vendor_id_from_int,
)
from ._x509 import is_ca, issued_by, split_der, valid_at

__all__ = [
    "CA_LIFETIME",
    "EK_CERT_NV_INDEX_ECC",
    "EK_CERT_NV_INDEX_RSA",
    "LEAF_LIFETIME",
    "MICROSOFT_VTPM_ID",
    "OID_AIK_CERTIFICATE",
    "OID_EK_CERTIFICATE",
    "OID_TPM_MANUFACTURER",
    "OID_TPM_MODEL",
    "OID_TPM_VERSION",
    "TCG_VENDORS",
    "CertificateAuthority",
    "PublicKey",
    "TPMIdentity",
    "certificate_der",
    "create_vendor_cas",
    "is_ca",
    "issued_by",
    "parse_tpm_san",
    "split_der",
    "tpm_san",
    "valid_at",
    "vendor_ca",
    "vendor_hex",
    "vendor_id_from_int",
    "write_private",
]
