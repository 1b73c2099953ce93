"""The reference server's HTTP contract, as a client depends on it (the real app, in-process)."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from harness.server import Principal, ServerConfig
from tests.serving import served

ADMIN = {"Authorization": "Bearer tok"}
LIMIT = 64 * 1024
MAX_BLOB = 16 * 1024
REPORT = "/admin/reports/device-attestation"
COLUMNS = [
    "Device name",
    "Device ID",
    "UPN",
    "Device attestation status",
    "Status detail",
    "OS",
    "OS version",
    "Ownership",
    "Last check-in",
    "Enrollment date",
    "TPM version",
    "TPM manufacturer",
    "Model",
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with served(ServerConfig(data_dir=tmp_path, principals={"tok": Principal("a", True)})) as test_client:
        yield test_client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def random_b64(size: int) -> str:
    return b64(os.urandom(size))


def enrollment(**items: Any) -> dict[str, Any]:
    return {
        "EnrollmentVersion": "5.0",
        "ContextItems": {
            "DeviceName": "PC-0001",
            "EmmDeviceId": "emm-0001",
            "OSVersion": "10.0.22631.2792",
            **items,
        },
    }


def assert_error(
    response: httpx.Response,
    status: int,
    *,
    names: str | None = None,
    error: str | None = None,
    hresult: str | None = None,
) -> dict[str, Any]:
    """A 4xx with the error body every client parses: {error, hresult, reason}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "hresult", "reason"}, body
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer "), response.headers
    assert isinstance(body["error"], str) and body["error"]
    assert re.fullmatch(r"0x[0-9A-Fa-f]{8}", body["hresult"]), body
    assert isinstance(body["reason"], str) and body["reason"]
    if names is not None:
        assert names in body["reason"], body
    if error is not None:
        assert body["error"] == error, body
    if hresult is not None:
        assert body["hresult"].upper() == hresult.upper(), body
    return body


