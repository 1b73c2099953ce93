"""The client's seams: any TPMProvider plugs into the flow, and the service client reports
what it met as the HRESULT Windows would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from harness.client import (
    ClientConfig,
    ClientFailure,
    EndorsementKey,
    Endpoints,
    Inventory,
    KeyBlob,
    LoadedKey,
    PytssTPM,
    ServiceClient,
    TPMProvider,
    WindowsClient,
)
from harness.network import RefusingEndpoint
from harness.pki import CertificateAuthority, TPMIdentity
from harness.server import EmbeddedServer
from harness.status import HResult
from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, manufacture

from .conftest import IDENTITY, needs_swtpm


class RecordingTPM:
    """A TPMProvider of its own: it forwards to another provider and notes every operation,
    as a provider for a TPM behind another TSS would be written."""

    def __init__(self, inner: PytssTPM) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def _call(self, name: str, *args: Any) -> Any:
        self.calls.append(name)
        return getattr(self._inner, name)(*args)

    @property
    def version(self) -> str | None:
        return self._inner.version

    @property
    def seconds(self) -> float:
        return self._inner.seconds

    @property
    def commands(self) -> int:
        return self._inner.commands

    def open(self) -> None:
        self._call("open")

    def close(self) -> None:
        self._call("close")

    def identity(self) -> TPMIdentity:
        return self._call("identity")  # type: ignore[no-any-return]

    def endorsement_key(self) -> EndorsementKey:
        return self._call("endorsement_key")  # type: ignore[no-any-return]

    def storage_root_key(self) -> None:
        self._call("storage_root_key")

    def create_aik(self) -> LoadedKey:
        return self._call("create_aik")  # type: ignore[no-any-return]

    def activate_credential(self, aik: LoadedKey, ek: EndorsementKey, blob: bytes, secret: bytes) -> bytes:
        return self._call("activate_credential", aik, ek, blob, secret)  # type: ignore[no-any-return]

    def flush(self, key: LoadedKey | EndorsementKey) -> None:
        self._call("flush", key)

    def find_persistent_key(self, handle: int) -> LoadedKey | None:
        return self._call("find_persistent_key", handle)  # type: ignore[no-any-return]

    def create_persistent_key(self, handle: int) -> LoadedKey:
        return self._call("create_persistent_key", handle)  # type: ignore[no-any-return]

    def certify(self, key: LoadedKey, aik: LoadedKey, nonce: bytes) -> bytes:
        return self._call("certify", key, aik, nonce)  # type: ignore[no-any-return]

    def create_key_blob(self) -> KeyBlob:
        return self._call("create_key_blob")  # type: ignore[no-any-return]

    def certify_blob(self, key: KeyBlob, aik: LoadedKey, nonce: bytes) -> bytes:
        return self._call("certify_blob", key, aik, nonce)  # type: ignore[no-any-return]

    def sign(self, key: KeyBlob, digest: bytes) -> bytes:
        return self._call("sign", key, digest)  # type: ignore[no-any-return]


INVENTORY = Inventory(
    "LAPTOP-PROV001", "PF0PROV1", "LENOVO", "ThinkPad T14 Gen 4", "10.0.22631.2792", upn="p@contoso.com"
)


@needs_swtpm
def test_a_provider_of_its_own_plugs_into_the_flow_and_the_device_attests(
    server: EmbeddedServer, vendor_ca: CertificateAuthority, swtpm_workdir: Path
) -> None:
    tpm = SwtpmBackend().start(TPMRequest(), swtpm_workdir)
    try:
        with TimedESAPI(tpm.tcti) as esapi:
            manufacture(esapi, identity=IDENTITY, issuer=vendor_ca, now=dt.datetime.now(dt.UTC))
        provider = RecordingTPM(PytssTPM(tpm.tcti))
        assert isinstance(provider, TPMProvider)
        config = ClientConfig(Endpoints.single(server.url), INVENTORY)
        with WindowsClient(config, provider) as client:
            report = client.run()
    finally:
        tpm.close()
    assert report.enrolled and report.hresult == HResult.S_OK, report.steps
    assert report.enrollment_request is not None
    items = report.enrollment_request["ContextItems"]
    assert items["AttestationStatus"] == "Success"
    assert {"AIKAttestationClaim", "AIKCert", "AadAIKAttestationClaim", "AADPub"} <= set(items)
    # Every TPM operation of the flow went through the provider, the Entra key's signature included.
    operations = ("create_key_blob", "sign", "create_aik", "activate_credential", "certify", "certify_blob")
    assert set(operations) <= set(provider.calls)
    assert report.tpm_seconds > 0


def test_a_refused_connection_is_reported_as_winhttp_cannot_connect() -> None:
    with RefusingEndpoint() as refusing:
        service = ServiceClient(Endpoints.single(refusing.url), timeout=5)
        try:
            with pytest.raises(ClientFailure) as caught:
                service.assertion_nonce()
        finally:
            service.close()
    assert caught.value.hresult == HResult.WINHTTP_CANNOT_CONNECT
    assert "ConnectError" in caught.value.reason


def test_a_services_error_answer_carries_its_hresult(server: EmbeddedServer) -> None:
    service = ServiceClient(Endpoints.single(server.url), timeout=5)
    try:
        with pytest.raises(ClientFailure) as caught:
            service.aik_challenge(b"not a TPM2B_PUBLIC", b"nor this", None)
    finally:
        service.close()
    assert caught.value.hresult != HResult.S_OK
    assert caught.value.reason.startswith("HTTP 4")
