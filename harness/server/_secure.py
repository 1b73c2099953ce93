"""Secrets at rest: the data directory is the server user's alone (0700), its files 0600.

Checked every time the server starts, not only when it creates them: a directory made by
hand, or a file copied in with a permissive umask, would otherwise leak keys and secrets.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from ..errors import ServerError

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        log.warning("%s was mode %04o; making it %04o", path, current, mode)
        try:
            path.chmod(mode)
        except OSError as exc:
            raise ServerError(f"{path} is readable by other users and cannot be restricted: {exc}") from exc
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ServerError(f"{path} is still readable by other users")


def private_dir(path: Path) -> Path:
    """Create (0700) or check a directory only the server's user may enter."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create (0600, never briefly wider) or check a file only the server's user may read."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    _tighten(path, FILE_MODE)
    return path


def private_database(path: Path) -> None:
    """The SQLite file and its WAL and shared-memory files, when they exist."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, FILE_MODE)


def check_keys(directory: Path) -> None:
    """Every private key in the server's key directory is the server user's alone."""
    private_dir(directory)
    for entry in directory.glob("*.key.pem"):
        _tighten(entry, FILE_MODE)
