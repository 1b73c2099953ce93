"""The TPM provider over tpm2-pytss: ESAPI through a TCTI, as Windows' TPM stack would do it.

Every TSS error becomes a ClientFailure with the HRESULT Windows would report for
it. No resource manager stands between the client and the TPM, so the provider
flushes every object it loaded when a session ends.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tpm2_pytss import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_CAP,
    TPM2_PT,
    TPM2_RH,
    TPM2_SE,
    TPM2_ST,
    TPM2B_ENCRYPTED_SECRET,
    TPM2B_ID_OBJECT,
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
    TPMT_TK_HASHCHECK,
    TSS2_Exception,
)
from tpm2_pytss.utils import NVReadEK, create_ek_template

from ..pki import TPMIdentity, split_der, vendor_id_from_int
from ..status import HResult, describe, from_tpm_rc
from ..tpm import TimedESAPI, open_tcti
from . import _templates
from ._failure import ClientFailure, reported
from ._provider import EndorsementKey, KeyBlob, LoadedKey

# TCG EK Credential Profile 2.x §2.2.1.6: the EK certificate chain lives in these indices,
# each holding one or more DER certificates back to back.
EK_CHAIN_FIRST, EK_CHAIN_LAST = 0x01C00100, 0x01C001FF
_TSS_LAYER_MASK = 0xFFFF0000
_PT_FIRMWARE_VERSION_1 = 0x100 + 11  # TPM_PT_FIXED + 11; tpm2-pytss has no name for it
_TPM_RC_VER1 = 0x100
_TPM12_FORMAT = 0x0FFF  # TPM 1.2 response codes fit in 12 bits with no format bits
_TPM12_RESPONSE_TAG = b"\x00\xc4"  # TPM_TAG_RSP_COMMAND
# TPM2_GetCapability(TPM_PROPERTIES, TPM_PT_MANUFACTURER, 1), marshalled.
_GET_MANUFACTURER = bytes.fromhex("8001 00000016 0000017A 00000006 00000105 00000001")


def tpm_hresult(exc: TSS2_Exception) -> int:
    """The HRESULT Windows would report for a TSS error."""
    rc = int(exc.rc)
    layer = rc & _TSS_LAYER_MASK
    if layer == 0:  # a response code from the TPM itself
        code = rc & 0xFFFF
        if code and not code & (_TPM_RC_VER1 | 0x80) and code <= _TPM12_FORMAT:
            return HResult.TPM_E_PCP_UNSUPPORTED_TPM_VERSION
        return from_tpm_rc(code)
    # The TCTI or the resource manager could not reach a TPM.
    return HResult.TBS_E_TPM_NOT_FOUND


def _tss_failure(exc: TSS2_Exception) -> ClientFailure:
    hresult = tpm_hresult(exc)
    return ClientFailure(hresult, f"TPM error {exc} -> {describe(hresult)}")


# A TSS error in a provider method becomes the ClientFailure Windows would report.
_reported = reported(TSS2_Exception, _tss_failure)


def probe_family(tcti: tuple[str, str]) -> str:
    """'1.2' or '2.0', from the tag of the TPM's answer to a TPM2_GetCapability.

    TBS tells Windows the TPM's version before anything else; a TSS only sees a
    response it cannot parse, so the client asks the TPM directly.
    """
    try:
        channel = open_tcti(tcti)
    except TSS2_Exception as exc:
        raise ClientFailure(HResult.TBS_E_TPM_NOT_FOUND, f"cannot reach the TPM: {exc}") from exc
    try:
        channel.transmit(_GET_MANUFACTURER)
        answer = bytes(channel.receive())
    except TSS2_Exception as exc:
        raise ClientFailure(HResult.TBS_E_TPM_NOT_FOUND, f"the TPM does not answer: {exc}") from exc
    finally:
        channel.close()
    return "1.2" if answer[:2] == _TPM12_RESPONSE_TAG else "2.0"


class PytssTPM:
    """A TPMProvider for the TPM at a TCTI (a swtpm, a container's swtpm, /dev/tpmrm0, mssim)."""

    def __init__(self, tcti: tuple[str, str]) -> None:
        self._tcti = tcti
        self._esapi: TimedESAPI | None = None
        self._version: str | None = None
        self._srk: Any = None
        self._transients: list[Any] = []  # loaded objects to flush when the session ends
        self._seconds = 0.0
        self._commands = 0

    @property
    def version(self) -> str | None:
        return self._version

    @property
    def seconds(self) -> float:
        return self._seconds + (self._esapi.seconds if self._esapi is not None else 0.0)

    @property
    def commands(self) -> int:
        return self._commands + (self._esapi.commands if self._esapi is not None else 0)

    def _session(self) -> TimedESAPI:
        self.open()
        assert self._esapi is not None
        return self._esapi

    def open(self) -> None:
        if self._esapi is not None:
            return
        if self._version is None:
            self._version = probe_family(self._tcti)
        if self._version == "1.2":
            raise ClientFailure(HResult.TPM_E_PCP_UNSUPPORTED_TPM_VERSION, "the TPM answers as a TPM 1.2")
        try:
            self._esapi = TimedESAPI(self._tcti)
        except TSS2_Exception as exc:
            raise ClientFailure(HResult.TBS_E_TPM_NOT_FOUND, f"cannot reach the TPM: {exc}") from exc

    def close(self) -> None:
        esapi = self._esapi
        if esapi is None:
            return
        for handle in self._transients:
            with contextlib.suppress(TSS2_Exception):
                esapi.flush_context(handle)
        self._transients.clear()
        self._seconds += esapi.seconds
        self._commands += esapi.commands
        esapi.close()
        self._esapi = None
        self._srk = None

    @_reported
    def identity(self) -> TPMIdentity:
        # TPM_PT_MANUFACTURER through TPM_PT_FIRMWARE_VERSION_1 are neighbours: one command reads both.
        first = int(TPM2_PT.MANUFACTURER)
        _, data = self._session().get_capability(
            TPM2_CAP.TPM_PROPERTIES, first, _PT_FIRMWARE_VERSION_1 - first + 1
        )
        properties = {int(p.property): int(p.value) for p in data.data.tpmProperties}
        manufacturer = vendor_id_from_int(properties[first])
        firmware = properties[_PT_FIRMWARE_VERSION_1]
        return TPMIdentity(f"id:{manufacturer}", "swtpm", f"id:{firmware:08X}")

    @_reported
    def endorsement_key(self) -> EndorsementKey:
        tpm = self._session()
        reader = NVReadEK(tpm)
        certificate: bytes | None = None
        template = None
        for ek_type in ("EK-RSA2048", "EK-ECC256"):
            try:
                found, candidate = create_ek_template(ek_type, reader)
            except ValueError:
                continue
            # Without a certificate in NV, Windows uses the RSA EK (the first template).
            template = template or candidate
            if found:
                certificate, template = found, candidate
                break
        chain = self._ek_chain(reader)
        handle, public, *_ = tpm.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT)
        self._transients.append(handle)
        return EndorsementKey(
            certificate=certificate or None, public=bytes(public.marshal()), handle=handle, chain=chain
        )

    def _ek_chain(self, reader: NVReadEK) -> tuple[bytes, ...]:
        _, data = self._session().get_capability(
            TPM2_CAP.HANDLES, EK_CHAIN_FIRST, EK_CHAIN_LAST - EK_CHAIN_FIRST + 1
        )
        indices = [int(h) for h in data.data.handles if EK_CHAIN_FIRST <= int(h) <= EK_CHAIN_LAST]
        return tuple(der for index in indices for der in split_der(reader(index)))

    @_reported
    def storage_root_key(self) -> None:
        self._storage_root()

    def _storage_root(self) -> Any:
        if self._srk is None:
            handle, *_ = self._session().create_primary(
                TPM2B_SENSITIVE_CREATE(), _templates.srk(), ESYS_TR.OWNER
            )
            self._srk = handle
            self._transients.append(handle)
        return self._srk

    @_reported
    def create_aik(self) -> LoadedKey:
        tpm = self._session()
        srk = self._storage_root()
        private, public, *_ = tpm.create(srk, TPM2B_SENSITIVE_CREATE(), _templates.aik())
        handle = tpm.load(srk, private, public)
        self._transients.append(handle)
        return LoadedKey(public=bytes(public.marshal()), name=bytes(public.get_name()), handle=handle)

    @_reported
    def activate_credential(
        self, aik: LoadedKey, ek: EndorsementKey, credential_blob: bytes, encrypted_secret: bytes
    ) -> bytes:
        tpm = self._session()
        blob, _ = TPM2B_ID_OBJECT.unmarshal(credential_blob)
        secret, _ = TPM2B_ENCRYPTED_SECRET.unmarshal(encrypted_secret)
        session = tpm.start_auth_session(
            ESYS_TR.NONE,
            ESYS_TR.NONE,
            TPM2_SE.POLICY,
            TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
            TPM2_ALG.SHA256,
        )
        try:
            tpm.policy_secret(ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
            return bytes(tpm.activate_credential(aik.handle, ek.handle, blob, secret, session2=session))
        finally:
            tpm.flush_context(session)

    @_reported
    def flush(self, key: LoadedKey | EndorsementKey) -> None:
        self._session().flush_context(key.handle)
        if key.handle in self._transients:
            self._transients.remove(key.handle)

    @_reported
    def find_persistent_key(self, handle: int) -> LoadedKey | None:
        tpm = self._session()
        try:
            existing = tpm.tr_from_tpmpublic(handle)
        except TSS2_Exception:
            return None
        public, *_ = tpm.read_public(existing)
        return LoadedKey(public=bytes(public.marshal()), name=bytes(public.get_name()), handle=existing)

    @_reported
    def create_persistent_key(self, handle: int) -> LoadedKey:
        tpm = self._session()
        srk = self._storage_root()
        private, public, *_ = tpm.create(srk, TPM2B_SENSITIVE_CREATE(), _templates.bound_signing_key())
        transient = tpm.load(srk, private, public)
        try:
            persistent = tpm.evict_control(ESYS_TR.OWNER, transient, handle)
        finally:
            tpm.flush_context(transient)
        return LoadedKey(public=bytes(public.marshal()), name=bytes(public.get_name()), handle=persistent)

    @_reported
    def certify(self, key: LoadedKey, aik: LoadedKey, nonce: bytes) -> bytes:
        return self._certify(key.handle, aik, nonce)

    def _certify(self, key: Any, aik: LoadedKey, nonce: bytes) -> bytes:
        attest, signature = self._session().certify(
            key, aik.handle, nonce, TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL)
        )
        return bytes(attest.marshal()) + bytes(signature.marshal())

    @_reported
    def create_key_blob(self) -> KeyBlob:
        tpm = self._session()
        private, public, *_ = tpm.create(
            self._storage_root(), TPM2B_SENSITIVE_CREATE(), _templates.bound_signing_key()
        )
        return KeyBlob(
            public=bytes(public.marshal()), private=bytes(private.marshal()), spki=bytes(public.to_der())
        )

    def _load(self, key: KeyBlob) -> Any:
        public, _ = TPM2B_PUBLIC.unmarshal(key.public)
        private, _ = TPM2B_PRIVATE.unmarshal(key.private)
        return self._session().load(self._storage_root(), private, public)

    @_reported
    def certify_blob(self, key: KeyBlob, aik: LoadedKey, nonce: bytes) -> bytes:
        handle = self._load(key)
        try:
            return self._certify(handle, aik, nonce)
        finally:
            self._session().flush_context(handle)

    @_reported
    def sign(self, key: KeyBlob, digest: bytes) -> bytes:
        handle = self._load(key)
        try:
            ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
            scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.RSASSA)
            scheme.details.any.hashAlg = TPM2_ALG.SHA256
            signature = self._session().sign(handle, digest, scheme, ticket)
        finally:
            self._session().flush_context(handle)
        return bytes(signature.signature.rsassa.sig)
