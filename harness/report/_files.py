"""Writing report files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step.

    A CI job or a browser may read a report while a re-run rewrites it; the temporary file
    lives in the target directory so that os.replace stays a rename on one file system.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600; a report is meant to be read by others (CI artefacts).
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def encode_text(text: str) -> bytes:
    # Strings that came from undecodable bytes carry lone surrogates, which UTF-8 cannot hold.
    # Written as \\udcXX they stay valid JSON escapes inside JSON strings and stay visible
    # elsewhere, instead of the whole report failing to write.
    return text.encode("utf-8", errors="backslashreplace")
