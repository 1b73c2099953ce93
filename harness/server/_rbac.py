"""Who may call the admin API: principals from an RBAC file, or one generated admin.

The RBAC file is YAML:

    principals:
      - name: alice
        token: "a long random secret"
        permissions:
          remote_tasks: true   # may trigger the Attest device action
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._yamlfile import more_errors, parse_mapping, read_text
from ..errors import RbacError
from ._config import Principal

# Short tokens can be guessed; 16 characters of anything is the least we accept.
MIN_TOKEN_LENGTH = 16


class Permissions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    remote_tasks: bool = False


class PrincipalEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=128)
    token: str = Field(min_length=MIN_TOKEN_LENGTH, max_length=4096, pattern=r"^[\x21-\x7e]+$")
    permissions: Permissions = Field(default_factory=Permissions)


class RbacFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    principals: list[PrincipalEntry] = Field(min_length=1)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "string_pattern_mismatch":
        return "must be printable ASCII without spaces"
    # The token's value never appears in a message: it is a secret.
    return str(error["msg"])


def parse_rbac(text: str, source: str = "<rbac>") -> dict[str, Principal]:
    """Bearer token -> principal; raises RbacError naming the file, line and field."""
    yaml_doc = parse_mapping(text, source, RbacError, "an RBAC file is a mapping with a 'principals' list")
    try:
        document = RbacFile.model_validate(yaml_doc.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise yaml_doc.error(
            tuple(first["loc"]), _message(first) + more_errors(len(exc.errors()) - 1)
        ) from exc
    principals: dict[str, Principal] = {}
    names: set[str] = set()
    for index, entry in enumerate(document.principals):
        for key, taken, what in (
            ("name", entry.name in names, "name"),
            ("token", entry.token in principals, "token"),
        ):
            if taken:
                raise yaml_doc.error(("principals", index, key), f"{what} is used twice")
        names.add(entry.name)
        principals[entry.token] = Principal(entry.name, remote_tasks=entry.permissions.remote_tasks)
    return principals


def load_rbac(path: Path) -> dict[str, Principal]:
    return parse_rbac(read_text(path, RbacError), str(path))


DEFAULT_ADMIN = "admin"


def default_admin(token_path: Path) -> dict[str, Principal]:
    """One admin with the Remote tasks permission; its token is kept in token_path (mode 0600).

    An existing token file is reused, so a restarted server keeps accepting the same token.
    """
    try:
        token = token_path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    if len(token) < MIN_TOKEN_LENGTH:
        token = secrets.token_urlsafe(32)
        token_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = token_path.with_name(token_path.name + ".tmp")
        temporary.unlink(missing_ok=True)
        # Created 0600 from the start: the token is never readable by others, not even briefly.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
        os.replace(temporary, token_path)
    token_path.chmod(0o600)
    return {token: Principal(DEFAULT_ADMIN, remote_tasks=True)}
