"""What the OpenAPI document says beyond what FastAPI derives: every error status an
operation can send, with the error body and its headers, the bearer schemes, the body size
limit, and the links between operations (what one answer gives the next request)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..protocol import ServiceError

_STATUS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Malformed request: bad JSON, a field out of bounds, control characters, bad UTF-8.", {}),
    401: (
        "Not authenticated: no or an unknown bearer token or device credential. Nothing is recorded.",
        {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    ),
    403: ("Refused: the caller may not do this, or the evidence it sent is not trusted.", {}),
    404: ("Not found: no such device, challenge, or (on a real clock) no clock to move.", {}),
    405: (
        "Method not allowed on this path.",
        {"Allow": {"description": "The methods the path accepts.", "schema": {"type": "string"}}},
    ),
    409: ("Replayed request: its nonce was used already. Nothing is recorded.", {}),
    413: ("Request body over the server's limit (64 KiB by default).", {}),
    429: (
        "Too many requests (rate limit, or the one-minute rule of the Attest device action).",
        {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    ),
}

# Sent by any operation: bytes the server cannot read, and a method the path does not take.
_ALWAYS = (400, 405)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of an operation, for its `responses=`."""
    result: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*_ALWAYS, *codes}):
        description, headers = _STATUS[code]
        entry: dict[str, Any] = {"model": ServiceError, "description": description}
        if headers:
            entry["headers"] = headers
        result[code] = entry
    return result


# Device requests: the Entra token, the device credential, or both (see docs/protocol.md for
# which proves what). A nonce and a check-in need one (401 without); an enrollment is judged
# without one too ({}), recorded as nobody's, for an id nobody has claimed.
_DEVICE_PROOFS: list[dict[str, list[str]]] = [
    {"entraToken": []},
    {"deviceCredential": []},
    {"deviceCredential": [], "entraToken": []},
]
DEVICE_SECURITY: dict[str, Any] = {"security": _DEVICE_PROOFS}
ENROLLMENT_SECURITY: dict[str, Any] = {"security": [*_DEVICE_PROOFS, {}]}
ADMIN_SECURITY: dict[str, Any] = {"security": [{"adminToken": []}]}

_SCHEMES = {
    "entraToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Authorization: Bearer <accessToken from POST /entra/token> (RS256).",
    },
    "deviceCredential": {
        "type": "apiKey",
        "in": "header",
        "name": "Device-Credential",
        "description": "The deviceCredential an enrollment answer returned.",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin's token from the RBAC file (or the generated admin-token file).",
    },
}


# (source method, path, status) -> links: what an answer hands to the next request.
_LINKS: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {
    ("post", "/aik/challenge", "200"): {
        "ActivateTheAik": {
            "target": ("post", "/aik/activate"),
            "requestBody": {"challengeId": "$response.body#/challengeId"},
            "description": "The challenge id names the challenge the secret answers.",
        }
    },
    ("post", "/enrollment", "200"): {
        "DeviceDetail": {
            "target": ("get", "/admin/devices/{device_id}"),
            "parameters": {"path.device_id": "$response.body#/deviceId"},
            "description": "The enrolled device, in the admin's detail view.",
        },
        "CheckIn": {
            "target": ("post", "/enrollment/checkin"),
            "requestBody": {"emmDeviceId": "$response.body#/deviceId"},
            "description": "The enrolled device checks in (with its Device-Credential).",
        },
        "AttestTheDevice": {
            "target": ("post", "/admin/devices/attest"),
            "requestBody": {"deviceIds": ["$response.body#/deviceId"]},
            "description": "The Attest device action for the enrolled device.",
        },
    },
    ("post", "/admin/devices/attest", "202"): {
        "ActionDevice": {
            "target": ("get", "/admin/devices/{device_id}"),
            "parameters": {"path.device_id": "$response.body#/devices/0/deviceId"},
            "description": "A device the action was for, with the action's state.",
        }
    },
    ("get", "/admin/reports/device-attestation", "200"): {
        "FirstRowDetail": {
            "target": ("get", "/admin/devices/{device_id}"),
            "parameters": {"path.device_id": "$response.body#/rows/0/Device ID"},
            "description": "The first row's device, in the detail view.",
        }
    },
}


def install(app: FastAPI, max_body_bytes: int) -> None:
    """Replace app.openapi with one that adds the schemes, the body limit and the links, and
    drops FastAPI's unused 422."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema["info"]["x-max-body-bytes"] = max_body_bytes
        paths = schema.get("paths", {})
        for path in paths.values():
            for operation in path.values():
                # The server answers validation errors with 400 and the error body, never 422.
                operation.get("responses", {}).pop("422", None)
                if "requestBody" in operation:
                    _limit_body(operation, max_body_bytes)
        _link(paths)
        components = schema.setdefault("components", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(unused, None)
        components["securitySchemes"] = _SCHEMES
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _limit_body(operation: dict[str, Any], max_bytes: int) -> None:
    """Every body is refused above the limit (413) before it is parsed: say so where it is."""
    operation["requestBody"]["x-max-body-bytes"] = max_bytes
    description = operation["requestBody"].get("description", "")
    operation["requestBody"]["description"] = f"{description} At most {max_bytes} bytes (413 above).".strip()
    responses = operation.setdefault("responses", {})
    if "413" not in responses:
        responses["413"] = errors(413)[413] | {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServiceError"}}}
        }
        responses["413"].pop("model", None)


def _link(paths: dict[str, Any]) -> None:
    for (method, path, status), links in _LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {
            name: {
                "operationId": paths[link["target"][1]][link["target"][0]]["operationId"],
                **{k: v for k, v in link.items() if k != "target"},
            }
            for name, link in links.items()
        }
