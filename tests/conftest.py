"""Shared fixtures: real swtpm TPMs, an embedded server, recorded enrollment evidence."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.client import ClientConfig, Endpoints, Inventory, WindowsClient
from harness.fleet import RecordedEnrollment, record_enrollment
from harness.pki import CertificateAuthority, TPMIdentity
from harness.server import EmbeddedServer, Principal, ServerConfig
from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, manufacture

# Tests that need a real TPM carry the `swtpm` marker, so they can be run apart
# (`pytest -m swtpm`) or left out (`pytest -m "not swtpm"`); without swtpm they are skipped.
needs_swtpm = pytest.mark.swtpm


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shutil.which("swtpm") is not None:
        return
    skip = pytest.mark.skip(reason="swtpm is not installed")
    for item in items:
        if item.get_closest_marker("swtpm") is not None:
            item.add_marker(skip)


ADMIN_TOKEN = "test-admin-token"
IDENTITY = TPMIdentity("id:49465800", "SLB9672", "id:001A000D")


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
    return record_enrollment(server, report)


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


def provision_with_swtpm_setup(workdir: Path) -> tuple[Path, Path, Path]:
    """A TPM state made by `swtpm_setup --tpm2 --create-ek-cert` with a private swtpm-localca.

    Returns the state directory, the local CA's root certificate and its issuing
    (intermediate) certificate, which signed the EK certificate.
    """
    ca_dir, state = workdir / "localca", workdir / "provisioned"
    ca_dir.mkdir()
    state.mkdir()
    localca = workdir / "localca.conf"
    localca.write_text(
        f"statedir = {ca_dir}\nsigningkey = {ca_dir}/signkey.pem\n"
        f"issuercert = {ca_dir}/issuercert.pem\ncertserial = {ca_dir}/certserial\n"
    )
    setup = workdir / "swtpm_setup.conf"
    setup.write_text(
        f"create_certs_tool = {shutil.which('swtpm_localca')}\ncreate_certs_tool_config = {localca}\n"
        "create_certs_tool_options = /dev/null\n"
    )
    subprocess.run(
        ["swtpm_setup", "--tpm2", "--tpmstate", str(state), "--create-ek-cert", "--config", str(setup)],
        check=True,
        capture_output=True,
    )
    return state, ca_dir / "swtpm-localca-rootca-cert.pem", ca_dir / "issuercert.pem"


class VendorSwtpm:
    """A swtpm the vendor started itself: its own process, which the harness never stops."""

    def __init__(self, state: Path) -> None:
        self.socket = state / "tpm.sock"
        self._process = subprocess.Popen(
            [
                "swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                "--server", f"type=unixio,path={self.socket}",
                "--ctrl", f"type=unixio,path={self.socket}.ctrl",
                "--flags", "not-need-init,startup-clear",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.socket.exists() and Path(f"{self.socket}.ctrl").exists():
                time.sleep(0.05)  # bound before listen(): give swtpm a moment to accept
                break
            time.sleep(0.02)

    @property
    def tcti(self) -> tuple[str, str]:
        return ("swtpm", f"path={self.socket}")

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
