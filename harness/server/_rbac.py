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

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import HarnessError
from ._config import Principal

Location = tuple[str | int, ...]

# Short tokens can be guessed; 16 characters of anything is the least we accept.
MIN_TOKEN_LENGTH = 16


class RbacError(HarnessError):
    """An RBAC file is unreadable or invalid; names the file, line and field."""

    def __init__(self, path: str, line: int | None, field: str, message: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


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


def _lines(node: yaml.Node, path: Location, out: dict[Location, int], source: str) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise RbacError(source, line, _field((*path, key)), "key appears twice in the same mapping")
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out, source)


def _line_of(location: Location, lines: dict[Location, int]) -> int | None:
    for end in range(len(location), -1, -1):
        if location[:end] in lines:
            return lines[location[:end]]
    return None


def _field(location: Location) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "string_pattern_mismatch":
        return "must be printable ASCII without spaces"
    # The token's value never appears in a message: it is a secret.
    return str(error["msg"])


def parse_rbac(text: str, source: str = "<rbac>") -> dict[str, Principal]:
    """Bearer token -> principal; raises RbacError naming the file, line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark
        what = f"{exc.context}, {exc.problem}" if exc.context else str(exc.problem)
        raise RbacError(source, mark.line + 1 if mark else None, "", f"not valid YAML: {what}") from exc
    except yaml.YAMLError as exc:
        raise RbacError(source, None, "", f"not valid YAML: {exc}") from exc
    if root is None or not isinstance(data, dict):
        raise RbacError(source, 1, "", "an RBAC file is a mapping with a 'principals' list")
    lines: dict[Location, int] = {}
    _lines(root, (), lines, source)
    try:
        document = RbacFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location: Location = tuple(first["loc"])
        message = _message(first)
        extra = len(exc.errors()) - 1
        if extra:
            message += f" (and {extra} more error{'s' if extra > 1 else ''})"
        raise RbacError(source, _line_of(location, lines), _field(location), message) from exc
    principals: dict[str, Principal] = {}
    names: set[str] = set()
    for index, entry in enumerate(document.principals):
        for key, taken, what in (
            ("name", entry.name in names, "name"),
            ("token", entry.token in principals, "token"),
        ):
            if taken:
                location = ("principals", index, key)
                raise RbacError(source, _line_of(location, lines), _field(location), f"{what} is used twice")
        names.add(entry.name)
        principals[entry.token] = Principal(entry.name, remote_tasks=entry.permissions.remote_tasks)
    return principals


def load_rbac(path: Path) -> dict[str, Principal]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RbacError(source, None, "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise RbacError(source, line, "", "is not UTF-8 text") from exc
    return parse_rbac(text, source)


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
