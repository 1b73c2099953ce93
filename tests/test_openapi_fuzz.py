"""schemathesis against the server's own OpenAPI, on a real server on loopback: no request it
generates gets a 500, and every status the server sends is one the document lists."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harness.server import EmbeddedServer, ManualClock, Principal, ServerConfig

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
