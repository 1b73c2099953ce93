"""A device id alone can do nothing: no lockout through the device's limit, no taking of a
device in progress, no falsified history, one spelling per id, and a bound on the records
that requests proving nothing can create."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from harness.client import ClientConfig, Endpoints, Inventory, WindowsClient
from harness.pki import CertificateAuthority
from harness.server import EmbeddedServer, ManualClock, Principal, ServerConfig, create_app
from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, manufacture
from tests.serving import served

from .conftest import IDENTITY
from .test_server_api import assert_error, user_token
from .test_trust_boundary import bearer, device_token, enrollment, state_of

ADMIN_TOKEN = "admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REPORT = "/admin/reports/device-attestation"


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(data_dir=tmp_path / "data", principals={ADMIN_TOKEN: Principal("a", True)})


@pytest.fixture
def client(config: ServerConfig) -> Iterator[TestClient]:
    with served(config, ManualClock()) as test_client:
        yield test_client


def device_row(database: Path, emm: str) -> tuple[Any, ...]:
    """The device's row as SQLite stores it, every column (read through a second connection)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        row = db.execute("SELECT * FROM devices WHERE emm_device_id=?", (emm,)).fetchone()
        attempts = db.execute("SELECT * FROM attempts WHERE emm_device_id=? ORDER BY id", (emm,)).fetchall()
    db.close()
    return (row, tuple(attempts))


def unowned_rows(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM devices WHERE bound=0 AND claimed_by=''").fetchone()
    db.close()
    return int(count)


# --- limits only the device's own traffic can use up -----------------------------------------


def test_unauthenticated_requests_naming_a_device_do_not_lock_it_out(client: TestClient) -> None:
    token = device_token(client)
    first = client.post("/enrollment", json=enrollment("victim"), headers=bearer(token))
    assert first.status_code == 200, first.text
    own = {"Device-Credential": first.json()["deviceCredential"]}
    stranger = device_token(client)
    statuses = []
    for i in range(120):
        headers = [{}, bearer("not-a-jwt"), bearer(stranger), {"Device-Credential": "guess"}][i % 4]
        if i % 2:
            response = client.post("/enrollment/checkin", json={"emmDeviceId": "victim"}, headers=headers)
        else:
            response = client.get(
                "/enrollment/nonce", params={"emmDeviceId": "victim", "deviceName": "X"}, headers=headers
            )
        statuses.append(response.status_code)
    assert set(statuses) == {401}, statuses
    # The device's own next requests are answered as if nothing had happened.
    checkin = client.post("/enrollment/checkin", json={"emmDeviceId": "victim"}, headers=own)
    assert checkin.status_code == 200, checkin.text
    nonce = client.get("/enrollment/nonce", params={"emmDeviceId": "victim", "deviceName": "PC"}, headers=own)
    assert nonce.status_code == 200, nonce.text


def test_requests_proving_nothing_are_limited_per_address(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path, rate_unauthenticated_per_address=5))
    with TestClient(app) as http:
        token = device_token(http)
        first = http.post("/enrollment", json=enrollment("victim"), headers=bearer(token))
        own = {"Device-Credential": first.json()["deviceCredential"]}
        codes = [
            http.post("/enrollment/checkin", json={"emmDeviceId": "victim"}).status_code for _ in range(7)
        ]
        assert codes == [401] * 5 + [429] * 2
        # The same address, proving it is the device: not counted with the strangers.
        assert (
            http.post("/enrollment/checkin", json={"emmDeviceId": "victim"}, headers=own).status_code == 200
        )
    app.state.context.store.close()


def test_a_strangers_valid_token_does_not_use_up_an_unenrolled_ids_limit(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path, rate_per_device=3))
    with TestClient(app) as http:
        stranger, own = bearer(device_token(http)), bearer(device_token(http))
        params = {"emmDeviceId": "fresh", "deviceName": "X"}
        assert [
            http.get("/enrollment/nonce", params=params, headers=stranger).status_code for _ in range(4)
        ] == [
            200,
            200,
            200,
            429,
        ]
        # The stranger's nonces claimed the id: the real device is refused, but not rate limited.
        assert_error(http.get("/enrollment/nonce", params=params, headers=own), 401)
    app.state.context.store.close()


# --- the identity is bound before anything about the device can change ---------------------------


