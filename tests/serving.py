"""The reference server's app in a test client, for tests of what the server answers.

Server errors come back as 500 responses rather than exceptions, so that "never a 500" is
something a test can see; the store is closed when the client is done.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from harness.server import Clock, ServerConfig, create_app
from harness.status import AttestationStatus, StatusDetail


@contextmanager
def served(config: ServerConfig, clock: Clock | None = None) -> Iterator[TestClient]:
    app = create_app(config, clock)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        app.state.context.store.close()


def seed_device(
    context: Any,
    emm: str,
    *,
    status: AttestationStatus,
    detail: StatusDetail,
    name: str | None = None,
    ownership: str = "Corporate",
    decision: str = "recorded by the test",
    checks: list[dict[str, Any]] | None = None,
    credential: str | None = None,
) -> None:
    """A device as the report knows it after an enrollment, without a TPM behind it: written
    straight into the store of a server's `context` (app.state.context). With `credential`, the
    row holds that device credential, as an enrollment leaves it."""
    context.store.record_enrollment(
        emm_device_id=emm,
        inventory={
            "device_name": name or f"PC-{emm}",
            "entra_device_id": "",
            "upn": f"{emm}@contoso.com",
            "os_version": "10.0.22631.2792",
            "ownership": ownership,
            "manufacturer": "LENOVO",
            "model": "ThinkPad T14",
            "serial": f"SN-{emm}",
            "tpm_version": "2.0",
            "tpm_manufacturer": "Infineon (id:49465800)",
        },
        status=status,
        detail=detail,
        decision=decision,
        checks=checks or [],
        items={},
        now=context.clock.now(),
        **(
            {"bind_to": "", "credential_sha256": hashlib.sha256(credential.encode()).digest()}
            if credential is not None
            else {}
        ),
    )
