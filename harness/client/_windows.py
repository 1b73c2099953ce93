"""The simulated Windows client: the enrollment attestation flow a Windows device runs.

Every fact the client reports comes from what it met: a TPM return code, a
refused connection, a service's answer. When a step fails the client keeps
going as far as Windows would, reports AttestationStatus Failure with the
HRESULT of what stopped it, and still enrolls.

This module holds the flow and Windows' rules only. The TPM work goes through a
TPMProvider (harness.client's PytssTPM for any TCTI), the HTTP work through the
ServiceClient; both raise ClientFailure with the HRESULT Windows would report.
"""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography import x509

from ..hresult import HResult
from ..protocol import ATTESTATION_ENROLLMENT_VERSION, b64
from ..results import ClientStep
from ..tcg import TPMIdentity, parse_tpm_san
from ..tpm import RunningTPM
from ..windows import MDM_KEY_HANDLE, supports_enrollment_attestation
from ._config import ClientConfig, Endpoints
from ._entra import DeviceKey, SoftwareDeviceKey, TPMDeviceKey
from ._failure import ClientFailure
from ._online_ek import fetch_online_certificate
from ._provider import EndorsementKey, LoadedKey, TPMProvider
from ._pytss import PytssTPM
from ._service import ServiceClient


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
    # The enrollment nonce as the service issued it (value, expiresAt), and the keys the
    # client registered with the identity provider by device ID: the rest of a bundle.
    nonce: bytes | None = None
    nonce_expires_at: str | None = None
    entra_keys: dict[str, bytes] = field(default_factory=dict)


class PoweredOff(Exception):
    """The device lost power mid-flow: nothing after this point happens."""


# Items bound to one attestation session (its nonce); a new request after a failed one
# cannot reuse them.
_SESSION_BOUND_ITEMS = ("AIKAttestationClaim", "AadAIKAttestationClaim", "DiagnosticLog")


