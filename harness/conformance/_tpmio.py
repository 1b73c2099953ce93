"""Small TPM reads and objects the lifecycle, resource, lockout and algorithm rows share."""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from tpm2_pytss import (
    ESYS_TR,
    TPM2_CAP,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMA_OBJECT,
    TPML_PCR_SELECTION,
    TSS2_Exception,
)
from tpm2_pytss.utils import NoSuchIndex, NVReadEK, create_ek_template

from ..client import key_templates
from ..pki import split_der
from ..tpm import TimedESAPI

# TPM_PT numbers (Part 2 §6.13): the fixed group starts at 0x100, the variable one at 0x200.
PT_HR_TRANSIENT_MIN = 0x10E
PT_HR_PERSISTENT_MIN = 0x10F
PT_HR_LOADED_MIN = 0x110
PT_ACTIVE_SESSIONS_MAX = 0x111
PT_PCR_COUNT = 0x112
PT_PCR_SELECT_MIN = 0x113
PT_NV_INDEX_MAX = 0x117
PT_INPUT_BUFFER = 0x10D
PT_MAX_COMMAND_SIZE = 0x11E
PT_MAX_RESPONSE_SIZE = 0x11F
PT_PERMANENT = 0x200
PT_STARTUP_CLEAR = 0x201
PT_LOCKOUT_COUNTER = 0x20E
PT_MAX_AUTH_FAIL = 0x20F
PT_LOCKOUT_INTERVAL = 0x210
PT_LOCKOUT_RECOVERY = 0x211
STARTUP_PH_ENABLE = 0x1  # TPMA_STARTUP_CLEAR.phEnable
PERMANENT_LOCKOUT_AUTH_SET = 0x4  # TPMA_PERMANENT.lockoutAuthSet
PERMANENT_DISABLE_CLEAR = 0x100  # TPMA_PERMANENT.disableClear
PERMANENT_IN_LOCKOUT = 0x200  # TPMA_PERMANENT.inLockout

_BORN_IN_TPM = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN


def rc(exc: TSS2_Exception) -> int:
    """The TPM's response code without the TSS layer."""
    return int(exc.rc) & 0xFFFF


def properties(esapi: TimedESAPI, first: int, count: int) -> dict[int, int]:
    _, data = esapi.get_capability(TPM2_CAP.TPM_PROPERTIES, first, count)
    return {int(p.property): int(p.value) for p in data.data.tpmProperties}


def prop(esapi: TimedESAPI, number: int) -> int | None:
    return properties(esapi, number, 1).get(number)


def test_key_template(*, no_da: bool = True) -> TPM2B_PUBLIC:
    """A quick ECC P-256 signing key: a primary of it takes milliseconds, not an RSA prime search."""
    attributes = _BORN_IN_TPM | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT
    if no_da:
        attributes |= TPMA_OBJECT.NODA
    return TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256:null", objectAttributes=attributes)


def create_test_key(esapi: TimedESAPI, hierarchy: Any = ESYS_TR.OWNER, *, unique: bytes = b"") -> Any:
    template = test_key_template()
    if unique:
        # A different unique field makes a different primary from the same seed.
        template.publicArea.unique.ecc.x = unique
    handle, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), template, hierarchy)
    return handle


def ek_spki(esapi: TimedESAPI, ek_type: str = "EK-RSA2048") -> bytes:
    """The EK the profile's template re-creates, as SubjectPublicKeyInfo DER."""
    _, template = create_ek_template(ek_type, NVReadEK(esapi.raw))
    handle, public, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT)
    esapi.flush_context(handle)
    return bytes(public.to_der())


def srk_spki(esapi: TimedESAPI) -> bytes:
    """The storage root key the owner hierarchy's seed gives for the TCG template."""
    handle, public, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), key_templates.srk(), ESYS_TR.OWNER)
    esapi.flush_context(handle)
    return bytes(public.to_der())


def fingerprint(spki: bytes) -> str:
    return hashlib.sha256(spki).hexdigest()


def nv_certificate(esapi: TimedESAPI, index: int) -> x509.Certificate | None:
    """The certificate in an NV index, or None when the index is absent or holds none."""
    try:
        data = bytes(NVReadEK(esapi.raw)(index))
    except (TSS2_Exception, NoSuchIndex):
        return None
    parts = split_der(data)
    try:
        return x509.load_der_x509_certificate(parts[0] if parts else data)
    except ValueError:
        return None


def certifies(certificate: x509.Certificate, spki: bytes) -> bool:
    ours = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return ours == spki


def pcr_value(esapi: TimedESAPI, pcr: int) -> bytes:
    _, _, digests = esapi.pcr_read(TPML_PCR_SELECTION.parse(f"sha256:{pcr}"))
    return bytes(digests[0])


def ecdsa_verifies(public_der: bytes, digest: bytes, signature: Any) -> bool:
    """A TPMT_SIGNATURE's ECDSA signature over a SHA-256 digest, checked in software."""
    ecdsa = signature.signature.ecdsa
    der = encode_dss_signature(
        int.from_bytes(bytes(ecdsa.signatureR), "big"), int.from_bytes(bytes(ecdsa.signatureS), "big")
    )
    public = load_der_public_key(public_der)
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    try:
        public.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def flush_quietly(esapi: TimedESAPI, *handles: Any) -> None:
    for handle in handles:
        try:
            esapi.flush_context(handle)
        except TSS2_Exception:
            continue
