"""The server's trust boundary, one test per hole a hostile client found: nothing
unauthenticated changes a record, nothing merely claimed is believed, nothing hostile gets a 500."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from tpm2_pytss import TPM2_ALG, TPM2_ST, TPM2B_ATTEST, TPM2B_PUBLIC, TPMA_OBJECT, TPMS_ATTEST

import harness.client._windows as windows_client
from harness.client import ClientConfig, Endpoints, Inventory, WindowsClient
from harness.pki import CertificateAuthority, TPMIdentity
from harness.server import EmbeddedServer, ManualClock, Principal, ServerConfig, create_app
from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, manufacture
from tests.serving import served

from .test_server_api import assert_error, device_assertion, register, user_token

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
REPORT = "/admin/reports/device-attestation"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = ServerConfig(
        data_dir=tmp_path / "data", principals={ADMIN["Authorization"][7:]: Principal("a", True)}
    )
    with served(config, ManualClock()) as test_client:
        yield test_client


def enrollment(emm: str, **items: Any) -> dict[str, Any]:
    return {
        "EnrollmentVersion": "5.0",
        "ContextItems": {
            "DeviceName": f"PC-{emm}",
            "EmmDeviceId": emm,
            "OSVersion": "10.0.22631.2792",
            **items,
        },
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def device_token(client: TestClient) -> str:
    device_id, key = register(client)
    response = client.post(
        "/entra/token", json={"assertion": device_assertion(client, device_id, key), "upn": "u@x"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


def state_of(client: TestClient, emm: str) -> tuple[bytes, bytes]:
    """The report and the device's detail, as bytes: what must not change."""
    return client.get(REPORT, headers=ADMIN).content, client.get(
        f"/admin/devices/{emm}", headers=ADMIN
    ).content


def claim_over(nonce: bytes) -> str:
    """An AIKAttestationClaim carrying a nonce (its signature is junk: only the nonce matters here)."""
    attest = TPMS_ATTEST(magic=0xFF544347, type=TPM2_ST.ATTEST_CERTIFY, extraData=nonce)
    blob = bytes(TPM2B_ATTEST(attest.marshal()).marshal()) + b"\x00\x14\x00\x0b\x00\x00"
    return base64.b64encode(blob).decode()


