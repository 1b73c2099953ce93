"""schemathesis against the server's own OpenAPI, on a real server on loopback: no request it
generates gets a 500, and every status the server sends is one the document lists; operation by
operation, and in sequences that follow the document's links (stateful). Then what the
document says of each limit and refusal, checked against the server."""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harness.protocol import MAX_BLOB
from harness.server import EmbeddedServer, ManualClock, Principal, ServerConfig
from tests.serving import served

ADMIN_TOKEN = "fuzz-admin-token-0123456789"
# Per operation; about 15 operations, so a few hundred requests in all, well under two minutes.
EXAMPLES = 30


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    config = ServerConfig(
        data_dir=tmp_path_factory.mktemp("fuzzed") / "data",
        principals={ADMIN_TOKEN: Principal("fuzzer", remote_tasks=True)},
    )
    with EmbeddedServer(config, ManualClock()) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: EmbeddedServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _fuzz(operation: Any, headers: dict[str, str] | None, statuses: Counter[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def exercise(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses[response.status_code] += 1

    exercise()


def test_no_500_and_no_undocumented_status(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    statuses: Counter[int] = Counter()
    for operation in operations:
        admin = operation.path.startswith("/admin")
        _fuzz(operation, {"Authorization": f"Bearer {ADMIN_TOKEN}"} if admin else None, statuses)
    # The requests really reached the server, and not all were refused at the door.
    assert sum(statuses.values()) >= len(operations) * 5, statuses
    assert statuses[200] > 0 and statuses[400] > 0, statuses


def test_the_document_lists_the_error_statuses_and_schemes(api_schema: schemathesis.BaseSchema) -> None:
    raw = api_schema.raw_schema
    assert set(raw["components"]["securitySchemes"]) == {"entraToken", "deviceCredential", "adminToken"}
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "422" not in codes, (method, path)
            assert {"400", "405"} <= codes, (method, path)
            for code in codes - {"200", "202"}:
                content = operation["responses"][code]["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/ServiceError"}, (method, path, code)


def test_fields_are_described(api_schema: schemathesis.BaseSchema) -> None:
    schemas = api_schema.raw_schema["components"]["schemas"]
    for name in ("ContextItems", "EnrollmentRequest", "AikChallengeRequest", "TokenRequest", "ServiceError"):
        for field, spec in schemas[name]["properties"].items():
            if field in ("Ownership", "ContextItems"):
                continue
            assert spec.get("description"), (name, field)


# Sequences of up to this many calls, each following a link of the previous answer.
STATEFUL_EXAMPLES = 25
STATEFUL_STEPS = 6


def test_stateful_sequences_along_the_links(api_schema: schemathesis.BaseSchema) -> None:
    links = [
        (path, method, code)
        for path, operations in api_schema.raw_schema["paths"].items()
        for method, operation in operations.items()
        for code, response in operation["responses"].items()
        if response.get("links")
    ]
    assert len(links) >= 4, links
    statuses: Counter[int] = Counter()
    followed: Counter[str] = Counter()

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            if case.path.startswith("/admin"):
                return {"headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}
            return {}

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            statuses[response.status_code] += 1
            followed[f"{case.method} {case.path}"] += 1
            case.validate_response(
                response, checks=CHECKS, headers=kwargs.get("headers"), transport_kwargs=kwargs or None
            )

    Machine.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert sum(statuses.values()) >= STATEFUL_EXAMPLES, statuses
    assert statuses[500] == 0
    assert followed["POST /aik/activate"] or followed["GET /admin/devices/{device_id}"], followed


# --- what the document says, against what the server does --------------------------------------


@pytest.fixture
def client(tmp_path: Any) -> Iterator[TestClient]:
    config = ServerConfig(data_dir=tmp_path / "data", principals={ADMIN_TOKEN: Principal("a", True)})
    with served(config, ManualClock()) as http:
        yield http


def test_nonce_and_checkin_are_not_anonymous_in_the_document(api_schema: schemathesis.BaseSchema) -> None:
    paths = api_schema.raw_schema["paths"]
    for path, method in (("/enrollment/nonce", "get"), ("/enrollment/checkin", "post")):
        assert {} not in paths[path][method]["security"], path
    assert {} in paths["/enrollment"]["post"]["security"], "a first enrollment is judged without a token"


def test_base64_fields_say_the_real_cap(
    api_schema: schemathesis.BaseSchema, fuzzed_server: EmbeddedServer
) -> None:
    spec = api_schema.raw_schema["components"]["schemas"]["AikActivateRequest"]["properties"]["secret"]
    pattern = re.compile(spec["pattern"])
    at_cap = base64.b64encode(b"x" * MAX_BLOB).decode()
    over = base64.b64encode(b"x" * (MAX_BLOB + 1)).decode()
    assert spec["maxLength"] == len(at_cap) == 21_848
    assert pattern.match(at_cap) and not pattern.match(over)
    assert not pattern.match(base64.b64encode(b"x" * (MAX_BLOB + 2)).decode()), (
        "21,848 characters, 16,386 bytes"
    )
    import httpx

    with httpx.Client(base_url=fuzzed_server.url) as http:
        allowed = http.post("/aik/activate", json={"challengeId": "c", "secret": at_cap})
        refused = http.post("/aik/activate", json={"challengeId": "c", "secret": over})
    assert allowed.status_code == 404, allowed.text  # past the size check: no such challenge
    assert refused.status_code == 400 and "secret" in refused.text, refused.text


def test_every_body_says_the_64_kib_limit(api_schema: schemathesis.BaseSchema) -> None:
    raw = api_schema.raw_schema
    assert raw["info"]["x-max-body-bytes"] == 64 * 1024
    bodies = 0
    for operations in raw["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                bodies += 1
                assert operation["requestBody"]["x-max-body-bytes"] == 64 * 1024
                assert "413" in operation["responses"]
    assert bodies >= 8


def test_entra_nonce_refuses_a_body_that_is_not_json(client: TestClient) -> None:
    assert client.post("/entra/nonce").status_code == 200
    assert client.post("/entra/nonce", json={}).status_code == 200
    for body in (b"hello", b"[]", b'{"x": 1}'):
        response = client.post("/entra/nonce", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (body, response.text)
    assert (
        client.post("/entra/nonce", content=b"a=b", headers={"Content-Type": "text/plain"}).status_code == 400
    )


def test_the_attest_action_is_not_shadowed_by_the_device_path(client: TestClient) -> None:
    response = client.get("/admin/devices/attest", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 405 and response.headers["Allow"] == "POST", response.text


@pytest.mark.parametrize(
    ("items", "field"),
    [({"TPMManufacturer": "id:ZZ"}, "TPMManufacturer"), ({"OSVersion": ""}, "OSVersion")],
)
def test_claims_the_docs_refuse_are_refused(client: TestClient, items: dict[str, str], field: str) -> None:
    body = {
        "EnrollmentVersion": "5.0",
        "ContextItems": {"DeviceName": "PC", "EmmDeviceId": "d", "OSVersion": "10.0.22631.2792", **items},
    }
    response = client.post("/enrollment", json=body)
    assert response.status_code == 400 and field in response.json()["reason"], response.text


def test_a_deviceid_claim_that_is_a_list_proves_no_device(client: TestClient) -> None:
    ctx = client.app.state.context  # type: ignore[attr-defined]
    now = int(ctx.clock.now().timestamp())
    claims = {"iss": ctx.config.token_issuer, "aud": ctx.config.token_audience, "iat": now, "exp": now + 600}
    listed = jwt.encode(
        {**claims, "upn": "u@x", "deviceid": ["a", "b"]},
        ctx.idp_key.key,
        algorithm="RS256",
        headers={"kid": ctx.idp_key.kid},
    )
    response = client.get(
        "/enrollment/nonce",
        params={"emmDeviceId": "d", "deviceName": "PC"},
        headers={"Authorization": f"Bearer {listed}"},
    )
    assert response.status_code == 401, response.text


def test_no_page_loads_scripts_from_a_cdn(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404, path
    assert client.get("/openapi.json").status_code == 200
