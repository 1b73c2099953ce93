"""The Windows MDM client's own schedule and its judgement of which failures to retry."""

from __future__ import annotations

import pytest

from harness.client import next_checkin
from harness.client._schedule import retry_reason
from harness.status import HResult

MINUTE, HOUR = 60.0, 3600.0


def test_every_three_minutes_for_fifteen_minutes_after_enrollment() -> None:
    times, now = [], 0.0
    while now < 15 * MINUTE:
        now = next_checkin(0.0, now)
        times.append(now)
    assert times == [3 * MINUTE, 6 * MINUTE, 9 * MINUTE, 12 * MINUTE, 15 * MINUTE]


def test_every_fifteen_minutes_until_two_hours_then_every_eight_hours() -> None:
    assert next_checkin(0.0, 15 * MINUTE) == 30 * MINUTE
    assert next_checkin(0.0, 31 * MINUTE) == 45 * MINUTE
    assert next_checkin(0.0, 2 * HOUR - 1) == 2 * HOUR
    assert next_checkin(0.0, 2 * HOUR) == 10 * HOUR
    assert next_checkin(0.0, 10 * HOUR) == 18 * HOUR


def test_the_schedule_counts_from_the_enrollment() -> None:
    enrolled = 5 * HOUR
    assert next_checkin(enrolled, enrolled) == enrolled + 3 * MINUTE
    assert next_checkin(enrolled, 0.0) == enrolled + 3 * MINUTE


@pytest.mark.parametrize(
    ("hresult", "without_cert", "retries"),
    [
        (HResult.WINHTTP_CANNOT_CONNECT, True, True),  # AIK CA unreachable: no AIK certificate
        (HResult.TPM_E_LOCKOUT, False, True),
        (HResult.TPM_E_INITIALIZE, False, True),
        (HResult.NTE_EXISTS, False, True),
        (HResult.TBS_E_TPM_NOT_FOUND, False, False),  # no TPM: retrying cannot help
        (HResult.CERTSRV_E_INVALID_EK, True, False),  # the AIK CA refused the EK
    ],
)
def test_the_client_retries_only_what_it_met_as_temporary(
    hresult: int, without_cert: bool, retries: bool
) -> None:
    assert bool(retry_reason(hresult, aik_pub_without_cert=without_cert)) is retries
