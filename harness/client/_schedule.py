"""When a Windows MDM client checks in, and which of its own failures it retries by itself.

The schedule is the one Microsoft documents for Intune on Windows 10/11 ("Policy refresh
intervals", learn.microsoft.com/mem/intune/configuration/device-profile-troubleshoot):
every 3 minutes for 15 minutes after enrolment, then every 15 minutes for 2 hours, then
about every 8 hours. Times are seconds on the clock that drives the device (a scenario's
virtual clock), counted from the enrolment.
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal

from ..status import NETWORK, HResult
from ..status import TPM_NOT_READY as TPM_NOT_READY  # the client's retry rule reads it from here

# Why a device sends an enrollment request; it says so in the EnrollmentTrigger context item.
Trigger = Literal["first-enrollment", "device-retry", "attest-action"]

_PHASES: tuple[tuple[float, float], ...] = (
    (15 * 60, 3 * 60),  # until 15 minutes: every 3 minutes
    (2 * 3600, 15 * 60),  # until 2 hours: every 15 minutes
    (math.inf, 8 * 3600),  # then every 8 hours
)


def next_checkin(enrolled_at: float, after: float) -> float:
    """The first scheduled check-in strictly after `after`, for a device enrolled at `enrolled_at`."""
    start = enrolled_at
    for end, interval in _PHASES:
        phase_end = enrolled_at + end
        if after < phase_end:
            steps = math.floor((after - start) / interval) + 1 if after >= start else 1
            candidate = start + steps * interval
            if candidate <= phase_end:
                return candidate
        start = phase_end
    raise AssertionError("the last phase never ends")  # pragma: no cover


def sync_delay(emm_device_id: str, *, idle: bool = False) -> float:
    """Seconds from a push to the MDM session it starts (fixed per device, so runs repeat): 20 s
    to 2 minutes for a device in use; 3 to 5 minutes for an idle one in connected standby,
    which handles the push at its next maintenance wake."""
    digest = hashlib.sha256(f"push:{emm_device_id}".encode()).digest()
    spread = int.from_bytes(digest[:2], "big") % 101
    return (180.0 + spread * 1.2) if idle else (20.0 + spread)


def retry_reason(hresult: int, *, aik_pub_without_cert: bool) -> str:
    """Why a failed attestation is worth retrying at the next check-in ('' when it is not).

    The client judges only what it met: a service it could not reach, a TPM that was not
    ready, an MDM key left behind. What the server alone decides (a token that does not
    match, parameters the build cannot send) waits for the admin's Attest device action.
    """
    if hresult in NETWORK and aik_pub_without_cert:
        return "the AIK CA did not answer: no AIK certificate"
    if hresult in TPM_NOT_READY:
        return "the TPM was not ready"
    if hresult == HResult.NTE_EXISTS:
        return "the MDM key in the TPM could not be attested"
    return ""
