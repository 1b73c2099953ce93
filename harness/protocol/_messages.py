"""The request and response models of the AIK CA, the identity provider, enrollment, check-in
and the push channel, and the report's columns."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
)

from ._fields import (
    MAX_EK_CHAIN,
    MAX_TEXT,
    PLAIN_TEXT_PATTERN,
    B64In,
    DeviceIdText,
    HResultText,
    IdText,
    ShortText,
    _Model,
)


class AikChallengeRequest(_Model):
    """Step 1 of AIK enrollment: the TPM's endorsement key and the AIK to certify."""

    ek_cert: B64In | None = Field(
        default=None,
        alias="ekCert",
        description="The EK certificate read from the TPM's NV, DER, base64. Without it the TPM "
        "cannot be traced to a manufacturer and the request is refused (403 untrusted_ek).",
    )
    ek_chain: Annotated[list[B64In], Field(max_length=MAX_EK_CHAIN)] = Field(
        default_factory=list,
        alias="ekChain",
        description="Intermediate certificates between ekCert and the manufacturer's root, DER, "
        "base64 each: what the TPM's NV holds in the EK certificate chain indices "
        f"0x01C00100-0x01C001FF (TCG EK Credential Profile), in index order. At most {MAX_EK_CHAIN}. "
        "Untrusted hints: the CA uses them only to build a path to a root it trusts.",
    )
    ek_pub: B64In = Field(
        alias="ekPub",
        description="The EK's public area: a marshalled TPM2B_PUBLIC, base64. Must hold the key "
        "of ekCert; the challenge is encrypted to it (TPM2_MakeCredential).",
    )
    aik_pub: B64In = Field(
        alias="aikPub",
        description="The AIK's public area, marshalled TPM2B_PUBLIC, base64: a restricted signing "
        "key with fixedTPM, fixedParent, sensitiveDataOrigin, sign and not decrypt; nameAlg SHA-1, "
        "SHA-256, SHA-384 or SHA-512.",
    )


class AikChallengeResponse(_Model):
    challenge_id: str = Field(alias="challengeId", description="Names this challenge in /aik/activate.")
    credential_blob: str = Field(
        alias="credentialBlob",
        description="Marshalled TPM2B_ID_OBJECT, base64: the credentialBlob input of "
        "TPM2_ActivateCredential (AIK as activateHandle, EK as keyHandle).",
    )
    encrypted_secret: str = Field(
        alias="encryptedSecret",
        description="Marshalled TPM2B_ENCRYPTED_SECRET, base64: the secret input of TPM2_ActivateCredential.",
    )


class AikActivateRequest(_Model):
    """Step 2: the secret TPM2_ActivateCredential released, proving the AIK and EK share a TPM."""

    challenge_id: IdText = Field(alias="challengeId", description="From the challenge response.")
    secret: B64In = Field(description="The TPM2B_DIGEST buffer TPM2_ActivateCredential returned, base64.")


class AikActivateResponse(_Model):
    aik_cert: str = Field(
        alias="aikCert",
        description="The AIK certificate, DER, base64: X.509 v3, empty subject, critical SAN with "
        "the TPM manufacturer, model and version of the EK certificate, EKU 2.23.133.8.3, CA=false.",
    )


class ServiceError(_Model):
    """The body of every 4xx: a machine-readable code, the HRESULT a client reports, why."""

    error: str = Field(description="A machine-readable code, such as malformed_request or unauthenticated.")
    hresult: HResultText = Field(
        description="The HRESULT a Windows client reports for this refusal, as 0x followed by 8 hex digits."
    )
    reason: str = Field(description="Why, in words, for a person reading a log.")


# --- Identity provider (the Entra role) ----------------------------------------------


class DeviceRegistrationRequest(_Model):
    """Entra join: register the device key; the answer names the new Entra device."""

    display_name: ShortText = Field(alias="displayName", description="The device's name.")
    key_spki: B64In = Field(
        alias="keySpki", description="The device key's SubjectPublicKeyInfo, DER, base64 (RSA or ECC)."
    )


class DeviceRegistrationResponse(_Model):
    device_id: str = Field(alias="deviceId", description="The Entra device id: 'sub' of later assertions.")


class AssertionNonceRequest(_Model):
    """No fields: the body of POST /entra/nonce is absent or the JSON object {}."""


