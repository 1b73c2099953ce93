"""Every TPM command vendor-check sends, in one thin layer over tpm2-pytss.

Read-only towards the TPM's state: it reads capabilities and NV, creates keys only as
transient objects and flushes each one (and every session) before it closes. It never
defines or writes NV, persists an object or changes an authorisation value.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from tpm2_pytss import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_CAP,
    TPM2_HT,
    TPM2_PT,
    TPM2_RH,
    TPM2_SE,
    TPM2_ST,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
    TPMT_TK_HASHCHECK,
    TSS2_Exception,
)
from tpm2_pytss.TCTILdr import TCTILdr
from tpm2_pytss.utils import NVReadEK, create_ek_template, make_credential

from ..tpm import TimedESAPI
from ._identity import TPMProperties
from ._model import VendorCheckError

_TPM12_RESPONSE_TAG = b"\x00\xc4"  # TPM_TAG_RSP_COMMAND
# TPM2_GetCapability(TPM_PROPERTIES, TPM_PT_MANUFACTURER, 1), marshalled by hand: a TPM 1.2
# cannot answer in a format the TSS parses, so the family is read from the response tag.
_GET_MANUFACTURER = bytes.fromhex("8001 00000016 0000017A 00000006 00000105 00000001")
_PT_FIXED_COUNT = 13  # TPM_PT_FAMILY_INDICATOR .. TPM_PT_FIRMWARE_VERSION_2
_HANDLE_TYPES = {
    "transient": TPM2_HT.TRANSIENT,
    "persistent": TPM2_HT.PERSISTENT,
    "nv": TPM2_HT.NV_INDEX,
    "loaded sessions": TPM2_HT.LOADED_SESSION,
    "saved sessions": TPM2_HT.SAVED_SESSION,
}


@dataclass(frozen=True)
class NVIndexPublic:
    index: int
    attributes: int
    size: int


def tpm_family(tcti: tuple[str, str]) -> str:
    """'1.2' or '2.0' from the tag of the TPM's answer to a raw TPM2_GetCapability."""
    try:
        channel = TCTILdr(*tcti)
    except TSS2_Exception as exc:
        raise VendorCheckError(f"cannot reach the TPM through TCTI {tcti[0]}:{tcti[1]}: {exc}") from exc
    try:
        channel.transmit(_GET_MANUFACTURER)
        answer = bytes(channel.receive())
    except TSS2_Exception as exc:
        raise VendorCheckError(f"the TPM does not answer: {exc}") from exc
    finally:
        channel.close()
    return "1.2" if answer[:2] == _TPM12_RESPONSE_TAG else "2.0"


