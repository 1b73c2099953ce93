"""The Entra device key: made in the TPM when the TPM allows it, in software otherwise.

The key signs the device's assertion to the identity provider (a JWT with the
provider's nonce); only a key made in the TPM can later be certified by the AIK.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._provider import KeyBlob, TPMProvider


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DeviceKey:
    """An RSA 2048 device key that signs assertions (RS256)."""

    def spki(self) -> bytes:
        raise NotImplementedError

    def sign_rs256(self, message: bytes) -> bytes:
        raise NotImplementedError

    def assertion(self, device_id: str, nonce: str) -> str:
        now = int(time.time())
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {"sub": device_id, "iat": now, "request_nonce": nonce}
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode()
        return f"{header}.{payload}.{_b64url(self.sign_rs256(signing_input))}"


class TPMDeviceKey(DeviceKey):
    """The key in the TPM, kept as its blobs; it signs through TPM2_Sign."""

    def __init__(self, tpm: TPMProvider, blob: KeyBlob) -> None:
        self._tpm = tpm
        self.blob = blob

    @classmethod
    def create(cls, tpm: TPMProvider) -> TPMDeviceKey:
        return cls(tpm, tpm.create_key_blob())

    def spki(self) -> bytes:
        return self.blob.spki

    def sign_rs256(self, message: bytes) -> bytes:
        return self._tpm.sign(self.blob, hashlib.sha256(message).digest())


class SoftwareDeviceKey(DeviceKey):
    """A key held in software, as after an offline domain join."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def spki(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_rs256(self, message: bytes) -> bytes:
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())
