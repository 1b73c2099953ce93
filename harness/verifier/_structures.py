"""One rule set for the TPM structures a client sends, used by the AIK CA and the evaluator.

A key a TPM can hold has a name algorithm this verifier can compute (SHA-1/256/384/512) and
parameters that fit its use, as TPM 2.0 Part 2 (TPMT_PUBLIC, TPMS_RSA_PARMS, TPMS_ECC_PARMS)
and the TCG EK Credential Profile (the EK templates) require:

- an EK is a restricted decryption key with an AES-128 or AES-256 CFB symmetric (the EK
  templates); make_credential encrypts to it with that symmetric;
- an AIK is a restricted signing key; a restricted signing key's symmetric is TPM_ALG_NULL
  and its scheme is a signing scheme (RSASSA, RSAPSS, ECDSA), never TPM_ALG_NULL;
- an MDM or Entra key is a signing key; its symmetric is TPM_ALG_NULL.
"""

from __future__ import annotations

from tpm2_pytss import TPM2_ALG, TPMA_OBJECT

from ._checks import Check, fail, ok
from ._tpm import TPMKey

NAME_ALGORITHMS = {
    int(TPM2_ALG.SHA1): "SHA-1",
    int(TPM2_ALG.SHA256): "SHA-256",
    int(TPM2_ALG.SHA384): "SHA-384",
    int(TPM2_ALG.SHA512): "SHA-512",
}
_NULL = int(TPM2_ALG.NULL)
_SIGNING_SCHEMES = {
    int(TPM2_ALG.RSA): {int(TPM2_ALG.RSASSA), int(TPM2_ALG.RSAPSS)},
    int(TPM2_ALG.ECC): {int(TPM2_ALG.ECDSA)},
}


def _name_alg(name: str, key: TPMKey) -> Check | None:
    if key.name_alg not in NAME_ALGORITHMS:
        accepted = ", ".join(NAME_ALGORITHMS.values())
        return fail(name, f"nameAlg 0x{key.name_alg:04x} is not one of {accepted}")
    if key.type not in _SIGNING_SCHEMES:
        return fail(name, f"key type 0x{key.type:04x} is neither RSA nor ECC")
    return None


def check_ek_structure(name: str, key: TPMKey) -> Check:
    """An EK per the TCG EK templates: RSA or ECC, AES symmetric for credential activation."""
    problem = _name_alg(name, key)
    if problem is not None:
        return problem
    restricted_decrypt = int(TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.DECRYPT)
    if key.attributes & restricted_decrypt != restricted_decrypt or key.attributes & int(
        TPMA_OBJECT.SIGN_ENCRYPT
    ):
        return fail(name, "an EK is a restricted decryption key, not a signing key")
    if key.symmetric != int(TPM2_ALG.AES):
        return fail(
            name, f"EK symmetric 0x{key.symmetric:04x} is not AES (the EK templates' storage symmetric)"
        )
    return ok(name)


def check_signing_key_structure(name: str, key: TPMKey, *, restricted: bool) -> Check:
    """An AIK (restricted) or an MDM or Entra key: NULL symmetric; a restricted key names its
    signing scheme, an unrestricted one may leave it NULL (the scheme comes with each signature)."""
    problem = _name_alg(name, key)
    if problem is not None:
        return problem
    if key.symmetric != _NULL:
        return fail(name, f"a signing key's symmetric is TPM_ALG_NULL, not 0x{key.symmetric:04x}")
    allowed = _SIGNING_SCHEMES[key.type]
    if key.scheme in allowed or (key.scheme == _NULL and not restricted):
        return ok(name)
    if key.scheme == _NULL:
        return fail(name, "a restricted signing key names its scheme; TPM_ALG_NULL is not one")
    return fail(name, f"scheme 0x{key.scheme:04x} is not a signing scheme of this key type")