class AssertionNonceResponse(_Model):
    nonce: str = Field(
        description="Opaque to the device (a JWT signed by this provider, valid 10 minutes); the "
        "device copies it into the request_nonce claim of its assertion."
    )


class TokenRequest(_Model):
    """A token for the device (with an assertion) or for the user alone (without one)."""

    assertion: Annotated[str, StringConstraints(max_length=8192, pattern=PLAIN_TEXT_PATTERN)] | None = Field(
        default=None,
        description="A JWT signed with the device key (RS256 for RSA, ES256 for P-256) with claims "
        "sub = Entra device id, iat = seconds since the epoch, request_nonce = a nonce from "
        "POST /entra/nonce. Absent: a user token with no device identity.",
    )
    upn: ShortText = Field(description="The user principal name the token names.")


class TokenResponse(_Model):
    access_token: str = Field(
        alias="accessToken",
        description="A JWT, RS256, kid = a key of GET /entra/keys; claims iss, aud, iat, exp, upn, "
        "tid and, for a device token, deviceid. Sent as 'Authorization: Bearer' to the MDM service.",
    )
    expires_in: int = Field(alias="expiresIn", description="Lifetime of the token in seconds.")


# --- MDM enrollment ------------------------------------------------------------------


class NonceResponse(_Model):
    nonce: str = Field(
        description="32 random bytes, base64. Bound to the device it was issued to and usable once: "
        "the qualifyingData (extraData) of both TPM2_Certify claims of the next enrollment."
    )
    expires_at: str = Field(alias="expiresAt", description="When the nonce expires, ISO 8601 UTC.")


AttestationOutcome = Literal["Success", "Failure"]
# The MS-MDE2 enrollment protocol versions a Windows client sends; attestation items from 5.0.
EnrollmentVersion = Literal["1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0"]
_CLAIM = (
    "TPM2B_ATTEST immediately followed by TPMT_SIGNATURE, marshalled, base64: a TPM2_Certify of "
    "{key} by the AIK, qualifyingData = the enrollment nonce. The signature is over the TPMS_ATTEST "
    "bytes inside the TPM2B_ATTEST (without its 2-byte size)."
)


EnrollmentTrigger = Literal["first-enrollment", "device-retry", "attest-action"]


class ContextItems(_Model):
    """Enrollment context items (MS-MDE2 names). Inventory first, then the attestation items.

    The inventory is the client's claim; the server shows TPM columns from the AIK certificate
    it verified, and a claim that contradicts that evidence is a finding.
    """

    device_name: ShortText = Field(alias="DeviceName", description="The device's name.")
    emm_device_id: DeviceIdText = Field(
        alias="EmmDeviceId",
        description="The device's MDM id, chosen by the client: 1 to 128 printable ASCII characters "
        "without spaces, compared and stored in lower case. Bound to the Entra device whose token "
        "first asked for a nonce or enrolled with it.",
    )
    os_version: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=PLAIN_TEXT_PATTERN)
    ] = Field(alias="OSVersion", description="Windows version, e.g. 10.0.22631.2792; never empty.")
    os_edition: ShortText = Field(default="", alias="OSEdition", description="Windows edition.")
    hw_dev_id: ShortText = Field(default="", alias="HWDevID", description="Serial number.")
    device_manufacturer: ShortText = Field(default="", alias="DeviceManufacturer", description="OEM.")
    device_model: ShortText = Field(default="", alias="DeviceModel", description="Model (claim).")
    ownership: Literal["Corporate", "Personal"] = Field(default="Corporate", alias="Ownership")
    tpm_version: ShortText = Field(default="", alias="TPMVersion", description="'2.0', '1.2' (claim).")
    tpm_manufacturer: Annotated[str, StringConstraints(pattern=r"^(id:[0-9A-Fa-f]{8})?$")] = Field(
        default="",
        alias="TPMManufacturer",
        description="TPM vendor as 'id:' + 8 hex digits, e.g. id:49465800 (claim); empty if unknown.",
    )
    tpm_firmware: ShortText = Field(
        default="", alias="TPMFirmwareVersion", description="TPM firmware as 'id:' + hex (claim)."
    )

    aik_attestation_claim: B64In | None = Field(
        default=None, alias="AIKAttestationClaim", description=_CLAIM.format(key="the MDM key (MDMPub)")
    )
    aik_pub: B64In | None = Field(
        default=None, alias="AIKPub", description="The AIK, marshalled TPM2B_PUBLIC."
    )
    aik_cert: B64In | None = Field(
        default=None, alias="AIKCert", description="The AIK certificate from /aik/activate, DER, base64."
    )
    aik_cert_chain: B64In | None = Field(
        default=None,
        alias="AIKCertChain",
        description="Not in MS-MDE2: the CA certificates between AIKCert and its root, as PKCS#7 "
        "certs-only (a .p7b), DER, base64; for AIK CAs that issue through an intermediate.",
    )
    aad_aik_attestation_claim: B64In | None = Field(
        default=None,
        alias="AadAIKAttestationClaim",
        description=_CLAIM.format(key="the Entra device key (AADPub)"),
    )
    aad_pub: B64In | None = Field(
        default=None, alias="AADPub", description="The Entra device key, marshalled TPM2B_PUBLIC."
    )
    mdm_pub: B64In | None = Field(
        default=None,
        alias="MDMPub",
        description="The MDM key, marshalled TPM2B_PUBLIC (the real protocol carries it in its CSR).",
    )
    attestation_status: AttestationOutcome | None = Field(
        default=None, alias="AttestationStatus", description="Whether the client could attest."
    )
    attestation_status_hresult: HResultText | None = Field(
        default=None,
        alias="AttestationStatusHResult",
        description="Why not: the HRESULT the client met (TPM error, network error, a service's answer).",
    )
    enrollment_trigger: EnrollmentTrigger | None = Field(
        default=None,
        alias="EnrollmentTrigger",
        description="Not in MS-MDE2: why the device sends this request (its first enrollment, its "
        "own retry of a temporary failure at a check-in, or an Attest device command). Kept with "
        "the attempt for the device's history; it changes no verdict.",
    )


