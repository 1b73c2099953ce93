"""The TPM provider: what the Windows client asks of its TPM, whichever TPM that is.

The flow (harness.client's WindowsClient) only talks to a TPM through this
protocol, so a real TPM, a vendor's simulator or another TSS plugs in by
implementing it. Keys and structures cross it in the TPM's own wire formats
(marshalled TPM2B_PUBLIC and TPM2B_PRIVATE, DER certificates); handles are the
provider's own and opaque to the flow.

Every method may raise ClientFailure with the HRESULT Windows would report for
what the TPM answered. A method opens a session when none is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..pki import TPMIdentity


@dataclass(frozen=True)
class LoadedKey:
    """A key in the TPM: its public area, its name and the provider's handle for it."""

    public: bytes  # marshalled TPM2B_PUBLIC
    name: bytes  # nameAlg || H(public area)
    handle: object


@dataclass(frozen=True)
class EndorsementKey:
    """The EK the TCG default template gives, and the certificate the TPM holds for it in NV."""

    certificate: bytes | None  # DER; None when NV holds no EK certificate
    public: bytes  # marshalled TPM2B_PUBLIC
    handle: object
    # DER intermediates from the profile's EK certificate chain indices 0x01C00100-0x01C001FF,
    # in index order, for the AIK CA to build the path from the EK certificate to a vendor root.
    chain: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class KeyBlob:
    """A key the TPM created and wrapped under the SRK; loaded again for each use."""

    public: bytes  # marshalled TPM2B_PUBLIC
    private: bytes  # marshalled TPM2B_PRIVATE, readable only by the TPM
    spki: bytes  # the public key as a DER SubjectPublicKeyInfo


@runtime_checkable
class TPMProvider(Protocol):
    """The TPM operations of enrollment attestation, as Windows' TPM stack performs them."""

    @property
    def version(self) -> str | None:
        """The TPM family ('2.0', '1.2') once a session was tried, as TBS reports it; None before."""
        ...

    @property
    def seconds(self) -> float:
        """Time spent inside TPM commands, over every session."""
        ...

    @property
    def commands(self) -> int: ...

    def open(self) -> None:
        """Start a session if none is open; ClientFailure when no TPM 2.0 answers."""
        ...

    def close(self) -> None:
        """End the session and flush every object it loaded (a TPM has few transient slots)."""
        ...

    def identity(self) -> TPMIdentity:
        """Manufacturer and firmware version, from TPM2_GetCapability."""
        ...

    def endorsement_key(self) -> EndorsementKey:
        """The EK certificate from NV (RSA first, then ECC), the EK its template gives, and the
        certificate chain the platform stored in NV."""
        ...

    def storage_root_key(self) -> None:
        """Create the SRK under the owner hierarchy (once per session)."""
        ...

    def create_aik(self) -> LoadedKey:
        """A restricted signing key under the SRK, loaded."""
        ...

    def activate_credential(
        self, aik: LoadedKey, ek: EndorsementKey, credential_blob: bytes, encrypted_secret: bytes
    ) -> bytes:
        """TPM2_ActivateCredential through a policy session on the endorsement hierarchy."""
        ...

    def flush(self, key: LoadedKey | EndorsementKey) -> None: ...

    def find_persistent_key(self, handle: int) -> LoadedKey | None:
        """The key persisted at `handle`, or None when there is none."""
        ...

    def create_persistent_key(self, handle: int) -> LoadedKey:
        """A new unrestricted signing key under the SRK, persisted at `handle`."""
        ...

    def certify(self, key: LoadedKey, aik: LoadedKey, nonce: bytes) -> bytes:
        """TPM2_Certify of `key` by `aik` over `nonce`: marshalled TPMS_ATTEST then TPMT_SIGNATURE."""
        ...

    def create_key_blob(self) -> KeyBlob:
        """A new unrestricted signing key under the SRK, kept outside the TPM as its blobs."""
        ...

    def certify_blob(self, key: KeyBlob, aik: LoadedKey, nonce: bytes) -> bytes:
        """certify() for a key kept as blobs: loaded for the call and flushed."""
        ...

    def sign(self, key: KeyBlob, digest: bytes) -> bytes:
        """An RSASSA-PKCS1-v1_5 signature over a SHA-256 digest with a key kept as blobs."""
        ...
