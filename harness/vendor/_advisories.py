"""Where the advisory list comes from: today the reference server's defaults.

Kept to this one function so that the trust store's published advisory data can replace
it without touching the checks.
"""

from __future__ import annotations

from ._identity import Advisory

SOURCE = "reference server's firmware advisory list (DEFAULT_ADVISORIES)"


def current_advisories() -> tuple[Advisory, ...]:
    from ..server import DEFAULT_ADVISORIES

    return tuple(Advisory(a.name, a.manufacturer, a.version_prefix) for a in DEFAULT_ADVISORIES)