class Probe:
    """One ESAPI session with the TPM; close() flushes what it loaded."""

    def __init__(self, tcti: tuple[str, str]) -> None:
        try:
            self._tpm = TimedESAPI(tcti)
        except TSS2_Exception as exc:
            raise VendorCheckError(f"cannot open the TPM through TCTI {tcti[0]}:{tcti[1]}: {exc}") from exc
        self._transients: list[Any] = []
        self._srk: Any = None

    def close(self) -> None:
        for handle in reversed(self._transients):
            with contextlib.suppress(TSS2_Exception):
                self._tpm.flush_context(handle)
        self._transients.clear()
        self._tpm.close()

    # --- reading -----------------------------------------------------------------------

    def properties(self) -> TPMProperties:
        _, data = self._tpm.get_capability(TPM2_CAP.TPM_PROPERTIES, TPM2_PT.FAMILY_INDICATOR, _PT_FIXED_COUNT)
        values = {int(p.property): int(p.value) for p in data.data.tpmProperties}
        base = int(TPM2_PT.FAMILY_INDICATOR)

        def pt(offset: int) -> int:
            return values.get(base + offset, 0)

        return TPMProperties(
            family=pt(0),
            level=pt(1),
            revision=pt(2),
            day_of_year=pt(3),
            year=pt(4),
            manufacturer=pt(5),
            vendor_strings=(pt(6), pt(7), pt(8), pt(9)),
            firmware1=pt(11),
            firmware2=pt(12),
        )

    def handles(self) -> dict[str, tuple[int, ...]]:
        """Every handle of each kind the TPM holds, to compare before and after the check."""
        lists: dict[str, tuple[int, ...]] = {}
        for kind, handle_type in _HANDLE_TYPES.items():
            lists[kind] = tuple(self._handles_from(int(handle_type) << 24))
        return lists

    def _handles_from(self, first: int) -> list[int]:
        found: list[int] = []
        top = first | 0x00FFFFFF
        start = first
        while True:
            more, data = self._tpm.get_capability(TPM2_CAP.HANDLES, start, 64)
            chunk = [int(h) for h in data.data.handles if int(h) <= top]
            found.extend(chunk)
            if not more or not chunk or chunk[-1] >= top:
                return found
            start = chunk[-1] + 1

    def nv_public(self, index: int) -> NVIndexPublic:
        handle = self._tpm.tr_from_tpmpublic(index)
        try:
            public, _ = self._tpm.nv_read_public(handle)
        finally:
            self._tpm.tr_close(handle)
        return NVIndexPublic(index, int(public.nvPublic.attributes), int(public.nvPublic.dataSize))

    def nv_read(self, index: int) -> bytes:
        """The index's data, read with its own (empty) authorisation as Windows reads it."""
        return bytes(NVReadEK(self._tpm.raw)(index))

    # --- keys and commands ---------------------------------------------------------------

    def ek_from_template(self, ek_type: str) -> tuple[Any, TPM2B_PUBLIC]:
        """The EK that the profile's template (with any template or nonce in NV) re-creates."""
        _, template = create_ek_template(ek_type, NVReadEK(self._tpm.raw))
        handle, public, *_ = self._tpm.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT)
        self._transients.append(handle)
        return handle, public

    def srk(self, template: TPM2B_PUBLIC) -> Any:
        if self._srk is None:
            handle, *_ = self._tpm.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.OWNER)
            self._transients.append(handle)
            self._srk = handle
        return self._srk

    def create(self, parent: Any, template: TPM2B_PUBLIC) -> tuple[Any, TPM2B_PUBLIC]:
        private, public, *_ = self._tpm.create(parent, TPM2B_SENSITIVE_CREATE(), template)
        return private, public

    def load(self, parent: Any, private: Any, public: TPM2B_PUBLIC) -> Any:
        handle = self._tpm.load(parent, private, public)
        self._transients.append(handle)
        return handle

    def flush(self, handle: Any) -> None:
        self._tpm.flush_context(handle)
        self._transients.remove(handle)

    def sha256(self, data: bytes) -> bytes:
        digest, _ = self._tpm.hash(data, TPM2_ALG.SHA256, ESYS_TR.OWNER)
        return bytes(digest)

    def certify(self, key: Any, aik: Any, nonce: bytes) -> tuple[bytes, bytes]:
        attest, signature = self._tpm.certify(key, aik, nonce, TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
        # attest comes as a TPM2B_ATTEST; the AIK signed the TPMS_ATTEST inside its size prefix.
        return bytes(attest.marshal())[2:], bytes(signature.marshal())

    def activate(
        self, aik: Any, aik_public: TPM2B_PUBLIC, ek: Any, ek_public: TPM2B_PUBLIC, secret: bytes
    ) -> bytes:
        """MakeCredential in software to the EK, then TPM2_ActivateCredential as Windows runs it:
        the EK's policy is PolicySecret(endorsement) in a policy session."""
        blob, encrypted = make_credential(ek_public, secret, aik_public.get_name())
        session = self._tpm.start_auth_session(
            ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY, TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256
        )
        try:
            self._tpm.policy_secret(ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
            return bytes(self._tpm.activate_credential(aik, ek, blob, encrypted, session2=session))
        finally:
            self._tpm.flush_context(session)

    def sign(self, key: Any, digest: bytes) -> bytes:
        """TPM2_Sign with RSASSA-SHA256 over a digest computed outside the TPM."""
        ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
        scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.RSASSA)
        scheme.details.any.hashAlg = TPM2_ALG.SHA256
        signature = self._tpm.sign(key, digest, scheme, ticket)
        return bytes(signature.signature.rsassa.sig)


def undo_persisted(tcti: tuple[str, str], handle: int) -> None:
    """Evict a persistent object that the enrollment flow itself persisted (the MDM key).

    Only ever called for a handle that was free before vendor-check ran, so the TPM's
    persistent handles end as they began.
    """
    with TimedESAPI(tcti) as tpm:
        obj = tpm.tr_from_tpmpublic(handle)
        tpm.evict_control(ESYS_TR.OWNER, obj, handle)
