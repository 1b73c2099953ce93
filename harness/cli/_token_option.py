"""How `harness run --server` gets the admin token: from the environment or a file, so that it
never has to be on a command line (where every process list shows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import HarnessError

AdminTokenOption = Annotated[
    str | None,
    typer.Option(
        envvar="HARNESS_ADMIN_TOKEN",
        help="admin bearer token for --server; prefer the environment variable or --admin-token-file "
        "(a token on the command line shows in the process list)",
    ),
]
AdminTokenFileOption = Annotated[
    Path | None,
    typer.Option(
        envvar="HARNESS_ADMIN_TOKEN_FILE",
        help="file holding the admin bearer token for --server (such as the server's admin-token)",
    ),
]


def read_admin_token(token: str | None, token_file: Path | None) -> str | None:
    """The token given, or the one in the file (surrounding whitespace removed)."""
    if token_file is None:
        return token
    if token is not None:
        raise HarnessError("give the admin token once: --admin-token or --admin-token-file")
    try:
        read = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read the admin token from {token_file}: {exc}") from exc
    if not read:
        raise HarnessError(f"{token_file} holds no admin token")
    return read
