"""A recorded enrollment from a bundle under tests/data/bundles: the verifier's tests judge
real TPM evidence without a TPM (swtpm need not be installed)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.fleet import RecordedEnrollment
from harness.trust import load_trust
from harness.verifier import NonceState, parse_bundle

BUNDLES = Path(__file__).parent / "data" / "bundles"


def recorded_from_bundle(name: str = "rsa-ek.json") -> RecordedEnrollment:
    """The bundle's evidence, judged at its pinned check time against the trust store beside it."""
    data = json.loads((BUNDLES / name).read_text(encoding="utf-8"))
    bundle = parse_bundle(data)
    trust = load_trust(BUNDLES / "trust")
    assert bundle.nonce is not None and bundle.check_time is not None
    assert bundle.device_id is not None and bundle.registered_key is not None
    return RecordedEnrollment(
        evidence=bundle.evidence,
        policy=trust.policy(),
        nonce=NonceState(value=bundle.nonce.value, issued=True),
        registered={bundle.device_id: bundle.registered_key},
        now=bundle.check_time,
        device_id=bundle.device_id,
        bundle=data,
        trust=trust,
    )
