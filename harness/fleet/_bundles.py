"""Evidence bundles of a run: each device's enrollment, for `harness verify` to judge again.

A bundle is data the client already had (its last enrollment request and bearer token, the
nonce it was issued, the Entra keys it registered); writing one costs a JSON dump. The
trust store is written once beside the bundles, and only when the harness ran the server:
it cannot know the trust of a server given with --server.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import jwt

from ..results import DeviceResult
from ..trust import TrustStore
from ..verifier import DEVICE_ID_CLAIM, BundleFormatError, IssuedNonce, bundle_document, parse_time
from ._device import DeviceRun
from ._plan import DevicePlan

TRUST_DIR = "trust"  # where `harness verify` looks beside a bundle


class BundleWriter:
    """Writes DIR/<device-id>.json per judged device, and DIR/trust/ once when the trust is known."""

    def __init__(self, directory: Path, trust: TrustStore | None, *, fresh: bool = True) -> None:
        """`fresh`: this writer prepares the directory; False for another process of the same
        run (a pytest-xdist worker) that adds its devices to the directory its controller prepared."""
        self.directory = directory
        if fresh:
            # A run's bundles replace an earlier run's in the same place, never mix with them.
            for old in directory.glob("*.json") if directory.is_dir() else ():
                old.unlink()
            shutil.rmtree(directory / TRUST_DIR, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        # Bundles hold the devices' bearer tokens: readable by this user only, like the server's data.
        directory.chmod(0o700)
        if trust is not None:
            trust.write(directory / TRUST_DIR)

    def __call__(self, plan: DevicePlan, run: DeviceRun | None, result: DeviceResult) -> None:
        document = device_bundle(run, dt.datetime.now(dt.UTC)) if run is not None else None
        if document is not None:
            path = self.directory / f"{result.device_id or plan.emm_device_id}.json"
            path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def device_bundle(run: DeviceRun, judged_at: dt.datetime) -> dict[str, object] | None:
    """The bundle of a device's last enrollment request; None when it sent none."""
    report = run.report
    if report is None or report.enrollment_request is None:
        return None
    device_id: str | None = None
    if report.token:
        try:
            claims = jwt.decode(report.token, options={"verify_signature": False})
            device_id = str(claims.get(DEVICE_ID_CLAIM) or "") or None
        except jwt.PyJWTError:
            device_id = None  # a token the client could not even parse: the verifier says so
    key = report.entra_keys.get(device_id) if device_id else None
    nonce = None
    if report.nonce is not None:
        try:
            expires = parse_time(report.nonce_expires_at) if report.nonce_expires_at else None
        except BundleFormatError:
            expires = None  # a server's unreadable expiry; the server judged by its own record
        nonce = IssuedNonce(report.nonce, expires_at=expires)
    return bundle_document(
        request=report.enrollment_request,
        token=report.token,
        nonce=nonce,
        device_id=device_id if key is not None else None,
        registered_key=key,
        check_time=judged_at,
        recorded_at=judged_at,
    )
