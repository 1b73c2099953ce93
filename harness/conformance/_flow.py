"""The whole enrollment flow against the reference server, with the vendor's TPM.

An embedded server trusts the given --ek-ca certificates as manufacturer roots; one
simulated Windows client enrolls with the external TPM; the status comes from the admin
API, as an admin would read it.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from cryptography import x509
from tpm2_pytss import TSS2_Exception

from ..client import ClientConfig, ClientReport, Endpoints, Inventory, WindowsClient
from ..errors import HarnessError
from ..server import EmbeddedServer, Principal, ServerConfig
from ..status import AttestationStatus
from ..tpm import ExternalTPM, parse_tcti
from ..trust import TrustStore
from ..windows import MDM_KEY_HANDLE
from ._model import WINDOWS_ATTESTATION, Row, failed, passed, skipped
from ._probe import undo_persisted

AREA = "Enrollment flow"
ROW = "flow.enrollment"
CLAUSE = f"{WINDOWS_ATTESTATION}: the device attestation status report reads Attested"
_OS_VERSION = "10.0.22631.4602"  # a Windows 11 build above the minimum that attests


def enrollment_row(
    tcti_spec: str,
    anchors: Sequence[x509.Certificate],
    persistent_before: Sequence[int],
    trust: TrustStore | None = None,
) -> Row:
    if MDM_KEY_HANDLE in persistent_before:
        return skipped(
            ROW,
            AREA,
            f"an object is already persisted at the MDM key handle 0x{MDM_KEY_HANDLE:08X}; "
            "enrolling would reuse it and vendor-check does not remove what it did not create",
            CLAUSE,
        )
    token = uuid.uuid4().hex
    try:
        with tempfile.TemporaryDirectory(prefix="vendor-check-server-") as data_dir:
            config = ServerConfig(
                data_dir=Path(data_dir),
                manufacturer_roots=list(anchors),
                principals={token: Principal("vendor-check")},
                trust=trust or TrustStore(),
            )
            with EmbeddedServer(config) as server:
                try:
                    report = _enroll(server.url, tcti_spec)
                finally:
                    _undo(tcti_spec)
                response = httpx.get(
                    f"{server.url}/admin/devices/{report.emm_device_id}",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
    except (HarnessError, httpx.HTTPError, OSError) as exc:
        return failed(ROW, AREA, f"the flow could not run: {exc}", CLAUSE)
    if not response.is_success:
        failing = [f"{s.step}: {s.detail}" for s in report.steps if not s.ok]
        return failed(
            ROW, AREA, f"device not enrolled (HTTP {response.status_code}); {'; '.join(failing)}", CLAUSE
        )
    device = response.json()
    status, detail = device["Device attestation status"], device["Status detail"]
    seen = f"status '{status}'{f' / {detail}' if detail else ''}; decision: {device.get('decision') or '-'}"
    # The client's first failed step carries the service's own reason (e.g. the AIK CA's).
    stopped = next((f"{s.step}: {s.detail}" for s in report.steps if not s.ok), None)
    if stopped:
        seen += f"; client step {stopped}"
    if status == AttestationStatus.ATTESTED:
        return passed(ROW, AREA, seen, CLAUSE)
    return failed(ROW, AREA, seen, CLAUSE)


def _enroll(url: str, tcti_spec: str) -> ClientReport:
    inventory = Inventory(
        device_name="VENDOR-CHECK",
        serial="vendor-check",
        manufacturer="TPM vendor",
        model="vendor-check",
        os_version=_OS_VERSION,
        upn="vendor-check@example.test",
    )
    with WindowsClient(ClientConfig(Endpoints.single(url), inventory), ExternalTPM(tcti_spec)) as client:
        return client.run()


def _undo(tcti_spec: str) -> None:
    """The flow persisted the MDM key, as Windows does; evict it so the TPM ends as it began."""
    # Nothing is at the handle when the flow stopped before persisting; the handle row tells.
    with contextlib.suppress(TSS2_Exception):
        undo_persisted(parse_tcti(tcti_spec), MDM_KEY_HANDLE)
