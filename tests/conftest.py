"""Shared fixtures: real swtpm TPMs, an embedded server, recorded enrollment evidence."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest

from harness.client import ClientConfig, Endpoints, Inventory, WindowsClient
from harness.pki import CertificateAuthority
from harness.protocol import EnrollmentRequest
from harness.server import EmbeddedServer, Principal, ServerConfig, evidence_from_request
from harness.tcg import TPMIdentity
from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, manufacture
from harness.verifier import DEVICE_ID_CLAIM, Evidence, NonceState, Policy, claimed_nonce

needs_swtpm = pytest.mark.skipif(shutil.which("swtpm") is None, reason="swtpm is not installed")
ADMIN_TOKEN = "test-admin-token"
IDENTITY = TPMIdentity("id:49465800", "SLB9672", "id:001A000D")


@dataclass(frozen=True)
class RecordedEnrollment:
    """One real enrollment, recorded: what a healthy TPM 2.0 device sent, and the context
    the server judged it in. Tests tamper with copies of these bytes."""

    evidence: Evidence
    policy: Policy
    nonce: NonceState
    registered: dict[str, bytes]
    now: dt.datetime
    device_id: str
    vendor_ca: CertificateAuthority


@pytest.fixture(scope="session")
def vendor_ca() -> CertificateAuthority:
    return CertificateAuthority.create("Test TPM Vendor CA", "Test Vendor", now=dt.datetime.now(dt.UTC))


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, vendor_ca: CertificateAuthority
) -> Iterator[EmbeddedServer]:
    config = ServerConfig(
        data_dir=tmp_path_factory.mktemp("server"),
        manufacturer_roots=[vendor_ca.certificate],
        principals={ADMIN_TOKEN: Principal("test-admin", remote_tasks=True)},
    )
    with EmbeddedServer(config) as running:
        yield running


@pytest.fixture(scope="session")
def swtpm_workdir() -> Iterator[Path]:
    # Unix socket paths must stay short; pytest's tmp paths can be long.
    path = Path(tempfile.mkdtemp(prefix="eah-test-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def recorded(
    server: EmbeddedServer, vendor_ca: CertificateAuthority, swtpm_workdir: Path
) -> RecordedEnrollment:
    if shutil.which("swtpm") is None:
        pytest.skip("swtpm is not installed")
    backend = SwtpmBackend()
    tpm = backend.start(TPMRequest(), swtpm_workdir)
    try:
        with TimedESAPI(tpm.tcti) as esapi:
            manufacture(esapi, identity=IDENTITY, issuer=vendor_ca, now=dt.datetime.now(dt.UTC))
        inventory = Inventory(
            "LAPTOP-REC0001",
            "PF0REC01",
            "LENOVO",
            "ThinkPad T14 Gen 4",
            "10.0.22631.2792",
            upn="rec@contoso.com",
        )
        report = WindowsClient(ClientConfig(Endpoints.single(server.url), inventory), tpm).run()
    finally:
        tpm.close()
    assert report.enrollment_request is not None and report.token is not None, report.steps
    request = EnrollmentRequest.model_validate(report.enrollment_request)
    evidence = evidence_from_request(request, report.token)
    ctx = server.app.state.context
    nonce = claimed_nonce(evidence)
    assert nonce is not None
    device_id = str(jwt.decode(report.token, options={"verify_signature": False})[DEVICE_ID_CLAIM])
    spki = ctx.store.entra_device_key(device_id)
    assert spki is not None
    return RecordedEnrollment(
        evidence=evidence,
        policy=ctx.policy,
        nonce=NonceState(value=nonce, issued=True),
        registered={device_id: spki},
        now=ctx.clock.now(),
        device_id=device_id,
        vendor_ca=vendor_ca,
    )


def swtpm_pids_under(directory: Path) -> list[int]:
    """Live swtpm processes whose state lives under a directory (to prove none is orphaned)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.split(" ")[0].endswith("swtpm") and str(directory) in cmdline:
            pids.append(int(entry.name))
    return pids
