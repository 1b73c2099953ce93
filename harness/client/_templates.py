"""Key templates the Windows client asks its TPM for."""

from __future__ import annotations

from tpm2_pytss import TPM2B_PUBLIC, TPMA_OBJECT

_BORN_IN_TPM = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN


def srk() -> TPM2B_PUBLIC:
    """The storage root key of the TCG provisioning guidance (RSA 2048, AES-128-CFB)."""
    return TPM2B_PUBLIC.parse(
        "rsa2048:null:aes128cfb",
        objectAttributes=_BORN_IN_TPM
        | TPMA_OBJECT.USERWITHAUTH
        | TPMA_OBJECT.NODA
        | TPMA_OBJECT.RESTRICTED
        | TPMA_OBJECT.DECRYPT,
    )


def aik() -> TPM2B_PUBLIC:
    """A restricted signing key: it signs only what the TPM itself produced."""
    return TPM2B_PUBLIC.parse(
        "rsa2048:rsassa-sha256:null",
        objectAttributes=_BORN_IN_TPM
        | TPMA_OBJECT.USERWITHAUTH
        | TPMA_OBJECT.RESTRICTED
        | TPMA_OBJECT.SIGN_ENCRYPT,
    )


def bound_signing_key() -> TPM2B_PUBLIC:
    """The MDM key and the Entra device key: unrestricted signing keys that cannot leave the TPM."""
    return TPM2B_PUBLIC.parse(
        "rsa2048:rsassa-sha256:null",
        objectAttributes=_BORN_IN_TPM | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT,
    )
