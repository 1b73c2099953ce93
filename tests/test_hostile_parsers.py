"""Requests whose bytes once made a parser raise past the verifier (a 500): each now gets a
4xx that names what is wrong, and the connection stays usable."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from harness.server import ManualClock, Principal, ServerConfig
from tests.serving import served

from .test_server_api import assert_error, device_token

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
# A PKCS#7 ContentInfo of type data (1.2.840.113549.1.7.1), not signedData.
PKCS7_DATA = "MA8GCSqGSIb3DQEHAaACBAA="


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = ServerConfig(
        data_dir=tmp_path / "data", principals={ADMIN["Authorization"][7:]: Principal("a", True)}
    )
    with served(config, ManualClock()) as test_client:
        yield test_client


def enrollment(emm: str, **items: str) -> dict[str, object]:
    return {
        "EnrollmentVersion": "5.0",
        "ContextItems": {"DeviceName": "PC", "EmmDeviceId": emm, "OSVersion": "10.0.22631.2792", **items},
    }


def es256_token_with_the_idp_rsa_kid(client: TestClient) -> str:
    """A token whose header names ES256 and the identity provider's RSA key id."""
    kid = client.get("/entra/keys").json()["keys"][0]["kid"]
    forger = ec.generate_private_key(ec.SECP256R1())
    claims = {"deviceid": "x", "iss": "i", "aud": "a", "exp": 2**31, "iat": 0}
    return jwt.encode(claims, forger, algorithm="ES256", headers={"kid": kid})


def test_a_pkcs7_chain_that_is_not_signed_data_is_a_400_naming_the_item(client: TestClient) -> None:
    token = device_token(client)
    body = enrollment("d1", AIKCertChain=PKCS7_DATA)
    response = client.post("/enrollment", json=body, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 400, error="malformed_request", names="AIKCertChain")
    assert "signedData" in response.json()["reason"]
    # Nothing was recorded, and the next request on the connection is served.
    report = client.get("/admin/reports/device-attestation", headers=ADMIN)
    assert report.status_code == 200 and report.json()["total"] == 0


def test_a_chain_that_is_not_pkcs7_at_all_is_a_400(client: TestClient) -> None:
    token = device_token(client)
    body = enrollment("d1", AIKCertChain=base64.b64encode(b"\x30\x03\x02\x01\x00").decode())
    response = client.post("/enrollment", json=body, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 400, error="malformed_request", names="AIKCertChain")


def test_an_es256_header_naming_an_rsa_kid_is_refused_on_every_device_endpoint(client: TestClient) -> None:
    forged = {"Authorization": f"Bearer {es256_token_with_the_idp_rsa_kid(client)}"}
    nonce = client.get("/enrollment/nonce", params={"emmDeviceId": "d1", "deviceName": "PC"}, headers=forged)
    assert_error(nonce, 401, error="unauthenticated")
    checkin = client.post("/enrollment/checkin", json={"emmDeviceId": "d1"}, headers=forged)
    assert checkin.status_code == 401, checkin.text
    # An enrolled device: the forged token proves nothing, so the request is refused.
    token = device_token(client)
    first = client.post("/enrollment", json=enrollment("d1"), headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 200, first.text
    assert_error(client.post("/enrollment", json=enrollment("d1"), headers=forged), 401)


def test_an_es256_header_naming_an_rsa_kid_never_attests_a_new_id(client: TestClient) -> None:
    forged = {"Authorization": f"Bearer {es256_token_with_the_idp_rsa_kid(client)}"}
    response = client.post("/enrollment", json=enrollment("fresh"), headers=forged)
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
    if response.status_code == 200:
        row = client.get("/admin/devices/fresh", headers=ADMIN).json()
        assert row["Status detail"] == "Authentication failed"
        assert "token.algorithm" in json.dumps(row)
