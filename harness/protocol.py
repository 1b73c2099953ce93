"""The HTTP contract between the simulated Windows client and the reference server.

Evidence travels in the TPM's own wire formats (marshalled TPM2B_PUBLIC,
TPM2B_ATTEST, TPMT_SIGNATURE; DER certificates), base64-encoded. Enrollment
context items carry the names MS-MDE2 (EnrollmentVersion 5.0 and later) uses.
Nothing here describes an expected outcome: the server decides from evidence.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

MAX_BLOB = 16 * 1024  # bytes after decoding; far above any TPM structure or certificate
_MAX_B64_CHARS = (MAX_BLOB * 4) // 3 + 4


def _decode_b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    if len(value) > _MAX_B64_CHARS:
        raise ValueError(f"is over {_MAX_B64_CHARS} base64 characters")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc
    if len(decoded) > MAX_BLOB:
        raise ValueError(f"decodes to {len(decoded)} bytes, more than {MAX_BLOB}")
    return decoded


# Validated from a base64 string, held as bytes, serialised back to base64.
B64In = Annotated[
    bytes,
    BeforeValidator(_decode_b64),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str),
    WithJsonSchema({"type": "string", "contentEncoding": "base64", "maxLength": _MAX_B64_CHARS}),
]
ShortText = Annotated[str, StringConstraints(max_length=256)]
HResultText = Annotated[str, StringConstraints(pattern=r"^0x[0-9A-Fa-f]{8}$")]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- AIK certificate authority -------------------------------------------------------


class AikChallengeRequest(_Model):
    ek_cert: B64In | None = Field(default=None, alias="ekCert")
    ek_pub: B64In = Field(alias="ekPub")
    aik_pub: B64In = Field(alias="aikPub")


class AikChallengeResponse(_Model):
    challenge_id: str = Field(alias="challengeId")
    credential_blob: str = Field(alias="credentialBlob")  # base64 TPM2B_ID_OBJECT
    encrypted_secret: str = Field(alias="encryptedSecret")  # base64 TPM2B_ENCRYPTED_SECRET


class AikActivateRequest(_Model):
    challenge_id: ShortText = Field(alias="challengeId")
    secret: B64In


class AikActivateResponse(_Model):
    aik_cert: str = Field(alias="aikCert")  # base64 DER


class ServiceError(_Model):
    """The body of every 4xx: a machine-readable code, the HRESULT a client reports, why."""

    error: str
    hresult: HResultText
    reason: str


# --- Identity provider (the Entra role) ----------------------------------------------


class DeviceRegistrationRequest(_Model):
    display_name: ShortText = Field(alias="displayName")
    key_spki: B64In = Field(alias="keySpki")  # the device key's SubjectPublicKeyInfo, DER


class DeviceRegistrationResponse(_Model):
    device_id: str = Field(alias="deviceId")


class AssertionNonceResponse(_Model):
    # Opaque to the device; it puts it in its assertion's request_nonce claim.
    nonce: str


class TokenRequest(_Model):
    # A JWT the device signs with its device key: sub = device id, iat, request_nonce.
    # A client without a registered device sends only its user (upn) and gets a
    # user token with no device identity.
    assertion: Annotated[str, StringConstraints(max_length=8192)] | None = None
    upn: ShortText


class TokenResponse(_Model):
    access_token: str = Field(alias="accessToken")
    expires_in: int = Field(alias="expiresIn")


# --- MDM enrollment ------------------------------------------------------------------


class NonceResponse(_Model):
    nonce: str  # base64
    expires_at: str = Field(alias="expiresAt")


AttestationOutcome = Literal["Success", "Failure"]


class ContextItems(_Model):
    """Enrollment context items. Inventory first, then the attestation items."""

    device_name: ShortText = Field(alias="DeviceName")
    emm_device_id: ShortText = Field(alias="EmmDeviceId")
    os_version: ShortText = Field(alias="OSVersion")
    os_edition: ShortText = Field(default="", alias="OSEdition")
    hw_dev_id: ShortText = Field(default="", alias="HWDevID")  # serial number
    device_manufacturer: ShortText = Field(default="", alias="DeviceManufacturer")
    device_model: ShortText = Field(default="", alias="DeviceModel")
    ownership: Literal["Corporate", "Personal"] = Field(default="Corporate", alias="Ownership")
    tpm_version: ShortText = Field(default="", alias="TPMVersion")
    tpm_manufacturer: ShortText = Field(default="", alias="TPMManufacturer")
    tpm_firmware: ShortText = Field(default="", alias="TPMFirmwareVersion")

    aik_attestation_claim: B64In | None = Field(default=None, alias="AIKAttestationClaim")
    aik_pub: B64In | None = Field(default=None, alias="AIKPub")
    aik_cert: B64In | None = Field(default=None, alias="AIKCert")
    aad_aik_attestation_claim: B64In | None = Field(default=None, alias="AadAIKAttestationClaim")
    aad_pub: B64In | None = Field(default=None, alias="AADPub")
    # The MDM key's TPM2B_PUBLIC; the real protocol carries this key in its CSR.
    mdm_pub: B64In | None = Field(default=None, alias="MDMPub")
    attestation_status: AttestationOutcome | None = Field(default=None, alias="AttestationStatus")
    attestation_status_hresult: HResultText | None = Field(default=None, alias="AttestationStatusHResult")


class EnrollmentRequest(_Model):
    enrollment_version: Annotated[str, StringConstraints(pattern=r"^\d{1,2}\.\d{1,2}$")] = Field(
        alias="EnrollmentVersion"
    )
    context_items: ContextItems = Field(alias="ContextItems")


class EnrollmentResponse(_Model):
    device_id: str = Field(alias="deviceId")
    enrolled: bool


ATTESTATION_ENROLLMENT_VERSION = "5.0"


# --- Admin report ---------------------------------------------------------------------

# The device attestation status report's columns, in the product's order.
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
