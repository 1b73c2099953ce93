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

from cryptography import x509

from ..pki import parse_tpm_san
from ..protocol import ATTESTATION_ENROLLMENT_VERSION, b64
from ..status import HResult
from ..windows import MDM_KEY_HANDLE, supports_enrollment_attestation
from ._base import ClientReport, DeviceBase
from ._entra import TPMDeviceKey
from ._failure import AuthenticationRefused, ClientFailure
from ._online_ek import fetch_online_certificate
from ._provider import EndorsementKey, LoadedKey, TPMProvider
from ._push import PushNote
from ._schedule import TPM_NOT_READY, Trigger, retry_reason


class PoweredOff(Exception):
    """The device lost power mid-flow: nothing after this point happens."""


# Items bound to one attestation session (its nonce); a new request after a failed one
# cannot reuse them.
_SESSION_BOUND_ITEMS = ("AIKAttestationClaim", "AadAIKAttestationClaim", "DiagnosticLog")


class WindowsClient(DeviceBase):
    """One Windows device: it joins Entra, then attests and enrolls (see run()).

    `tpm` is the device's TPM: a running TPM (reached through its TCTI with tpm2-pytss),
    any other TPMProvider, or None for a device without a TPM.
    """

    # --- the flow --------------------------------------------------------------------

    def run(self) -> ClientReport:
        """Join Entra, then enroll, attesting with the TPM when this Windows build can."""
        self.join()
        return self.enroll()

    def join(self) -> None:
        """Entra join; on an Autopilot path, after the TPM attestation that comes first."""
        if self._config.behaviour.provisioning != "user-driven" and not self._provisioned:
            try:
                self._autopilot_tpm_attestation()
            except ClientFailure as exc:
                self.stopped = f"Autopilot stopped at 'Securing your hardware': {exc.reason}"
                self._record("autopilot.stopped", False, self.stopped, time.perf_counter())
                return
            finally:
                self._close_tpm()
            self._provisioned = True
        super().join()

    def _autopilot_tpm_attestation(self) -> None:
        """Autopilot pre-provisioning and self-deploying mode attest the TPM with the AIK
        service before the device is provisioned: EK certificate, AIK, TPM2_ActivateCredential.
        Without it the device is not provisioned at all (so it never enrolls)."""
        tpm = self._open_tpm()
        with self._step("autopilot.tpm") as note:
            self._reported_identity = tpm.identity()
            ek = tpm.endorsement_key()
            tpm.storage_root_key()
            aik = tpm.create_aik()
            note["detail"] = f"{self._config.behaviour.provisioning}: TPM attestation before provisioning"
        try:
            self._aik_certificate(tpm, ek, aik)
        finally:
            tpm.flush(ek)
            self._items = {}  # that AIK certificate is Autopilot's, not this enrollment's evidence
        self._record(
            "autopilot.provisioned", True, "TPM attested; the device is provisioned", time.perf_counter()
        )

    def enroll(self, trigger: Trigger = "first-enrollment") -> ClientReport:
        """Attest (when this build can) and send the enrollment request; `trigger` says why."""
        if self.stopped:
            self._record("enrollment.skipped", True, self.stopped, time.perf_counter())
            return self.report
        behaviour = self._config.behaviour
        self._items = {"EnrollmentTrigger": trigger}
        self._mdm_key_existed = False
        self.report.hresult = HResult.S_OK
        self.retry = ""
        version = behaviour.enrollment_version
        if self._enrollments == 0 and behaviour.first_enrollment_version:
            version = behaviour.first_enrollment_version
        self._enrollments += 1
        if self._enrollments > 1:
            self._fresh_token()
        attests = _version(version) >= _version(ATTESTATION_ENROLLMENT_VERSION) and (
            supports_enrollment_attestation(self._config.inventory.os_version)
        )
        try:
            if attests:
                self._entra_key_was_software = not isinstance(self._device_key, TPMDeviceKey)
                try:
                    self._attest()
                    self._items["AttestationStatus"] = "Success"
                    self._items["AttestationStatusHResult"] = f"0x{HResult.S_OK:08X}"
                except ClientFailure as exc:
                    # An MDM key left by an earlier enrollment that cannot be attested again
                    # is what Windows reports, unless the TPM itself was not ready.
                    existed = self._mdm_key_existed and exc.hresult not in TPM_NOT_READY
                    self._fail_attestation(HResult.NTE_EXISTS if existed else exc.hresult)
            else:
                self._record("attestation.skipped", True, "this build does not attest", time.perf_counter())
                self._tpm_inventory()
            if not self._enroll(version) and not self.retry:
                self.retry = "the enrollment request did not get through"
        except PoweredOff as stop:
            self._record("device.power_off", False, str(stop), time.perf_counter())
            self.retry = "the device lost power during attestation"
        finally:
            self._close_tpm()
        return self.report

    def check_in(self) -> list[str]:
        """The scheduled MDM check-in: carry out an Attest command, or retry a temporary failure.

        A device whose enrollment never completed has nothing to check in with: it enrolls.
        """
        if self.stopped:
            return []
        if not self.report.enrolled:
            self._record("client.retry", True, self.retry or "not enrolled", time.perf_counter())
            self.enroll("device-retry")
            return []
        try:
            with self._step("mdm.checkin") as note:
                commands = self._service.check_in(self.report.emm_device_id, self._token)
                note["detail"] = f"commands: {', '.join(commands) or 'none'}"
        except AuthenticationRefused:
            # The service does not know this device as enrolled: its enrollment was refused
            # (a token it could not accept). Windows renews the token and enrolls again.
            if self._service.device_credential is None:
                self._record(
                    "client.retry", True, "the MDM service refused the check-in: 401", time.perf_counter()
                )
                self.enroll("device-retry")
            return []
        except ClientFailure:
            return []  # the next scheduled check-in tries again
        if self._entra_key_was_software and isinstance(self._device_key, TPMDeviceKey):
            self.retry = self.retry or "the Entra device key is in the TPM now"
        if "Attest" in commands:
            self.enroll("attest-action")
        elif self.retry:
            self._record("client.retry", True, self.retry, time.perf_counter())
            self.enroll("device-retry")
        return commands

    def sync_after_push(self, notes: list[PushNote]) -> list[str]:
        """The MDM session a push starts: a check-in now, whatever the schedule says."""
        if self._push is not None:
            self._push.take(notes)
        actions = ", ".join(str(n.action_id) for n in notes)
        self._record("push.received", True, f"sync requested by action {actions}", time.perf_counter())
        return self.check_in()

    def _fail_attestation(self, hresult: int) -> None:
        self.report.hresult = hresult
        without_cert = "AIKPub" in self._items and "AIKCert" not in self._items
        self.retry = retry_reason(hresult, aik_pub_without_cert=without_cert)
        self._items["AttestationStatus"] = "Failure"
        self._items["AttestationStatusHResult"] = f"0x{hresult:08X}"

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
                self.report.emm_device_id,
                self._config.inventory.device_name,
                self._token,
                self._items.get("EnrollmentTrigger", ""),
            )
            self.report.nonce, self.report.nonce_expires_at = nonce, expires_at
            note["detail"] = f"nonce {nonce.hex()[:16]}…"
        if self._power_cut_pending:
            self._power_cut_pending = False
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

    def _tpm_inventory(self) -> None:
        """The TPM facts a build that does not attest still reports from hardware inventory."""
        if self._tpm is None or self._tpm.version not in (None, "2.0"):
            return
        with contextlib.suppress(ClientFailure):
            tpm = self._open_tpm()
            identity = tpm.identity()
            ek = tpm.endorsement_key()
            tpm.flush(ek)
            if ek.certificate:
                identity = parse_tpm_san(x509.load_der_x509_certificate(ek.certificate)) or identity
            self._reported_identity = identity

    def _enroll(self, version: str) -> bool:
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
        family = self._tpm.version if self._tpm is not None else None
        if identity is not None:
            items["TPMVersion"] = "2.0"
            items["TPMManufacturer"] = identity.manufacturer
            items["TPMFirmwareVersion"] = identity.version
        elif family is not None:
            items["TPMVersion"] = family
        items.update(self._items)
        size = self._config.behaviour.diagnostic_log_bytes
        if size:
            items["DiagnosticLog"] = base64.b64encode(b"\0" * size).decode("ascii")
        try:
            self._send_enrollment(items, "enrollment.request", version)
        except ClientFailure as exc:
            # The attestation request did not get through. Windows sends a new request that
            # reports what stopped it, without the evidence bound to the lost session.
            retry = {k: v for k, v in items.items() if k not in _SESSION_BOUND_ITEMS}
            if retry.get("AttestationStatus") != "Failure" and "AttestationStatus" in retry:
                retry["AttestationStatus"] = "Failure"
                retry["AttestationStatusHResult"] = f"0x{exc.hresult:08X}"
            try:
                self._send_enrollment(retry, "enrollment.retry", version)
            except ClientFailure as again:
                self.report.hresult = again.hresult
                return False
        self.report.enrolled = True
        self._hold_push_channel()
        return True

    def _send_enrollment(self, items: dict[str, str], step: str, version: str) -> None:
        self.report.sent_items = sorted(items)
        with self._step(step) as note:
            body = {
                "EnrollmentVersion": version,
                "ContextItems": items,
            }
            self.report.enrollment_request = body
            self.report.token = self._token
            self.report.enrollment_judged_at = None  # until this request's answer says
            note["detail"] = f"enrolled as {self._service.enroll(body, self._token)}"
            self.report.enrollment_judged_at = self._service.judged_at


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())