def report_rows(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get(REPORT, headers=ADMIN)
    assert response.status_code == 200, response.text
    return {row["Device ID"]: row for row in response.json()["rows"]}


# --- malformed enrollment requests ---------------------------------------------------------


def test_enrollment_non_json_body(client: TestClient) -> None:
    response = client.post(
        "/enrollment", content=b"this is not json", headers={"content-type": "application/json"}
    )
    body = assert_error(response, 400)
    assert "JSON" in body["reason"]


def test_enrollment_non_json_body_without_content_type(client: TestClient) -> None:
    assert_error(client.post("/enrollment", content=b"this is not json"), 400)


def test_enrollment_empty_object_names_missing_fields(client: TestClient) -> None:
    body = assert_error(client.post("/enrollment", json={}), 400, error="malformed_request")
    assert "EnrollmentVersion" in body["reason"]
    assert "ContextItems" in body["reason"]


def test_enrollment_json_list(client: TestClient) -> None:
    assert_error(client.post("/enrollment", json=[1, 2]), 400)


def test_enrollment_missing_context_item(client: TestClient) -> None:
    request = enrollment()
    del request["ContextItems"]["EmmDeviceId"]
    assert_error(client.post("/enrollment", json=request), 400, names="EmmDeviceId")


def test_enrollment_unknown_context_item(client: TestClient) -> None:
    response = client.post("/enrollment", json=enrollment(FavouriteColour="teal"))
    assert_error(response, 400, names="FavouriteColour", error="malformed_request")


def test_enrollment_aik_pub_not_base64(client: TestClient) -> None:
    response = client.post("/enrollment", json=enrollment(AIKPub="*** not base64 ***"))
    assert_error(response, 400, names="AIKPub")


def test_enrollment_aik_pub_not_a_string(client: TestClient) -> None:
    assert_error(client.post("/enrollment", json=enrollment(AIKPub=12345)), 400, names="AIKPub")


@pytest.mark.parametrize(
    "size", [MAX_BLOB + 1, MAX_BLOB + 2048], ids=["decodes-over-limit", "text-over-limit"]
)
def test_enrollment_blob_over_size_limit(client: TestClient, size: int) -> None:
    blob = random_b64(size)
    assert len(blob) < LIMIT  # refused by the field's limit, not the body limit
    response = client.post("/enrollment", json=enrollment(AIKCert=blob))
    assert_error(response, 400, names="AIKCert")


def test_enrollment_blob_at_size_limit_is_accepted(client: TestClient) -> None:
    response = client.post("/enrollment", json=enrollment(AIKCert=random_b64(MAX_BLOB)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ["123", "0x123", "0xZZZZZZZZ", "80004005", "0x800040050"])
def test_enrollment_bad_attestation_hresult(client: TestClient, value: str) -> None:
    response = client.post("/enrollment", json=enrollment(AttestationStatusHResult=value))
    assert_error(response, 400, names="AttestationStatusHResult")


def test_enrollment_bad_enrollment_version(client: TestClient) -> None:
    request = enrollment()
    request["EnrollmentVersion"] = "five"
    assert_error(client.post("/enrollment", json=request), 400, names="EnrollmentVersion")


def test_enrollment_bad_ownership(client: TestClient) -> None:
    response = client.post("/enrollment", json=enrollment(Ownership="Borrowed"))
    assert_error(response, 400, names="Ownership")


@pytest.mark.parametrize("header", ["Basic x", "Bearer", "Bearer   ", "Token abc"])
def test_enrollment_authorization_not_bearer(client: TestClient, header: str) -> None:
    response = client.post("/enrollment", json=enrollment(), headers={"Authorization": header})
    assert_error(response, 400, names="Authorization")


# --- the body size limit -----------------------------------------------------------------------


def test_body_over_limit_with_content_length(client: TestClient) -> None:
    request = client.build_request(
        "POST",
        "/enrollment",
        content=b"x" * (LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert request.headers["content-length"] == str(LIMIT + 1)
    response = client.send(request)
    assert_error(response, 413, error="request_too_large")


def test_body_over_limit_chunked(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 1024 + 8):
            yield b" " * 1024

    request = client.build_request(
        "POST", "/enrollment", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = client.send(request)
    assert_error(response, 413, error="request_too_large")


def test_body_over_limit_on_every_route(client: TestClient) -> None:
    for path in ("/aik/challenge", "/aik/activate", "/entra/devices", "/entra/token"):
        response = client.post(path, content=b"{" * (LIMIT + 1))
        assert_error(response, 413, error="request_too_large")


def test_body_at_limit_is_parsed(client: TestClient) -> None:
    response = client.post("/enrollment", content=b" " * LIMIT, headers={"content-type": "application/json"})
    assert_error(response, 400)


# --- the AIK CA ------------------------------------------------------------------------------


def test_aik_challenge_without_ek_certificate(client: TestClient) -> None:
    response = client.post("/aik/challenge", json={"ekPub": random_b64(64), "aikPub": random_b64(64)})
    assert_error(response, 403, error="untrusted_ek", hresult="0x80094810")


def test_aik_challenge_garbage_ek_certificate(client: TestClient) -> None:
    response = client.post(
        "/aik/challenge",
        json={"ekCert": random_b64(300), "ekPub": random_b64(64), "aikPub": random_b64(64)},
    )
    assert_error(response, 400, hresult="0x80094810")


def test_aik_challenge_missing_keys(client: TestClient) -> None:
    body = assert_error(client.post("/aik/challenge", json={}), 400)
    assert "ekPub" in body["reason"]
    assert "aikPub" in body["reason"]


def test_aik_activate_unknown_challenge(client: TestClient) -> None:
    response = client.post(
        "/aik/activate", json={"challengeId": "no-such-challenge", "secret": random_b64(32)}
    )
    assert_error(response, 404, error="unknown_challenge")


def test_aik_activate_secret_not_base64(client: TestClient) -> None:
    response = client.post("/aik/activate", json={"challengeId": "x", "secret": "!!"})
    assert_error(response, 400, names="secret")


# --- the identity provider ------------------------------------------------------------------


def device_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, spki


def idp_nonce(client: TestClient) -> str:
    response = client.post("/entra/nonce")
    assert response.status_code == 200, response.text
    return str(response.json()["nonce"])


def device_assertion(client: TestClient, device_id: str, key: ec.EllipticCurvePrivateKey) -> str:
    """What a registered device signs to ask for its token."""
    claims = {"sub": device_id, "iat": int(time.time()), "request_nonce": idp_nonce(client)}
    return jwt.encode(claims, key, algorithm="ES256")


def register(client: TestClient) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key, spki = device_key()
    response = client.post("/entra/devices", json={"displayName": "PC-0001", "keySpki": b64(spki)})
    assert response.status_code == 200, response.text
    return str(response.json()["deviceId"]), key


def test_entra_register_garbage_key(client: TestClient) -> None:
    response = client.post("/entra/devices", json={"displayName": "PC-0001", "keySpki": random_b64(80)})
    assert_error(response, 400, names="keySpki")


def test_entra_register_key_not_base64(client: TestClient) -> None:
    response = client.post("/entra/devices", json={"displayName": "PC", "keySpki": "%%%"})
    assert_error(response, 400, names="keySpki")


def test_entra_token_for_unregistered_device(client: TestClient) -> None:
    key, _ = device_key()
    assertion = jwt.encode(
        {"sub": "00000000-0000-4000-8000-000000000000", "iat": int(time.time())},
        key,
        algorithm="ES256",
    )
    response = client.post("/entra/token", json={"assertion": assertion, "upn": "a@contoso.com"})
    assert_error(response, 401, error="invalid_grant")


def test_entra_token_assertion_not_a_jwt(client: TestClient) -> None:
    response = client.post("/entra/token", json={"assertion": "garbage", "upn": "a@contoso.com"})
    assert_error(response, 401, error="invalid_grant")


def test_entra_token_assertion_signed_by_another_key(client: TestClient) -> None:
    device_id, _ = register(client)
    other, _ = device_key()
    assertion = jwt.encode(
        {"sub": device_id, "iat": int(time.time()), "request_nonce": idp_nonce(client)},
        other,
        algorithm="ES256",
    )
    response = client.post("/entra/token", json={"assertion": assertion, "upn": "a@contoso.com"})
    assert_error(response, 401, error="invalid_grant")


def test_entra_token_for_registered_device(client: TestClient) -> None:
    device_id, key = register(client)
    assertion = device_assertion(client, device_id, key)
    response = client.post("/entra/token", json={"assertion": assertion, "upn": "a@contoso.com"})
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["accessToken"], options={"verify_signature": False})
    assert claims["deviceid"] == device_id


def test_entra_token_assertion_without_nonce(client: TestClient) -> None:
    device_id, key = register(client)
    assertion = jwt.encode({"sub": device_id, "iat": int(time.time())}, key, algorithm="ES256")
    body = assert_error(
        client.post("/entra/token", json={"assertion": assertion, "upn": "a@contoso.com"}), 401
    )
    assert "request_nonce" in body["reason"]


def test_entra_token_assertion_with_a_nonce_from_another_provider(client: TestClient) -> None:
    device_id, key = register(client)
    foreign_key, _ = device_key()
    forged = jwt.encode({"purpose": "device-assertion", "exp": int(time.time()) + 600}, foreign_key, "ES256")
    assertion = jwt.encode(
        {"sub": device_id, "iat": int(time.time()), "request_nonce": forged}, key, algorithm="ES256"
    )
    body = assert_error(
        client.post("/entra/token", json={"assertion": assertion, "upn": "a@contoso.com"}), 401
    )
    assert "not issued by this identity provider" in body["reason"]


@pytest.mark.parametrize("iat", ["yesterday", 1e20], ids=["text", "huge"])
def test_entra_token_assertion_with_bad_iat(client: TestClient, iat: object) -> None:
    device_id, key = register(client)
    assertion = jwt.encode(
        {"sub": device_id, "iat": iat, "request_nonce": idp_nonce(client)}, key, algorithm="ES256"
    )
    response = client.post("/entra/token", json={"assertion": assertion, "upn": "a@contoso.com"})
    assert_error(response, 401, error="invalid_grant")


# --- nonces ----------------------------------------------------------------------------------


def test_nonce_without_parameters(client: TestClient) -> None:
    body = assert_error(client.get("/enrollment/nonce"), 400)
    assert "emmDeviceId" in body["reason"]
    assert "deviceName" in body["reason"]


def test_nonce_parameter_too_long(client: TestClient) -> None:
    response = client.get("/enrollment/nonce", params={"emmDeviceId": "x" * 200, "deviceName": "PC"})
    assert_error(response, 400, names="emmDeviceId")


# --- the admin side --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic tok"}, {"Authorization": "tok"}],
    ids=["none", "unknown-token", "basic-scheme", "no-scheme"],
)
def test_admin_report_needs_a_known_token(client: TestClient, headers: dict[str, str]) -> None:
    assert_error(client.get(REPORT, headers=headers), 401, error="unauthenticated")


def test_admin_report_columns(client: TestClient) -> None:
    response = client.get(REPORT, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == COLUMNS
    assert (body["total"], body["rows"]) == (0, [])


def test_admin_report_rows_carry_the_columns_in_order(client: TestClient) -> None:
    response = client.get(
        "/enrollment/nonce",
        params={"emmDeviceId": "emm-0001", "deviceName": "PC-0001"},
        headers={"Authorization": f"Bearer {user_token(client)}"},
    )
    assert response.status_code == 200
    (row,) = report_rows(client).values()
    assert list(row)[: len(COLUMNS)] == COLUMNS


def test_admin_report_bad_filter(client: TestClient) -> None:
    response = client.get(REPORT, headers=ADMIN, params={"status": "Fine"})
    assert_error(response, 400, names="status")


def test_admin_unknown_device(client: TestClient) -> None:
    assert_error(client.get("/admin/devices/unknown", headers=ADMIN), 404, error="unknown_device")


def test_admin_device_needs_a_token(client: TestClient) -> None:
    assert_error(client.get("/admin/devices/unknown"), 401)


def test_openapi_lists_the_routes(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, method in [
        ("/aik/challenge", "post"),
        ("/aik/activate", "post"),
        ("/entra/devices", "post"),
        ("/entra/token", "post"),
        ("/enrollment/nonce", "get"),
        ("/enrollment", "post"),
        (REPORT, "get"),
    ]:
        assert method in paths.get(path, {}), path


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/enrollment", b'{"EnrollmentVersion": "\xff"}'),
        ("POST", "/enrollment", b"[" * 30_000 + b"]" * 30_000),
        ("GET", "/enrollment", None),
        ("GET", "/no/such/route", None),
    ],
    ids=["not-utf8", "too-deep", "wrong-method", "unknown-path"],
)
def test_every_refusal_has_the_error_body(
    client: TestClient, method: str, path: str, content: bytes | None
) -> None:
    response = client.request(method, path, content=content, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


# --- what the report shows ---------------------------------------------------------------------


def test_nonce_shows_the_device_in_progress(client: TestClient) -> None:
    response = client.get(
        "/enrollment/nonce",
        params={"emmDeviceId": "emm-0042", "deviceName": "PC-0042"},
        headers={"Authorization": f"Bearer {user_token(client)}"},
    )
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["nonce"], validate=True)
    row = report_rows(client)["emm-0042"]
    assert row["Device name"] == "PC-0042"
    assert row["Device attestation status"] == "In progress"
    assert row["Status detail"] == "Attestation is in process"


def garbage_evidence() -> dict[str, str]:
    return {
        "AIKAttestationClaim": random_b64(256),
        "AIKPub": random_b64(280),
        "AIKCert": random_b64(900),
        "MDMPub": random_b64(280),
        "TPMVersion": "2.0",
        "TPMManufacturer": "id:49465800",
    }


def user_token(client: TestClient) -> str:
    response = client.post("/entra/token", json={"upn": "a@contoso.com"})
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


def device_token(client: TestClient) -> str:
    device_id, key = register(client)
    assertion = device_assertion(client, device_id, key)
    response = client.post("/entra/token", json={"assertion": assertion, "upn": "a@contoso.com"})
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


@pytest.mark.parametrize("token_kind", ["not-a-jwt", "user-token", "device-token", "no-token"])
def test_garbage_evidence_enrolls_but_is_not_attested(client: TestClient, token_kind: str) -> None:
    token = {
        "not-a-jwt": lambda: "this.is-not-a.jwt",
        "user-token": lambda: user_token(client),
        "device-token": lambda: device_token(client),
        "no-token": lambda: None,
    }[token_kind]()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for index in range(5):  # a few draws of random bytes
        emm = f"emm-garbage-{index}"
        request = enrollment(EmmDeviceId=emm, DeviceName=f"PC-{index:04}", **garbage_evidence())
        response = client.post("/enrollment", json=request, headers=headers)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["deviceId"], answer["enrolled"]) == (emm, True)
        # Only a request that proved itself with a valid token is given a device credential.
        assert (answer["deviceCredential"] is not None) == (token_kind in ("user-token", "device-token"))

    rows = report_rows(client)
    assert len(rows) == 5
    for row in rows.values():
        assert row["Device attestation status"] == "Not attested", row
        assert row["Status detail"], row
        assert row["Enrollment date"]
    detail = client.get("/admin/devices/emm-garbage-0", headers=ADMIN)
    assert detail.status_code == 200, detail.text
    assert detail.json()["Device attestation status"] == "Not attested"


def test_nonce_then_garbage_enrollment_is_not_attested(client: TestClient) -> None:
    token = {"Authorization": f"Bearer {user_token(client)}"}
    nonce = client.get(
        "/enrollment/nonce", params={"emmDeviceId": "emm-0007", "deviceName": "PC-0007"}, headers=token
    )
    assert nonce.status_code == 200
    assert report_rows(client)["emm-0007"]["Device attestation status"] == "In progress"
    request = enrollment(EmmDeviceId="emm-0007", DeviceName="PC-0007", **garbage_evidence())
    response = client.post("/enrollment", json=request, headers=token)
    assert response.status_code == 200, response.text
    row = report_rows(client)["emm-0007"]
    assert row["Device attestation status"] == "Not attested"
    assert row["Status detail"] not in ("", "Attestation is in process")
