"""Facts about Windows builds that both the client and the server know."""

from __future__ import annotations

# Where the simulated client persists its MDM key in the TPM (owner hierarchy range).
MDM_KEY_HANDLE = 0x81000100

# The builds from which Windows performs enrollment attestation (the source page).
MINIMUM_BUILDS: dict[int, int] = {19045: 3996, 22000: 2713, 22621: 2792, 22631: 2792}
_LATEST_LISTED = max(MINIMUM_BUILDS)


def parse_build(os_version: str) -> tuple[int, int] | None:
    """'10.0.22631.2792' -> (22631, 2792); None when it is not a Windows 10/11 version."""
    parts = os_version.strip().split(".")
    digits = all(p.isascii() and p.isdigit() for p in parts[2:])
    if len(parts) != 4 or parts[:2] != ["10", "0"] or not digits:
        return None
    return int(parts[2]), int(parts[3])


def supports_enrollment_attestation(os_version: str) -> bool:
    parsed = parse_build(os_version)
    if parsed is None:
        return False
    build, revision = parsed
    if build in MINIMUM_BUILDS:
        return revision >= MINIMUM_BUILDS[build]
    # Builds released after the page's list (24H2 and later) include the feature.
    return build > _LATEST_LISTED