class EnrollmentRequest(_Model):
    enrollment_version: EnrollmentVersion = Field(
        alias="EnrollmentVersion", description="MS-MDE2 protocol version; attestation items from 5.0."
    )
    context_items: ContextItems = Field(alias="ContextItems")


class EnrollmentResponse(_Model):
    device_id: str = Field(alias="deviceId", description="The EmmDeviceId the result was recorded for.")
    enrolled: bool = Field(description="Always true: the result is in the report.")
    device_credential: str | None = Field(
        default=None,
        alias="deviceCredential",
        description="A new device credential, when this enrollment proved the device with its Entra "
        "token: send it in the Device-Credential header of later nonce requests, check-ins and "
        "enrollments; it replaces any earlier one. null when none was issued (the request used the "
        "credential, which stays valid, or proved nothing).",
    )
    judged_at: str | None = Field(
        default=None,
        alias="judgedAt",
        description="When the service judged this request, on its own clock (ISO 8601, UTC): the "
        "time at which certificates, tokens and the nonce were checked.",
    )


class CheckinRequest(_Model):
    emm_device_id: DeviceIdText = Field(
        alias="emmDeviceId", description="The enrolled device (as EmmDeviceId, case-insensitive)."
    )


class Command(_Model):
    type: Literal["Attest"] = Field(default="Attest", description="Attest: enroll again, with attestation.")
    action_id: int = Field(alias="actionId", description="The Attest device action this comes from.")


class CheckinResponse(_Model):
    commands: list[Command] = Field(description="Commands handed over now; each is handed over once.")


MAX_PUSH_WAIT = 30  # seconds the server may hold a push poll open


class PushRequest(_Model):
    emm_device_id: IdText = Field(alias="emmDeviceId", description="The enrolled device.")
    wait_seconds: int = Field(
        default=25, ge=1, le=MAX_PUSH_WAIT, alias="waitSeconds", description="How long to hold the poll open."
    )


class PushMessage(_Model):
    type: Literal["sync"] = Field(default="sync", description="sync: start an MDM session (check in) now.")
    action_id: int = Field(alias="actionId", description="The Attest device action that sent it.")
    sent_at: str = Field(alias="sentAt", description="When the service sent it (server time, ISO 8601).")


class PushResponse(_Model):
    notifications: list[PushMessage] = Field(description="Sent during the wait; empty when none was.")


ATTESTATION_ENROLLMENT_VERSION = "5.0"

# The columns of the device attestation status report, in order.
REPORT_COLUMNS = (
    "Device name",
    "Device ID",
    "UPN",
    "Device attestation status",
    "Status detail",
    "OS",
    "OS version",
    "Ownership",
    "Last check-in",
    "Enrollment date",
    "TPM version",
    "TPM manufacturer",
    "Model",
)
