"""Which code ran: so that "the same scenario on the same code" is something a history can decide."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path

from .. import __version__

_PACKAGE = Path(__file__).resolve().parent.parent


def _git(*args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_PACKAGE.parent), *args], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.cache
def code_identity() -> str:
    """git:<commit>, with +<digest> of uncommitted changes; version:<v> outside a checkout.

    HARNESS_CODE_ID wins, for a CI job that builds from an archive without .git but knows
    its commit. Local changes get a digest, not a bare "dirty" mark: two runs with different
    edits are not the same code.
    """
    given = os.environ.get("HARNESS_CODE_ID")
    if given:
        return given
    top = _git("rev-parse", "--show-toplevel")
    # Only the checkout the harness itself lives in, never a repository that merely contains it.
    if top is None or Path(top.decode().strip()).resolve() != _PACKAGE.parent:
        return f"version:{__version__}"
    commit = (_git("rev-parse", "HEAD") or b"").decode().strip()
    if not commit:
        return f"version:{__version__}"
    changes = _git("diff", "HEAD", "--", "harness") or b""
    return f"git:{commit}" + (f"+{hashlib.sha256(changes).hexdigest()[:12]}" if changes else "")