def nonce_for(client: TestClient, emm: str, headers: dict[str, str]) -> bytes:
    response = client.get(
        "/enrollment/nonce", params={"emmDeviceId": emm, "deviceName": "PC"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return base64.b64decode(response.json()["nonce"])


# --- 1. nothing unauthenticated changes a record ----------------------------------------------


def test_unauthenticated_requests_leave_an_enrolled_device_unchanged(client: TestClient) -> None:
    token = device_token(client)
    first = client.post(
        "/enrollment", json=enrollment("victim", DeviceModel="ThinkPad"), headers=bearer(token)
    )
    assert first.status_code == 200, first.text
    credential = first.json()["deviceCredential"]
    assert credential
    before = state_of(client, "victim")
    someone_else = device_token(client)
    for headers in ({}, bearer("not-a-jwt"), bearer(someone_else), {"Device-Credential": "guess"}):
        forged = enrollment("victim", DeviceName="PWNED", DeviceModel="Evil", AttestationStatus="Failure")
        assert_error(client.post("/enrollment", json=forged, headers=headers), 401, error="unauthenticated")
        nonce = client.get(
            "/enrollment/nonce", params={"emmDeviceId": "victim", "deviceName": "X"}, headers=headers
        )
        assert_error(nonce, 401, error="unauthenticated")
        assert_error(client.post("/enrollment/checkin", json={"emmDeviceId": "victim"}, headers=headers), 401)
    assert state_of(client, "victim") == before
    # The device itself still gets through, with its credential alone.
    again = client.post("/enrollment", json=enrollment("victim"), headers={"Device-Credential": credential})
    assert again.status_code == 200, again.text
    assert again.json()["deviceCredential"] is None, "a request that used the credential keeps it"


def test_a_nonce_needs_a_valid_token_before_enrollment(client: TestClient) -> None:
    for headers in ({}, bearer("not-a-jwt")):
        response = client.get(
            "/enrollment/nonce", params={"emmDeviceId": "new", "deviceName": "X"}, headers=headers
        )
        assert_error(response, 401)
    assert client.get(REPORT, headers=ADMIN).json()["total"] == 0, (
        "no device is created by an unproven caller"
    )


def test_a_replayed_enrollment_is_refused_and_changes_nothing(client: TestClient) -> None:
    token = user_token(client)
    body = enrollment("d1", AIKAttestationClaim=claim_over(nonce_for(client, "d1", bearer(token))))
    assert client.post("/enrollment", json=body, headers=bearer(token)).status_code == 200
    before = state_of(client, "d1")
    credential = {"Device-Credential": "x"}
    replay = client.post("/enrollment", json=body, headers=bearer(token) | credential)
    assert_error(replay, 401)  # a user token binds by credential only; the replayer has none
    assert state_of(client, "d1") == before


def test_a_replay_from_the_device_itself_is_refused_with_409(client: TestClient) -> None:
    token = device_token(client)
    body = enrollment("d1", AIKAttestationClaim=claim_over(nonce_for(client, "d1", bearer(token))))
    assert client.post("/enrollment", json=body, headers=bearer(token)).status_code == 200
    before = state_of(client, "d1")
    assert_error(client.post("/enrollment", json=body, headers=bearer(token)), 409, error="replayed_request")
    assert state_of(client, "d1") == before


def test_a_nonce_is_bound_to_the_device_it_was_issued_to(client: TestClient) -> None:
    a, b = device_token(client), device_token(client)
    nonce = nonce_for(client, "a", bearer(a))
    stolen = enrollment("b", AIKAttestationClaim=claim_over(nonce))
    for _ in range(2):  # not b's nonce, so b cannot use it up either
        assert client.post("/enrollment", json=stolen, headers=bearer(b)).status_code == 200
    own = enrollment("a", AIKAttestationClaim=claim_over(nonce))
    assert client.post("/enrollment", json=own, headers=bearer(a)).status_code == 200
    assert_error(client.post("/enrollment", json=own, headers=bearer(a)), 409)


def test_the_device_endpoints_are_rate_limited_per_device(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path, rate_per_device=3)
    app = create_app(config)
    with TestClient(app) as http:
        token = bearer(user_token(http))
        codes = [
            http.get(
                "/enrollment/nonce", params={"emmDeviceId": "d", "deviceName": "X"}, headers=token
            ).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        limited = http.get("/enrollment/nonce", params={"emmDeviceId": "d", "deviceName": "X"}, headers=token)
        assert_error(limited, 429, error="rate_limited")
        assert int(limited.headers["Retry-After"]) >= 1
        other = http.get("/enrollment/nonce", params={"emmDeviceId": "e", "deviceName": "X"}, headers=token)
        assert other.status_code == 200, "another device is not limited by this one"
    app.state.context.store.close()


# --- 3. secrets at rest -----------------------------------------------------------------------


def test_data_dir_and_database_are_private_even_if_created_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "server.sqlite3").touch()
    (data / "server.sqlite3").chmod(0o644)
    app = create_app(ServerConfig(data_dir=data))
    with TestClient(app) as http:
        assert http.post("/entra/token", json={"upn": "u@x"}).status_code == 200
    app.state.context.store.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.glob("server.sqlite3*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((data / "keys" / "idp.key.pem").stat().st_mode) == 0o600


def test_the_database_holds_no_challenge_secret_or_credential(tmp_path: Path) -> None:
    """Whoever reads the file finds only SHA-256 digests, which answer no challenge."""
    import sqlite3

    app = create_app(ServerConfig(data_dir=tmp_path))
    with TestClient(app) as http:
        answer = http.post("/enrollment", json=enrollment("d1"), headers=bearer(user_token(http)))
        credential = answer.json()["deviceCredential"]
    app.state.context.store.close()
    db = sqlite3.connect(tmp_path / "server.sqlite3")
    columns = {row[1] for row in db.execute("PRAGMA table_info(aik_challenges)")}
    assert "secret" not in columns and "secret_sha256" in columns
    (stored,) = db.execute("SELECT credential_sha256 FROM devices").fetchone()
    assert stored == hashlib.sha256(credential.encode()).digest()
    assert credential.encode() not in (tmp_path / "server.sqlite3").read_bytes()


# --- 4. 500s that became 4xx ------------------------------------------------------------------


AIK_ATTRIBUTES = (
    TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.RESTRICTED
    | TPMA_OBJECT.SIGN_ENCRYPT
)
EK_ATTRIBUTES = (
    TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.RESTRICTED
    | TPMA_OBJECT.DECRYPT
)


def _public(key: rsa.RSAPrivateKey, attributes: TPMA_OBJECT, name_alg: int, aes: bool) -> str:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = TPM2B_PUBLIC.from_pem(pem, objectAttributes=attributes)
    public.publicArea.nameAlg = name_alg
    if aes:
        public.publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG.AES
        public.publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128
        public.publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG.CFB
    return base64.b64encode(bytes(public.marshal())).decode()


@pytest.mark.parametrize(
    ("ek_name_alg", "ek_aes", "aik_name_alg"),
    [
        (int(TPM2_ALG.SHA256), True, 0x0010),  # AIK nameAlg TPM_ALG_NULL
        (int(TPM2_ALG.SHA256), True, 0x0012),  # AIK nameAlg SM3_256 (no hash here)
        (0x0010, True, int(TPM2_ALG.SHA256)),  # EK nameAlg NULL
        (0x0012, True, int(TPM2_ALG.SHA256)),
        (int(TPM2_ALG.SHA256), False, int(TPM2_ALG.SHA256)),  # EK with a NULL symmetric algorithm
    ],
)
def test_aik_challenge_with_keys_it_cannot_use_is_a_400(
    tmp_path: Path, ek_name_alg: int, ek_aes: bool, aik_name_alg: int
) -> None:
    vendor = CertificateAuthority.create("Vendor", "Vendor", now=dt.datetime.now(dt.UTC))
    ek = rsa.generate_private_key(65537, 2048)
    ek_cert = vendor.issue_ek_certificate(
        ek.public_key(), TPMIdentity("id:49465800", "SLB9672", "id:001A000D"), now=dt.datetime.now(dt.UTC)
    )
    body = {
        "ekCert": base64.b64encode(ek_cert.public_bytes(serialization.Encoding.DER)).decode(),
        "ekPub": _public(ek, EK_ATTRIBUTES, ek_name_alg, ek_aes),
        "aikPub": _public(rsa.generate_private_key(65537, 2048), AIK_ATTRIBUTES, aik_name_alg, False),
    }
    with served(ServerConfig(data_dir=tmp_path, manufacturer_roots=[vendor.certificate])) as http:
        assert_error(http.post("/aik/challenge", json=body), 400, error="malformed_key")


def test_report_offset_past_int64_is_a_400(client: TestClient) -> None:
    assert_error(client.get(REPORT, params={"offset": 9223372036854775808}, headers=ADMIN), 400)


def test_a_device_id_with_a_slash_is_addressable(client: TestClient) -> None:
    token = user_token(client)
    assert client.post("/enrollment", json=enrollment("a/b"), headers=bearer(token)).status_code == 200
    response = client.get("/admin/devices/a%2Fb", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["Device ID"] == "a/b"


@pytest.mark.parametrize(
    "items",
    [
        {"EmmDeviceId": "d\x00"},
        {"DeviceName": "PC\x00"},
        {"DeviceName": "PC\x1b[31m"},
    ],
)
def test_control_characters_are_refused(client: TestClient, items: dict[str, str]) -> None:
    assert_error(client.post("/enrollment", json=enrollment("d", **items)), 400)


def test_invalid_utf8_in_the_query_is_refused(client: TestClient) -> None:
    response = client.get(
        "/enrollment/nonce?emmDeviceId=%FF%FE&deviceName=x", headers=bearer(user_token(client))
    )
    assert_error(response, 400)
    assert client.get(REPORT, headers=ADMIN).json()["total"] == 0


def test_an_unknown_enrollment_version_is_refused(client: TestClient) -> None:
    body = enrollment("d") | {"EnrollmentVersion": "99.99"}
    assert_error(client.post("/enrollment", json=body), 400, names="EnrollmentVersion")


def test_a_bool_is_not_a_number(client: TestClient) -> None:
    assert_error(client.post("/admin/clock/advance", json={"seconds": False}, headers=ADMIN), 400)


def test_405_says_which_methods_are_allowed(client: TestClient) -> None:
    response = client.put("/enrollment/checkin", json={})
    assert_error(response, 405)
    assert response.headers["Allow"] == "POST"


def test_tokens_are_judged_on_the_server_clock(client: TestClient) -> None:
    """After the manual clock moves, a device still gets a token and a nonce (once: 'not yet
    valid (iat)' on the real clock)."""
    assert client.post("/admin/clock/advance", json={"seconds": 30 * 86400}, headers=ADMIN).status_code == 200
    token = device_token(client)
    assert client.get(
        "/enrollment/nonce", params={"emmDeviceId": "d", "deviceName": "X"}, headers=bearer(token)
    )


# --- 2. evidence over claims (a real TPM) -----------------------------------------------------

MSFT_VTPM = TPMIdentity("id:4D534654", "Virtual TPM", "id:00020000")


@pytest.mark.skipif(shutil.which("swtpm") is None, reason="swtpm is not installed")
def test_a_vtpm_claiming_to_be_an_infineon_in_a_thinkpad_is_not_supported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vendor_ca = CertificateAuthority.create(
        "Microsoft TPM Root (test)", "Microsoft", now=dt.datetime.now(dt.UTC)
    )
    config = ServerConfig(
        data_dir=tmp_path / "server",
        manufacturer_roots=[vendor_ca.certificate],
        principals={ADMIN["Authorization"][7:]: Principal("a", True)},
    )
    # The client lies: it reports an Infineon TPM whatever its EK certificate says.
    monkeypatch.setattr(
        windows_client, "parse_tpm_san", lambda _: TPMIdentity("id:49465800", "SLB9672", "id:001A000D")
    )
    work = Path(os.path.realpath(tmp_path)) / "tpm"
    work.mkdir()
    with EmbeddedServer(config) as server:
        tpm = SwtpmBackend().start(TPMRequest(), work)
        try:
            with TimedESAPI(tpm.tcti) as esapi:
                manufacture(esapi, identity=MSFT_VTPM, issuer=vendor_ca, now=dt.datetime.now(dt.UTC))
            inventory = Inventory("LAPTOP-LIAR", "PF0LIAR", "LENOVO", "ThinkPad T14 Gen 4", "10.0.22631.2792")
            report = WindowsClient(ClientConfig(Endpoints.single(server.url), inventory), tpm).run()
        finally:
            tpm.close()
        assert report.enrolled, report.steps
        assert report.enrollment_request["ContextItems"]["TPMManufacturer"] == "id:49465800"
        import httpx

        row = httpx.get(f"{server.url}/admin/devices/{report.emm_device_id}", headers=ADMIN).json()
    assert (row["Device attestation status"], row["Status detail"]) == (
        "Not attested",
        "Feature isn't supported",
    )
    assert "id:4D534654" in row["TPM manufacturer"], "the column shows what was verified, not the claim"
    assert row["tpmEvidence"] == "verified"
    assert "platform.verified_tpm" in row["decision"]


def test_the_verified_tpm_is_found_through_the_aik_chain_the_evaluator_follows() -> None:
    """An AIK certificate issued through an intermediate names a verified TPM when the
    intermediate comes in AIKCertChain or from the trust store, as the evaluator accepts it."""
    from harness.pki import certificate_der
    from harness.verifier import Policy, verified_tpm

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    root = CertificateAuthority.create("Test AIK Root", "Test AIK PKI", now=now)
    regional = root.issue_intermediate("Regional AIK CA", "Test AIK PKI", now=now)
    identity = TPMIdentity("id:49465800", "SLB9672", "id:00070002")
    aik = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    cert = certificate_der(regional.issue_aik_certificate(aik, identity, now=now))
    policy = Policy(aik_roots=(root.certificate,), token_keys={}, token_issuer="", token_audience="")
    sent = (certificate_der(regional.certificate),)
    assert verified_tpm(cert, policy, now) is None, "no path to the root without the intermediate"
    assert verified_tpm(cert, policy, now, sent) == identity
    trusted = Policy(
        aik_roots=(root.certificate,),
        token_keys={},
        token_issuer="",
        token_audience="",
        aik_intermediates=(regional.certificate,),
    )
    assert verified_tpm(cert, trusted, now) == identity
    assert verified_tpm(cert, policy, now, (b"not a certificate",)) is None


def test_a_standalone_server_creates_its_secrets_private_from_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Directories 0700 and private keys 0600 when created, not tightened afterwards."""
    from harness.server import prepare_standalone

    data = tmp_path / "state" / "server"
    server = prepare_standalone(data_dir=data, port=0)
    try:
        directories = [data, *(p for p in data.rglob("*") if p.is_dir())]
        keys = list(data.rglob("*.key.pem"))
        assert keys, "the server made no CA or signing keys"
        for path in directories:
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        for path in [*keys, data / "admin-token"]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        server.close()
    said = capsys.readouterr().err + caplog.text
    assert "making it" not in said, said