class WindowsClient:
    """One Windows device: it joins Entra, then attests and enrolls (see run()).

    `tpm` is the device's TPM: a running TPM (reached through its TCTI with tpm2-pytss),
    any other TPMProvider, or None for a device without a TPM.
    """

    def __init__(self, config: ClientConfig, tpm: RunningTPM | TPMProvider | None) -> None:
        self._config = config
        self._tpm: TPMProvider | None = (
            tpm if tpm is None or isinstance(tpm, TPMProvider) else PytssTPM(tpm.tcti)
        )
        self._service = ServiceClient(config.endpoints, timeout=config.http_timeout)
        self.report = ClientReport(emm_device_id=config.emm_device_id or str(uuid.uuid4()))
        self._items: dict[str, str] = {}
        self._token: str | None = None
        self._device_key: DeviceKey | None = None
        self._reported_identity: TPMIdentity | None = None
        self._mdm_key_existed = False

    def __enter__(self) -> WindowsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._close_tpm()
        self._service.close()

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
        self._record(name, True, note.get("detail", ""), start)

    def _record(self, name: str, ok: bool, detail: str, start: float) -> None:
        self.report.steps.append(
            ClientStep(step=name, ok=ok, detail=detail, seconds=round(time.perf_counter() - start, 4))
        )

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
            commands = self._service.check_in(self.report.emm_device_id, self._token)
            note["detail"] = f"commands: {', '.join(commands) or 'none'}"
        if "Attest" in commands:
            self.enroll()
        return commands

    def use_endpoints(self, endpoints: Endpoints) -> None:
        """The network changed under the device (a service came back or went away)."""
        self._config = replace(self._config, endpoints=endpoints)
        self._service.endpoints = endpoints

    def _fail_attestation(self, hresult: int) -> None:
        self.report.hresult = hresult
        self._items["AttestationStatus"] = "Failure"
        self._items["AttestationStatusHResult"] = f"0x{hresult:08X}"

    def _open_tpm(self) -> TPMProvider:
        if self._tpm is None:
            raise ClientFailure(HResult.TBS_E_TPM_NOT_FOUND, "this device has no TPM")
        self._tpm.open()
        return self._tpm

    def _close_tpm(self) -> None:
        if self._tpm is not None:
            self._tpm.close()
            self.report.tpm_seconds = self._tpm.seconds
            self.report.tpm_commands = self._tpm.commands

    # --- identity provider -----------------------------------------------------------

    def _identity(self) -> None:
        behaviour = self._config.behaviour
        assertion: str | None = None
        if behaviour.entra_joined:
            key: DeviceKey | None = None
            if behaviour.entra_key_in_tpm:
                try:
                    with self._step("entra.device_key") as note:
                        key = TPMDeviceKey.create(self._open_tpm())
                        note["detail"] = "RSA 2048 device key created in the TPM"
                except ClientFailure:
                    key = None  # Windows joins with a software key when the TPM fails
            if key is None:
                with self._step("entra.device_key") as note:
                    key = SoftwareDeviceKey()
                    note["detail"] = "RSA 2048 device key created in software (not TPM-bound)"
            self._device_key = key
            device_id = self._register(key, "entra.register")
            token_key, token_device = key, device_id
            if behaviour.token_for_previous_device:
                token_key = SoftwareDeviceKey()
                token_device = self._register(token_key, "entra.previous_registration")
            with self._step("entra.assertion") as note:
                assertion = token_key.assertion(token_device, self._service.assertion_nonce())
                note["detail"] = f"signed for device {token_device} over the provider's nonce"
        with self._step("entra.token") as note:
            self._token = self._service.token(assertion, self._config.inventory.upn)
            note["detail"] = "device token" if assertion else "user token (device not joined)"

    def _register(self, key: DeviceKey, step: str) -> str:
        with self._step(step) as note:
            device_id = self._service.register_device(self._config.inventory.device_name, key.spki())
            note["detail"] = f"device ID {device_id}"
        self.report.entra_keys[device_id] = key.spki()
        return device_id

    # --- attestation -----------------------------------------------------------------

    def _attest(self) -> None:
        tpm = self._open_tpm()
        with self._step("tpm.properties") as note:
            identity = tpm.identity()
            note["detail"] = f"TPM 2.0, manufacturer {identity.manufacturer}, firmware {identity.version}"
        with self._step("tpm.ek") as note:
            ek = tpm.endorsement_key()
            note["detail"] = "EK certificate read from NV" if ek.certificate else "no EK certificate in NV"
            if ek.chain:
                note["detail"] += f", {len(ek.chain)} chain certificate(s) from 0x01C00100-0x01C001FF"
            if ek.certificate:
                from_cert = parse_tpm_san(x509.load_der_x509_certificate(ek.certificate))
                if from_cert is not None:
                    # swtpm reports one manufacturer for every emulated TPM; the EK
                    # certificate names the vendor the TPM was manufactured as.
                    identity = from_cert
        self._reported_identity = identity
        with self._step("tpm.srk") as note:
            tpm.storage_root_key()
            note["detail"] = "storage root key under the owner hierarchy"
        if not self._config.behaviour.sends_aik_items:
            tpm.flush(ek)
            self._record("aik.skipped", True, "this client build has no AIK support", time.perf_counter())
            self._mdm_key_and_claims(tpm, aik=None)
            if self._mdm_key_existed:
                raise ClientFailure(HResult.NTE_EXISTS, "the MDM key exists and there is no AIK to attest it")
            return
        with self._step("aik.create") as note:
            aik = tpm.create_aik()
            note["detail"] = f"restricted signing key, name {aik.name.hex()[:16]}…"
        self._items["AIKPub"] = b64(aik.public)
        try:
            self._aik_certificate(tpm, ek, aik)
        except ClientFailure:
            # Without an AIK certificate Windows still certifies its keys; the server
            # sees an AIKPub with no AIKCert.
            tpm.flush(ek)
            with contextlib.suppress(ClientFailure):
                self._mdm_key_and_claims(tpm, aik=aik)
            raise
        tpm.flush(ek)
        self._mdm_key_and_claims(tpm, aik=aik)
        if self._mdm_key_existed and not isinstance(self._device_key, TPMDeviceKey):
            raise ClientFailure(HResult.NTE_EXISTS, "the MDM key exists and the Entra key is not in the TPM")

    def _online_ek_certificate(self, ek: EndorsementKey) -> bytes | None:
        """Windows asks the TPM vendor's service for an EK certificate NV does not hold."""
        service = self._config.endpoints.ek_service
        if not service or self._reported_identity is None:
            return None
        with self._step("ek.online_certificate") as note:
            certificate, note["detail"] = fetch_online_certificate(
                self._service, service, self._reported_identity.manufacturer, ek.public
            )
        from_cert = parse_tpm_san(x509.load_der_x509_certificate(certificate)) if certificate else None
        if from_cert is not None:
            self._reported_identity = from_cert
        return certificate

    def _aik_certificate(self, tpm: TPMProvider, ek: EndorsementKey, aik: LoadedKey) -> None:
        certificate = ek.certificate or self._online_ek_certificate(ek)
        with self._step("aik.challenge") as note:
            challenge = self._service.aik_challenge(ek.public, aik.public, certificate, ek.chain)
            note["detail"] = f"challenge {challenge.challenge_id}"
        with self._step("aik.activate_credential") as note:
            secret = tpm.activate_credential(aik, ek, challenge.credential_blob, challenge.encrypted_secret)
            note["detail"] = "TPM2_ActivateCredential released the CA's secret"
        with self._step("aik.certificate") as note:
            self._items["AIKCert"] = self._service.aik_certificate(challenge.challenge_id, secret)
            note["detail"] = "AIK certificate received"

    def _mdm_key(self, tpm: TPMProvider) -> LoadedKey:
        """The persisted MDM key: an earlier enrollment's, or a new one persisted now."""
        with self._step("mdm.key") as note:
            existing = tpm.find_persistent_key(MDM_KEY_HANDLE)
            if existing is not None:
                self._mdm_key_existed = True
                note["detail"] = f"MDM key of an earlier enrollment found at 0x{MDM_KEY_HANDLE:08X}"
                return existing
            key = tpm.create_persistent_key(MDM_KEY_HANDLE)
            note["detail"] = f"MDM key created in the TPM and persisted at 0x{MDM_KEY_HANDLE:08X}"
            return key

    def _mdm_key_and_claims(self, tpm: TPMProvider, *, aik: LoadedKey | None) -> None:
        mdm = self._mdm_key(tpm)
        self._items["MDMPub"] = b64(mdm.public)
        if aik is None:
            return
        with self._step("enrollment.nonce") as note:
            nonce, expires_at = self._service.enrollment_nonce(
                self.report.emm_device_id, self._config.inventory.device_name, self._token
            )
            self.report.nonce, self.report.nonce_expires_at = nonce, expires_at
            note["detail"] = f"nonce {nonce.hex()[:16]}…"
        if self._config.behaviour.powers_off_after_nonce:
            raise PoweredOff("the device lost power after fetching the nonce")
        with self._step("mdm.certify") as note:
            self._items["AIKAttestationClaim"] = b64(tpm.certify(mdm, aik, nonce))
            note["detail"] = "TPM2_Certify of the MDM key by the AIK"
        key = self._device_key
        if isinstance(key, TPMDeviceKey):
            with self._step("entra.certify") as note:
                self._items["AadAIKAttestationClaim"] = b64(tpm.certify_blob(key.blob, aik, nonce))
                self._items["AADPub"] = b64(key.blob.public)
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
        version = self._tpm.version if self._tpm is not None else None
        if identity is not None:
            items["TPMVersion"] = "2.0"
            items["TPMManufacturer"] = identity.manufacturer
            items["TPMFirmwareVersion"] = identity.version
        elif version is not None:
            items["TPMVersion"] = version
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
        self.report.sent_items = sorted(items)
        with self._step(step) as note:
            body = {
                "EnrollmentVersion": self._config.behaviour.enrollment_version,
                "ContextItems": items,
            }
            self.report.enrollment_request = body
            self.report.token = self._token
            note["detail"] = f"enrolled as {self._service.enroll(body, self._token)}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())
