"""The simulated Windows client: the enrollment attestation flow a Windows device runs.

Every fact the client reports comes from what it met: a TPM return code, a
refused connection, a service's answer. When a step fails the client keeps
going as far as Windows would, reports AttestationStatus Failure with the
HRESULT of what stopped it, and still enrolls.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
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
from tpm2_pytss.TCTILdr import TCTILdr
from tpm2_pytss.utils import NVReadEK, create_ek_template

from ..hresult import HResult, describe, from_tpm_rc
from ..protocol import ATTESTATION_ENROLLMENT_VERSION, b64
from ..results import ClientStep
from ..tcg import TPMIdentity, parse_tpm_san, vendor_id_from_int
from ..tpm import TimedESAPI, TPMDevice
from ..windows import MDM_KEY_HANDLE, supports_enrollment_attestation
from . import _templates
from ._config import ClientConfig, Endpoints

_TSS_LAYER_MASK = 0xFFFF0000
_PT_FIRMWARE_VERSION_1 = 0x100 + 11  # TPM_PT_FIXED + 11; tpm2-pytss has no name for it
_TPM_RC_VER1 = 0x100
_TPM12_FORMAT = 0x0FFF  # TPM 1.2 response codes fit in 12 bits with no format bits
_TPM12_RESPONSE_TAG = b"\x00\xc4"  # TPM_TAG_RSP_COMMAND
# TPM2_GetCapability(TPM_PROPERTIES, TPM_PT_MANUFACTURER, 1), marshalled.
_GET_MANUFACTURER = bytes.fromhex("8001 00000016 0000017A 00000006 00000105 00000001")


class ClientFailure(Exception):
    """A step failed; `hresult` is what Windows would report for it."""

    def __init__(self, hresult: int, reason: str) -> None:
        super().__init__(reason)
        self.hresult = hresult
        self.reason = reason


@dataclass
class ClientReport:
    """What the client did: its steps, what it sent, and the TPM time it spent."""

    emm_device_id: str
    steps: list[ClientStep] = field(default_factory=list)
    sent_items: list[str] = field(default_factory=list)
    hresult: int = HResult.S_OK
    enrolled: bool = False
    tpm_seconds: float = 0.0
    tpm_commands: int = 0
    # The enrollment request as sent, and its bearer token: recorded evidence that the
    # verifier can be fed again later, from this or any other TPM.
    enrollment_request: dict[str, Any] | None = None
    token: str | None = None


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


class PoweredOff(Exception):
    """The device lost power mid-flow: nothing after this point happens."""


# Items bound to one attestation session (its nonce); a new request after a failed one
# cannot reuse them.
_SESSION_BOUND_ITEMS = ("AIKAttestationClaim", "AadAIKAttestationClaim", "DiagnosticLog")


class WindowsClient:
    """One Windows device: it joins Entra, then attests and enrolls (see run())."""

    def __init__(self, config: ClientConfig, tpm: TPMDevice | None) -> None:
        self._config = config
        self._tpm = tpm
        self._esapi: TimedESAPI | None = None
        self._http = httpx.Client(timeout=config.http_timeout, verify=_tls_context())
        self.report = ClientReport(emm_device_id=config.emm_device_id or str(uuid.uuid4()))
        self._items: dict[str, str] = {}
        self._token: str | None = None
        self._device_credential: str | None = None  # from the MDM service's enrollment answer
        self._srk_handle: Any = None
        self._entra_signer: _Signer | None = None
        self._entra_device_id = ""
        self._reported_identity: TPMIdentity | None = None
        self._tpm_version: str | None = None
        self._mdm_key_existed = False
        self._transients: list[Any] = []  # loaded objects to flush when the session ends

    def __enter__(self) -> WindowsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._close_tpm()
        self._http.close()

    # --- bookkeeping -----------------------------------------------------------------

    @contextmanager
    def _step(self, name: str) -> Iterator[dict[str, str]]:
        note: dict[str, str] = {}
        start = time.perf_counter()
        try:
            yield note
        except ClientFailure as exc:
            self._record(name, False, exc.reason, start)
            raise
        except TSS2_Exception as exc:
            hresult = tpm_hresult(exc)
            reason = f"TPM error {exc} -> {describe(hresult)}"
            self._record(name, False, reason, start)
            raise ClientFailure(hresult, reason) from exc
        except httpx.HTTPError as exc:
            hresult = _network_hresult(exc)
            reason = f"{type(exc).__name__}: {exc or 'no answer'} -> {describe(hresult)}"
            self._record(name, False, reason, start)
            raise ClientFailure(hresult, reason) from exc
        self._record(name, True, note.get("detail", ""), start)

    def _record(self, name: str, ok: bool, detail: str, start: float) -> None:
        self.report.steps.append(
            ClientStep(step=name, ok=ok, detail=detail, seconds=round(time.perf_counter() - start, 4))
        )

    @property
    def _tpm_ctx(self) -> TimedESAPI:
        assert self._esapi is not None
        return self._esapi

    # --- the flow --------------------------------------------------------------------

    def run(self) -> ClientReport:
        """Join Entra, then enroll, attesting with the TPM when this Windows build can."""
        self.join()
        return self.enroll()

    def join(self) -> None:
        """Entra join: the device key, its registration, and the token enrollment presents.

        Enrollment goes on without a token if this fails; the server will say why.
        """
        try:
            with contextlib.suppress(ClientFailure):
                self._identity()
        finally:
            self._close_tpm()  # the TPM may change between joining and enrolling

    def enroll(self) -> ClientReport:
        """Attest (when this build can) and send the enrollment request."""
        behaviour = self._config.behaviour
        self._items = {}
        self._mdm_key_existed = False
        self.report.hresult = HResult.S_OK
        attests = _version(behaviour.enrollment_version) >= _version(
            ATTESTATION_ENROLLMENT_VERSION
        ) and supports_enrollment_attestation(self._config.inventory.os_version)
        try:
            if attests:
                try:
                    self._attest()
                    self._items["AttestationStatus"] = "Success"
                    self._items["AttestationStatusHResult"] = f"0x{HResult.S_OK:08X}"
                except ClientFailure as exc:
                    # An MDM key left by an earlier enrollment that cannot be attested again
                    # is what Windows reports, whatever else went wrong.
                    hresult = HResult.NTE_EXISTS if self._mdm_key_existed else exc.hresult
                    self._fail_attestation(hresult)
            else:
                self._record(
                    "attestation.skipped",
                    True,
                    "this Windows build does not attest",
                    time.perf_counter(),
                )
            self._enroll()
        except PoweredOff as stop:
            self._record("device.power_off", False, str(stop), time.perf_counter())
        finally:
            self._close_tpm()
        return self.report

    def check_in(self) -> list[str]:
        """The device's periodic MDM check-in; it carries out the commands it receives."""
        with self._step("mdm.checkin") as note:
            response = self._http.post(
                f"{self._config.endpoints.mdm}/enrollment/checkin",
                json={"emmDeviceId": self.report.emm_device_id},
                headers=self._device_headers(),
            )
            _raise_for_service(response)
            commands = [str(c.get("type", "")) for c in response.json().get("commands", [])]
            note["detail"] = f"commands: {', '.join(commands) or 'none'}"
        if "Attest" in commands:
            self.enroll()
        return commands

    def use_endpoints(self, endpoints: Endpoints) -> None:
        """The network changed under the device (a service came back or went away)."""
        self._config = replace(self._config, endpoints=endpoints)

    def _fail_attestation(self, hresult: int) -> None:
        self.report.hresult = hresult
        self._items["AttestationStatus"] = "Failure"
        self._items["AttestationStatusHResult"] = f"0x{hresult:08X}"

    def _open_tpm(self) -> TimedESAPI:
        if self._esapi is None:
            if self._tpm is None:
                raise ClientFailure(HResult.TBS_E_TPM_NOT_FOUND, "this device has no TPM")
            if self._tpm_version is None:
                self._tpm_version = _tpm_family(self._tpm.tcti)
            if self._tpm_version == "1.2":
                raise ClientFailure(HResult.TPM_E_PCP_UNSUPPORTED_TPM_VERSION, "the TPM answers as a TPM 1.2")
            try:
                self._esapi = TimedESAPI(self._tpm.tcti)
            except TSS2_Exception as exc:
                raise ClientFailure(HResult.TBS_E_TPM_NOT_FOUND, f"cannot reach the TPM: {exc}") from exc
        return self._esapi

    def _close_tpm(self) -> None:
        if self._esapi is not None:
            # No resource manager stands between the client and the TPM: objects left
            # loaded would fill its few transient slots for the next session.
            for handle in self._transients:
                with contextlib.suppress(TSS2_Exception):
                    self._esapi.flush_context(handle)
            self._transients.clear()
            self.report.tpm_seconds += self._esapi.seconds
            self.report.tpm_commands += self._esapi.commands
            self._esapi.close()
            self._esapi = None
            self._srk_handle = None

    # --- identity provider -----------------------------------------------------------

    def _identity(self) -> None:
        behaviour = self._config.behaviour
        inventory = self._config.inventory
        url = self._config.endpoints.identity
        assertion: str | None = None
        if behaviour.entra_joined:
            signer: _Signer | None = None
            if behaviour.entra_key_in_tpm:
                try:
                    with self._step("entra.device_key") as note:
                        self._open_tpm()
                        signer = _TPMSigner.create(self._tpm_ctx, self._srk())
                        note["detail"] = "RSA 2048 device key created in the TPM"
                except ClientFailure:
                    signer = None  # Windows joins with a software key when the TPM fails
            if signer is None:
                with self._step("entra.device_key") as note:
                    signer = _SoftwareSigner()
                    note["detail"] = "RSA 2048 device key created in software (not TPM-bound)"
            self._entra_signer = signer
            self._entra_device_id = self._register(signer, "entra.register")
            token_signer, token_device = signer, self._entra_device_id
            if behaviour.token_for_previous_device:
                token_signer = _SoftwareSigner()
                token_device = self._register(token_signer, "entra.previous_registration")
            with self._step("entra.assertion") as note:
                nonce = str(self._post(f"{url}/entra/nonce", {})["nonce"])
                assertion = token_signer.assertion(token_device, nonce, self)
                note["detail"] = f"signed for device {token_device} over the provider's nonce"
        with self._step("entra.token") as note:
            response = self._post(f"{url}/entra/token", {"assertion": assertion, "upn": inventory.upn})
            self._token = str(response["accessToken"])
            note["detail"] = "device token" if assertion else "user token (device not joined)"

    def _register(self, signer: _Signer, step: str) -> str:
        with self._step(step) as note:
            response = self._post(
                f"{self._config.endpoints.identity}/entra/devices",
                {"displayName": self._config.inventory.device_name, "keySpki": b64(signer.spki())},
            )
            device_id = str(response["deviceId"])
            note["detail"] = f"device ID {device_id}"
        return device_id

    # --- attestation -----------------------------------------------------------------

    def _attest(self) -> None:
        tpm = self._open_tpm()
        with self._step("tpm.properties") as note:
            identity = self._tpm_identity()
            note["detail"] = f"TPM 2.0, manufacturer {identity.manufacturer}, firmware {identity.version}"
        with self._step("tpm.ek") as note:
            ek_cert, ek_handle, ek_pub = self._endorsement_key()
            note["detail"] = "EK certificate read from NV" if ek_cert else "no EK certificate in NV"
            if ek_cert:
                from_cert = parse_tpm_san(x509.load_der_x509_certificate(ek_cert))
                if from_cert is not None:
                    # swtpm reports one manufacturer for every emulated TPM; the EK
                    # certificate names the vendor the TPM was manufactured as.
                    identity = from_cert
        self._reported_identity = identity
        with self._step("tpm.srk") as note:
            srk = self._srk()
            note["detail"] = "storage root key under the owner hierarchy"
        if not self._config.behaviour.sends_aik_items:
            tpm.flush_context(ek_handle)
            self._record("aik.skipped", True, "this client build has no AIK support", time.perf_counter())
            self._mdm_key_and_claims(srk, aik=None)
            if self._mdm_key_existed:
                raise ClientFailure(HResult.NTE_EXISTS, "the MDM key exists and there is no AIK to attest it")
            return
        with self._step("aik.create") as note:
            aik_private, aik_public, *_ = tpm.create(srk, TPM2B_SENSITIVE_CREATE(), _templates.aik())
            aik = tpm.load(srk, aik_private, aik_public)
            self._transients.append(aik)
            aik_pub = bytes(aik_public.marshal())
            note["detail"] = f"restricted signing key, name {bytes(aik_public.get_name()).hex()[:16]}…"
        self._items["AIKPub"] = b64(aik_pub)
        try:
            self._aik_certificate(ek_cert, ek_handle, ek_pub, aik, aik_pub)
        except ClientFailure:
            # Without an AIK certificate Windows still certifies its keys; the server
            # sees an AIKPub with no AIKCert.
            tpm.flush_context(ek_handle)
            with contextlib.suppress(ClientFailure):
                self._mdm_key_and_claims(srk, aik=aik)
            raise
        tpm.flush_context(ek_handle)
        self._mdm_key_and_claims(srk, aik=aik)
        if self._mdm_key_existed and not isinstance(self._entra_signer, _TPMSigner):
            raise ClientFailure(HResult.NTE_EXISTS, "the MDM key exists and the Entra key is not in the TPM")

    def _tpm_identity(self) -> TPMIdentity:
        tpm = self._tpm_ctx
        _, data = tpm.get_capability(TPM2_CAP.TPM_PROPERTIES, TPM2_PT.MANUFACTURER, 1)
        manufacturer = vendor_id_from_int(int(data.data.tpmProperties[0].value))
        _, data = tpm.get_capability(TPM2_CAP.TPM_PROPERTIES, _PT_FIRMWARE_VERSION_1, 1)
        firmware = int(data.data.tpmProperties[0].value)
        return TPMIdentity(f"id:{manufacturer}", "swtpm", f"id:{firmware:08X}")

    def _endorsement_key(self) -> tuple[bytes | None, Any, bytes]:
        tpm = self._tpm_ctx
        reader = NVReadEK(tpm)
        certificate: bytes | None = None
        template = None
        for ek_type in ("EK-RSA2048", "EK-ECC256"):
            try:
                certificate, template = create_ek_template(ek_type, reader)
            except ValueError:
                continue
            if certificate:
                break
        handle, public, *_ = tpm.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT)
        self._transients.append(handle)
        return certificate, handle, bytes(public.marshal())

    def _srk(self) -> Any:
        if self._srk_handle is None:
            handle, *_ = self._tpm_ctx.create_primary(
                TPM2B_SENSITIVE_CREATE(), _templates.srk(), ESYS_TR.OWNER
            )
            self._srk_handle = handle
            self._transients.append(handle)
        return self._srk_handle

    def _aik_certificate(
        self, ek_cert: bytes | None, ek_handle: Any, ek_pub: bytes, aik: Any, aik_pub: bytes
    ) -> None:
        tpm = self._tpm_ctx
        url = self._config.endpoints.aik_ca
        with self._step("aik.challenge") as note:
            body: dict[str, Any] = {"ekPub": b64(ek_pub), "aikPub": b64(aik_pub)}
            if ek_cert:
                body["ekCert"] = b64(ek_cert)
            challenge = self._post(f"{url}/aik/challenge", body)
            note["detail"] = f"challenge {challenge['challengeId']}"
        with self._step("aik.activate_credential") as note:
            blob, _ = TPM2B_ID_OBJECT.unmarshal(base64.b64decode(challenge["credentialBlob"]))
            secret, _ = TPM2B_ENCRYPTED_SECRET.unmarshal(base64.b64decode(challenge["encryptedSecret"]))
            session = tpm.start_auth_session(
                ESYS_TR.NONE,
                ESYS_TR.NONE,
                TPM2_SE.POLICY,
                TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
                TPM2_ALG.SHA256,
            )
            try:
                tpm.policy_secret(ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
                recovered = bytes(tpm.activate_credential(aik, ek_handle, blob, secret, session2=session))
            finally:
                tpm.flush_context(session)
            note["detail"] = "TPM2_ActivateCredential released the CA's secret"
        with self._step("aik.certificate") as note:
            response = self._post(
                f"{url}/aik/activate",
                {"challengeId": challenge["challengeId"], "secret": b64(recovered)},
            )
            self._items["AIKCert"] = str(response["aikCert"])
            note["detail"] = "AIK certificate received"

    def _mdm_key(self, srk: Any) -> tuple[Any, TPM2B_PUBLIC]:
        """The persisted MDM key: an earlier enrollment's, or a new one persisted now."""
        tpm = self._tpm_ctx
        with self._step("mdm.key") as note:
            try:
                existing = tpm.tr_from_tpmpublic(MDM_KEY_HANDLE)
            except TSS2_Exception:
                existing = None
            if existing is not None:
                public, *_ = tpm.read_public(existing)
                self._mdm_key_existed = True
                note["detail"] = f"MDM key of an earlier enrollment found at 0x{MDM_KEY_HANDLE:08X}"
                return existing, public
            private, public, *_ = tpm.create(srk, TPM2B_SENSITIVE_CREATE(), _templates.bound_signing_key())
            transient = tpm.load(srk, private, public)
            try:
                persistent = tpm.evict_control(ESYS_TR.OWNER, transient, MDM_KEY_HANDLE)
            finally:
                tpm.flush_context(transient)
            note["detail"] = f"MDM key created in the TPM and persisted at 0x{MDM_KEY_HANDLE:08X}"
            return persistent, public

    def _mdm_key_and_claims(self, srk: Any, *, aik: Any) -> None:
        tpm = self._tpm_ctx
        mdm, public = self._mdm_key(srk)
        self._items["MDMPub"] = b64(bytes(public.marshal()))
        if aik is None:
            return
        with self._step("enrollment.nonce") as note:
            response = self._http.get(
                f"{self._config.endpoints.mdm}/enrollment/nonce",
                params={
                    "emmDeviceId": self.report.emm_device_id,
                    "deviceName": self._config.inventory.device_name,
                },
                headers=self._device_headers(),
            )
            _raise_for_service(response)
            nonce = base64.b64decode(response.json()["nonce"])
            note["detail"] = f"nonce {nonce.hex()[:16]}…"
        if self._config.behaviour.powers_off_after_nonce:
            raise PoweredOff("the device lost power after fetching the nonce")
        with self._step("mdm.certify") as note:
            self._items["AIKAttestationClaim"] = b64(_certify(tpm, mdm, aik, nonce))
            note["detail"] = "TPM2_Certify of the MDM key by the AIK"
        signer = self._entra_signer
        if isinstance(signer, _TPMSigner):
            with self._step("entra.certify") as note:
                key = tpm.load(srk, signer.private, signer.public)
                try:
                    self._items["AadAIKAttestationClaim"] = b64(_certify(tpm, key, aik, nonce))
                finally:
                    tpm.flush_context(key)
                self._items["AADPub"] = b64(bytes(signer.public.marshal()))
                note["detail"] = "TPM2_Certify of the Entra device key by the AIK"

    # --- enrollment ------------------------------------------------------------------

    def _enroll(self) -> None:
        inventory = self._config.inventory
        identity = self._reported_identity
        items: dict[str, str] = {
            "DeviceName": inventory.device_name,
            "EmmDeviceId": self.report.emm_device_id,
            "OSVersion": inventory.os_version,
            "OSEdition": inventory.os_edition,
            "HWDevID": inventory.serial,
            "DeviceManufacturer": inventory.manufacturer,
            "DeviceModel": inventory.model,
            "Ownership": inventory.ownership,
        }
        if identity is not None:
            items["TPMVersion"] = "2.0"
            items["TPMManufacturer"] = identity.manufacturer
            items["TPMFirmwareVersion"] = identity.version
        elif self._tpm_version is not None:
            items["TPMVersion"] = self._tpm_version
        items.update(self._items)
        size = self._config.behaviour.diagnostic_log_bytes
        if size:
            items["DiagnosticLog"] = base64.b64encode(b"\0" * size).decode("ascii")
        try:
            self._send_enrollment(items, "enrollment.request")
        except ClientFailure as exc:
            # The attestation request did not get through. Windows sends a new request that
            # reports what stopped it, without the evidence bound to the lost session.
            retry = {k: v for k, v in items.items() if k not in _SESSION_BOUND_ITEMS}
            if retry.get("AttestationStatus") != "Failure" and "AttestationStatus" in retry:
                retry["AttestationStatus"] = "Failure"
                retry["AttestationStatusHResult"] = f"0x{exc.hresult:08X}"
            try:
                self._send_enrollment(retry, "enrollment.retry")
            except ClientFailure as again:
                self.report.hresult = again.hresult
                return
        self.report.enrolled = True

    def _send_enrollment(self, items: dict[str, str], step: str) -> None:
        headers = self._device_headers()
        self.report.sent_items = sorted(items)
        with self._step(step) as note:
            body = {
                "EnrollmentVersion": self._config.behaviour.enrollment_version,
                "ContextItems": items,
            }
            self.report.enrollment_request = body
            self.report.token = self._token
            response = self._http.post(f"{self._config.endpoints.mdm}/enrollment", json=body, headers=headers)
            _raise_for_service(response)
            answer = response.json()
            if answer.get("deviceCredential"):
                self._device_credential = str(answer["deviceCredential"])
            note["detail"] = f"enrolled as {answer['deviceId']}"

    def _device_headers(self) -> dict[str, str]:
        """The Entra token and, once enrolled, the device credential the MDM service issued."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        if self._device_credential:
            headers["Device-Credential"] = self._device_credential
        return headers

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(url, json=body)
        _raise_for_service(response)
        result: dict[str, Any] = response.json()
        return result


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds; a worker runs many devices.
    return httpx.create_ssl_context()


def _tpm_family(tcti: tuple[str, str]) -> str:
    """'1.2' or '2.0', from the tag of the TPM's answer to a TPM2_GetCapability.

    TBS tells Windows the TPM's version before anything else; a TSS only sees a
    response it cannot parse, so the client asks the TPM directly.
    """
    try:
        channel = TCTILdr(*tcti)
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


def _certify(tpm: TimedESAPI, key: Any, aik: Any, nonce: bytes) -> bytes:
    attest, signature = tpm.certify(key, aik, nonce, TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
    return bytes(attest.marshal()) + bytes(signature.marshal())


def _raise_for_service(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        hresult = int(str(body.get("hresult", "0x80004005")), 16)
        reason = f"HTTP {response.status_code} {body.get('error', '')}: {body.get('reason', '')}"
    except (ValueError, AttributeError):
        hresult, reason = HResult.E_FAIL, f"HTTP {response.status_code}"
    raise ClientFailure(hresult, reason)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def _network_hresult(exc: httpx.HTTPError) -> int:
    if isinstance(exc, httpx.ConnectError):
        return HResult.WINHTTP_CANNOT_CONNECT
    if isinstance(exc, httpx.TimeoutException):
        return HResult.WINHTTP_TIMEOUT
    return HResult.WINHTTP_CONNECTION_ERROR


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _Signer:
    def spki(self) -> bytes:
        raise NotImplementedError

    def sign_rs256(self, message: bytes, client: WindowsClient) -> bytes:
        raise NotImplementedError

    def assertion(self, device_id: str, nonce: str, client: WindowsClient) -> str:
        now = int(time.time())
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {"sub": device_id, "iat": now, "request_nonce": nonce}
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode()
        return f"{header}.{payload}.{_b64url(self.sign_rs256(signing_input, client))}"


class _TPMSigner(_Signer):
    """The Entra device key in the TPM, kept as its key blobs; it signs through TPM2_Sign."""

    def __init__(self, private: TPM2B_PRIVATE, public: TPM2B_PUBLIC) -> None:
        self.private = private
        self.public = public

    @classmethod
    def create(cls, tpm: TimedESAPI, srk: Any) -> _TPMSigner:
        private, public, *_ = tpm.create(srk, TPM2B_SENSITIVE_CREATE(), _templates.bound_signing_key())
        return cls(private, public)

    def spki(self) -> bytes:
        return bytes(self.public.to_der())

    def sign_rs256(self, message: bytes, client: WindowsClient) -> bytes:
        tpm = client._open_tpm()
        handle = tpm.load(client._srk(), self.private, self.public)
        try:
            ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
            scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.RSASSA)
            scheme.details.any.hashAlg = TPM2_ALG.SHA256
            signature = tpm.sign(handle, hashlib.sha256(message).digest(), scheme, ticket)
        finally:
            tpm.flush_context(handle)
        return bytes(signature.signature.rsassa.sig)


class _SoftwareSigner(_Signer):
    """An Entra device key held in software, as after an offline domain join."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def spki(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_rs256(self, message: bytes, client: WindowsClient) -> bytes:
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())
