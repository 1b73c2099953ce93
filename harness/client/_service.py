"""The service client: the HTTP protocol of the AIK CA, the identity provider and MDM enrollment.

A refused connection, a time-out or a service's error answer becomes a
ClientFailure with the HRESULT Windows reports for it (WinHTTP errors, or the
HRESULT the service put in its error body).
"""

from __future__ import annotations

import base64
import functools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..protocol import b64
from ..status import HResult, describe
from ._config import Endpoints
from ._failure import AuthenticationRefused, ClientFailure, reported


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds; a worker runs many devices.
    return httpx.create_ssl_context()


def _network_hresult(exc: httpx.HTTPError) -> int:
    if isinstance(exc, httpx.ConnectError):
        return HResult.WINHTTP_CANNOT_CONNECT
    if isinstance(exc, httpx.TimeoutException):
        return HResult.WINHTTP_TIMEOUT
    return HResult.WINHTTP_CONNECTION_ERROR


def _network_failure(exc: httpx.HTTPError) -> ClientFailure:
    hresult = _network_hresult(exc)
    return ClientFailure(hresult, f"{type(exc).__name__}: {exc or 'no answer'} -> {describe(hresult)}")


# A network error in a service method becomes the ClientFailure Windows would report.
_reported = reported(httpx.HTTPError, _network_failure)


def _raise_for_service(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        hresult = int(str(body.get("hresult", "0x80004005")), 16)
        reason = f"HTTP {response.status_code} {body.get('error', '')}: {body.get('reason', '')}"
    except (ValueError, AttributeError):
        hresult, reason = HResult.E_FAIL, f"HTTP {response.status_code}"
    if response.status_code == 401:
        raise AuthenticationRefused(hresult, reason)
    raise ClientFailure(hresult, reason)


@dataclass(frozen=True)
class AikChallenge:
    """The AIK CA's challenge: a credential only the TPM holding the EK and the AIK can activate."""

    challenge_id: str
    credential_blob: bytes  # marshalled TPM2B_ID_OBJECT
    encrypted_secret: bytes  # marshalled TPM2B_ENCRYPTED_SECRET


class ServiceClient:
    """One device's HTTP client for every service it talks to, on kept-alive connections."""

    def __init__(self, endpoints: Endpoints, *, timeout: float) -> None:
        self.endpoints = endpoints
        self._http = httpx.Client(timeout=timeout, verify=_tls_context())
        # Issued by the MDM service at enrollment; the nonce request, later enrollments and
        # check-ins carry it to prove they come from the device that enrolled.
        self.device_credential: str | None = None
        self.judged_at: str | None = None  # the service's clock at the last enrollment it answered

    def close(self) -> None:
        self._http.close()

    def _post(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = self._http.post(url, json=body, headers=headers)
        _raise_for_service(response)
        result: dict[str, Any] = response.json()
        return result

    # --- identity provider (the Entra role) ---------------------------------------------

    @_reported
    def register_device(self, display_name: str, spki: bytes) -> str:
        """Register a device key; returns the device ID the provider gave it."""
        response = self._post(
            f"{self.endpoints.identity}/entra/devices", {"displayName": display_name, "keySpki": b64(spki)}
        )
        return str(response["deviceId"])

    @_reported
    def assertion_nonce(self) -> str:
        return str(self._post(f"{self.endpoints.identity}/entra/nonce", {})["nonce"])

    @_reported
    def token(self, assertion: str | None, upn: str) -> str:
        """A device token for a signed assertion; a user token without one."""
        response = self._post(f"{self.endpoints.identity}/entra/token", {"assertion": assertion, "upn": upn})
        return str(response["accessToken"])

    # --- the TPM vendor's EK-certificate service ------------------------------------------

    @_reported
    def online_ek_certificate(self, url: str) -> bytes | None:
        """The EK certificate the vendor's service holds for this EK, DER; None when it has none."""
        response = self._http.get(url)
        if response.status_code == 404:
            return None
        _raise_for_service(response)
        return response.content

    # --- AIK certificate authority --------------------------------------------------------

    @_reported
    def aik_challenge(
        self,
        ek_public: bytes,
        aik_public: bytes,
        ek_certificate: bytes | None,
        ek_chain: Sequence[bytes] = (),
    ) -> AikChallenge:
        body: dict[str, Any] = {"ekPub": b64(ek_public), "aikPub": b64(aik_public)}
        if ek_certificate:
            body["ekCert"] = b64(ek_certificate)
        if ek_chain:
            body["ekChain"] = [b64(der) for der in ek_chain]
        challenge = self._post(f"{self.endpoints.aik_ca}/aik/challenge", body)
        return AikChallenge(
            challenge_id=str(challenge["challengeId"]),
            credential_blob=base64.b64decode(challenge["credentialBlob"]),
            encrypted_secret=base64.b64decode(challenge["encryptedSecret"]),
        )

    @_reported
    def aik_certificate(self, challenge_id: str, secret: bytes) -> str:
        """The AIK certificate (base64 DER, as sent on) for the secret the TPM released."""
        response = self._post(
            f"{self.endpoints.aik_ca}/aik/activate", {"challengeId": challenge_id, "secret": b64(secret)}
        )
        return str(response["aikCert"])

    # --- MDM enrollment -------------------------------------------------------------------

    def _device_headers(self, token: str | None) -> dict[str, str]:
        """The Entra token and, once enrolled, the device credential the MDM service issued."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self.device_credential:
            headers["Device-Credential"] = self.device_credential
        return headers

    @_reported
    def enrollment_nonce(
        self, emm_device_id: str, device_name: str, token: str | None, trigger: str = ""
    ) -> tuple[bytes, str]:
        """The nonce and when it expires (ISO 8601, as the service said)."""
        params = {"emmDeviceId": emm_device_id, "deviceName": device_name}
        if trigger:
            params["trigger"] = trigger
        response = self._http.get(
            f"{self.endpoints.mdm}/enrollment/nonce",
            params=params,
            headers=self._device_headers(token),
        )
        _raise_for_service(response)
        answer = response.json()
        return base64.b64decode(answer["nonce"]), str(answer.get("expiresAt", ""))

    @_reported
    def enroll(self, body: dict[str, Any], token: str | None) -> str:
        """Send an enrollment request; returns the device ID the service enrolled."""
        answer = self._post(f"{self.endpoints.mdm}/enrollment", body, self._device_headers(token))
        if answer.get("deviceCredential"):
            self.device_credential = str(answer["deviceCredential"])
        self.judged_at = str(answer["judgedAt"]) if answer.get("judgedAt") else None
        return str(answer["deviceId"])

    @_reported
    def check_in(self, emm_device_id: str, token: str | None) -> list[str]:
        """The periodic check-in; returns the types of the commands the service sent."""
        response = self._post(
            f"{self.endpoints.mdm}/enrollment/checkin",
            {"emmDeviceId": emm_device_id},
            self._device_headers(token),
        )
        return [str(c.get("type", "")) for c in response.get("commands", [])]