def test_a_device_in_progress_cannot_be_taken_by_another_token(
    client: TestClient, config: ServerConfig
) -> None:
    own, stranger = device_token(client), device_token(client)
    params = {"emmDeviceId": "in-progress", "deviceName": "PC-OWN"}
    assert client.get("/enrollment/nonce", params=params, headers=bearer(own)).status_code == 200
    before, row = state_of(client, "in-progress"), device_row(config.db_path, "in-progress")
    forged = enrollment("in-progress", DeviceName="PWNED", AttestationStatus="Failure")
    for headers in ({}, bearer("not-a-jwt"), bearer(stranger), bearer(user_token(client))):
        assert_error(client.post("/enrollment", json=forged, headers=headers), 401, error="unauthenticated")
        assert_error(
            client.get("/enrollment/nonce", params=params | {"trigger": "attest-action"}, headers=headers),
            401,
        )
    assert state_of(client, "in-progress") == before
    assert device_row(config.db_path, "in-progress") == row
    # The device that asked for the nonce enrolls, and is bound to its own Entra device.
    mine = client.post("/enrollment", json=enrollment("in-progress"), headers=bearer(own))
    assert mine.status_code == 200 and mine.json()["deviceCredential"], mine.text
    assert_error(client.post("/enrollment", json=forged, headers=bearer(stranger)), 401)


