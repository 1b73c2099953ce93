"""The result type every verifier function returns."""

from __future__ import annotations

from typing import NamedTuple


class Check(NamedTuple):
    """One check's outcome. A tuple rather than a frozen dataclass: an evaluation makes about 40
    of them, and a frozen dataclass took twice as long to build, 4% of an evaluation."""

    name: str
    passed: bool
    detail: str = ""


def ok(name: str, detail: str = "") -> Check:
    return Check(name, True, detail)


def fail(name: str, detail: str) -> Check:
    return Check(name, False, detail)
