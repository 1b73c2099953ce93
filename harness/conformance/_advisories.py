"""Where the advisory list comes from: the trust store's published advisory data.

The same list the reference server judges firmware with; `--advisories FILE`
replaces it, as it does for `harness serve` and `harness run`.
"""

from __future__ import annotations

from pathlib import Path

from ..trust import default_advisories, load_advisories
from ..verifier import FirmwareAdvisory


def current_advisories(path: Path | None = None) -> tuple[tuple[FirmwareAdvisory, ...], str]:
    """The advisories and where they come from, for the report's clause column."""
    if path is not None:
        return load_advisories(path), f"advisory file {path}"
    return default_advisories(), "shipped advisory data (harness/trust/advisories.yaml)"