@pytest.mark.skipif(shutil.which("swtpm") is None, reason="swtpm is not installed")
def test_an_unauthenticated_enrollment_mid_flow_changes_nothing_and_the_device_attests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real device on a real TPM: between its nonce and its enrollment, strangers send
    enrollments for its id. Its row stays byte for byte what it was, and it attests."""
    vendor_ca = CertificateAuthority.create("Test TPM Vendor CA", "Test Vendor", now=dt.datetime.now(dt.UTC))
    config = ServerConfig(
        data_dir=tmp_path / "server",
        manufacturer_roots=[vendor_ca.certificate],
        principals={ADMIN_TOKEN: Principal("a", True)},
    )
    work = Path(os.path.realpath(tmp_path)) / "tpm"
    work.mkdir()
    seen: dict[str, Any] = {}
    with EmbeddedServer(config) as server, httpx.Client(base_url=server.url) as http:
        stranger = device_token(http)  # type: ignore[arg-type]
        tpm = SwtpmBackend().start(TPMRequest(), work)
        try:
            with TimedESAPI(tpm.tcti) as esapi:
                manufacture(esapi, identity=IDENTITY, issuer=vendor_ca, now=dt.datetime.now(dt.UTC))
            inventory = Inventory(
                "LAPTOP-OWN01", "PF0OWN01", "LENOVO", "ThinkPad T14 Gen 4", "10.0.22631.2792"
            )
            device = WindowsClient(ClientConfig(Endpoints.single(server.url), inventory), tpm)
            service = device._service
            real_enroll = service.enroll

            def attacked_enroll(body: dict[str, Any], token: str | None) -> str:
                emm = body["ContextItems"]["EmmDeviceId"]
                seen["before"] = (state_of(http, emm), device_row(config.db_path, emm))  # type: ignore[arg-type]
                assert seen["before"][1][0] is not None and "In progress" in seen["before"][1][0]
                forged = enrollment(emm, DeviceName="PWNED", DeviceModel="Evil", AttestationStatus="Failure")
                seen["answers"] = [
                    http.post("/enrollment", json=forged, headers=headers).status_code
                    for headers in ({}, bearer("not-a-jwt"), bearer(stranger))
                ]
                seen["after"] = (state_of(http, emm), device_row(config.db_path, emm))  # type: ignore[arg-type]
                return real_enroll(body, token)

            monkeypatch.setattr(service, "enroll", attacked_enroll)
            report = device.run()
        finally:
            tpm.close()
        row = http.get(f"/admin/devices/{report.emm_device_id}", headers=ADMIN).json()
    assert seen["answers"] == [401, 401, 401]
    assert seen["after"] == seen["before"], "the stranger's enrollments changed the device's record"
    assert report.enrolled, report.steps
    assert (row["Device attestation status"], row["Device name"]) == ("Attested", "LAPTOP-OWN01"), row
    assert row["bound"] is True


# --- history from authenticated requests and the server's own records -----------------------


def test_a_claimed_attest_action_without_a_command_is_the_devices_own_retry(client: TestClient) -> None:
    token = bearer(device_token(client))
    params = {"emmDeviceId": "d", "deviceName": "PC", "trigger": "attest-action"}
    assert client.get("/enrollment/nonce", params=params, headers=token).status_code == 200
    assert client.post("/enrollment", json=enrollment("d"), headers=token).status_code == 200
    attempts = client.get("/admin/devices/d", headers=ADMIN).json()["attempts"]
    assert [a["trigger"] for a in attempts] == ["device-retry"], attempts
    # An unauthenticated enrollment's claimed trigger is not kept either.
    body = enrollment("nobody", EnrollmentTrigger="attest-action")
    assert client.post("/enrollment", json=body).status_code == 200
    attempts = client.get("/admin/devices/nobody", headers=ADMIN).json()["attempts"]
    assert [a["trigger"] for a in attempts] == [""], attempts


# --- one spelling per id ---------------------------------------------------------------------


def test_ids_differing_in_case_are_one_device(client: TestClient) -> None:
    token = device_token(client)
    first = client.post("/enrollment", json=enrollment("Victim-01"), headers=bearer(token))
    assert first.status_code == 200 and first.json()["deviceId"] == "victim-01", first.text
    forged = enrollment("VICTIM-01", DeviceName="PWNED")
    assert_error(client.post("/enrollment", json=forged, headers=bearer(device_token(client))), 401)
    assert client.get(REPORT, headers=ADMIN).json()["total"] == 1
    assert client.get("/admin/devices/VICTIM-01", headers=ADMIN).json()["Device ID"] == "victim-01"


@pytest.mark.parametrize(
    "spelling",
    [
        " victim",  # surrounding spaces
        "victim ",
        "vic tim",
        "victim\u201001",  # HYPHEN
        "victim\u201101",  # NON-BREAKING HYPHEN
        "victim\u221201",  # MINUS SIGN
        "v\u0456ctim",  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
        "\uff56ictim",  # FULLWIDTH LATIN SMALL LETTER V
        "vic\u200btim",  # ZERO WIDTH SPACE
    ],
)
def test_ids_that_only_look_alike_are_refused(client: TestClient, spelling: str) -> None:
    token = bearer(device_token(client))
    assert_error(
        client.post("/enrollment", json=enrollment(spelling), headers=token), 400, names="EmmDeviceId"
    )
    nonce = client.get(
        "/enrollment/nonce", params={"emmDeviceId": spelling, "deviceName": "X"}, headers=token
    )
    assert_error(nonce, 400)
    assert_error(client.post("/enrollment/checkin", json={"emmDeviceId": spelling}, headers=token), 400)
    assert client.get(REPORT, headers=ADMIN).json()["total"] == 0


# --- records made by requests that prove nothing ---------------------------------------------


def test_unauthenticated_enrollments_with_fresh_ids_add_at_most_the_documented_bound(
    client: TestClient, config: ServerConfig
) -> None:
    """1,000 enrollments without a token, each naming a new id, from one address: at most
    `unbound_rows_per_address` records a minute (60 by default, docs/protocol.md)."""
    statuses = [
        client.post("/enrollment", json=enrollment(f"fresh-{i:04d}")).status_code for i in range(1000)
    ]
    assert config.unbound_rows_per_address == 60
    assert statuses.count(200) == 60 and statuses.count(429) == 940, set(statuses)
    assert client.get(REPORT, headers=ADMIN).json()["total"] == 60
    assert unowned_rows(config.db_path) == 60


def test_unowned_records_are_capped_and_stale_ones_make_room(tmp_path: Path) -> None:
    clock = ManualClock()
    config = ServerConfig(
        data_dir=tmp_path, max_unbound_devices=3, principals={ADMIN_TOKEN: Principal("a", True)}
    )
    app = create_app(config, clock)
    with TestClient(app) as http:
        codes = [http.post("/enrollment", json=enrollment(f"n{i}")).status_code for i in range(4)]
        assert codes == [200, 200, 200, 429]
        assert http.post("/enrollment", json=enrollment("n0")).status_code == 200, "a known id needs no room"
        # A device that proves itself is never held back by the unowned records.
        assert (
            http.post("/enrollment", json=enrollment("real"), headers=bearer(device_token(http))).status_code
            == 200
        )
        clock.advance(config.stale_unbound_after.total_seconds() + 1)
        assert http.post("/enrollment", json=enrollment("n9")).status_code == 200
        ids = {row["Device ID"] for row in http.get(REPORT, headers=ADMIN).json()["rows"]}
        assert ids == {"real", "n9"}, ids
    app.state.context.store.close()
