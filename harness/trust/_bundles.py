"""Judging bundle files: read one, pick its trust store, evaluate it (for `harness verify`)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BundleError as BundleError
from ..verifier import BundleFormatError, Verdict, judge_bundle, parse_bundle
from ._advisories import load_advisories
from ._store import TrustStore, load_trust

BESIDE = "trust"  # a run writes its trust store here, next to its bundles


@dataclass(frozen=True)
class BundleVerdict:
    path: Path
    verdict: Verdict
    check_time: dt.datetime
    trust: str

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.path),
            "status": str(self.verdict.status),
            "detail": str(self.verdict.detail),
            "decision": self.verdict.decision,
            "check_time": self.check_time.isoformat(),
            "trust": self.trust,
            "cannot_judge_offline": list(self.verdict.not_judged),
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.verdict.checks],
        }


def trust_from_options(trust: Path | None, advisories: Path | None) -> TrustStore | None:
    """The trust store of --trust and --advisories; None when neither is given."""
    if trust is not None:
        return load_trust(trust, advisories=advisories)
    if advisories is not None:
        return TrustStore(advisories=load_advisories(advisories), source=f"defaults, advisories {advisories}")
    return None


def trust_for(bundle: Path, given: TrustStore | None) -> TrustStore:
    """The trust store given, else the one a run wrote beside the bundle, else the defaults."""
    if given is not None:
        return given
    beside = bundle.parent / BESIDE
    return load_trust(beside) if beside.is_dir() else TrustStore()


def verify_bundle(
    path: Path, trust: TrustStore, *, at: dt.datetime | None, now: dt.datetime
) -> BundleVerdict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BundleError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not JSON: {exc}") from exc
    try:
        bundle = parse_bundle(data)
    except BundleFormatError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    verdict = judge_bundle(bundle, trust.policy(), at=at, now=now)
    return BundleVerdict(path, verdict, at or bundle.check_time or now, trust.source)
