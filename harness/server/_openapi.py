"""What the OpenAPI document says beyond what FastAPI derives: every error status an
operation can send, with the error body and its headers, and the two bearer schemes."""

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
# which proves what); {} because a first enrollment without a valid token is still judged.
DEVICE_SECURITY: dict[str, Any] = {
    "security": [{"entraToken": []}, {"deviceCredential": []}, {"deviceCredential": [], "entraToken": []}, {}]
}
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


def install(app: FastAPI) -> None:
    """Replace app.openapi with one that adds the schemes and drops FastAPI's unused 422."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                # The server answers validation errors with 400 and the error body, never 422.
                operation.get("responses", {}).pop("422", None)
        components = schema.setdefault("components", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(unused, None)
        components["securitySchemes"] = _SCHEMES
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
