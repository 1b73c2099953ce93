"""Report steps: the device attestation status report as an admin sees it, checked by a scenario.

`report` generates the report with the page's filters (attestation status, ownership), checks
how many rows it has, and may select rows from its top and run Attest device on them, as an
admin does from the report. `expect_report` checks the columns a group's devices show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from ..errors import ServerError
from ..results import Checkpoint
from ..scenario import ReportColumns, ReportFilter, ReportQuery
from ._plan import DevicePlan

# (method, path, principal, JSON body) -> the admin API's answer
AdminCall = Callable[[str, str, str, object], httpx.Response]
_PAGE = 1000  # rows per request: the report's largest page


def generate(admin: AdminCall, chosen: ReportFilter) -> tuple[int, list[dict[str, Any]]]:
    """Every row of the report under the filters, in the report's order, and its total."""
    params: dict[str, str | int] = {"limit": _PAGE}
    if chosen.status is not None:
        params["status"] = chosen.status.value
    if chosen.ownership is not None:
        params["ownership"] = chosen.ownership.capitalize()
    rows: list[dict[str, Any]] = []
    total = 0
    while True:
        params["offset"] = len(rows)
        response = admin("GET", f"/admin/reports/device-attestation?{urlencode(params)}", "admin", None)
        if not response.is_success:
            raise ServerError(f"the report cannot be generated: HTTP {response.status_code} {response.text}")
        page = response.json()
        total = int(page["total"])
        rows.extend(page["rows"])
        if not page["rows"] or len(rows) >= total:
            return total, rows


def describe(chosen: ReportFilter) -> str:
    parts = [f"status {chosen.status.value}" if chosen.status else "", chosen.ownership or ""]
    return "report filtered by " + (", ".join(p for p in parts if p) or "nothing")


def run_report(
    admin: AdminCall, label: str, query: ReportQuery, plans: Sequence[DevicePlan]
) -> tuple[list[tuple[str, Checkpoint]], httpx.Response | None]:
    """The checkpoints (by device key) of a report step, and the Attest device answer if it ran one.

    The row count concerns every device of the scenario; the action's answer, the devices
    selected that belong to it.

    The report is read as the admin of this scenario's fleet reads it: a server shared with
    other scenarios (under pytest, or several scenarios in one run) holds their devices too,
    and those rows are left out, as another tenant's devices are.
    """
    _, every_row = generate(admin, query.filter)
    ours = {plan.emm_device_id.lower() for plan in plans}
    rows = [row for row in every_row if str(row["Device ID"]).lower() in ours]
    total = len(rows)
    where = describe(query.filter)
    found: list[tuple[str, Checkpoint]] = []
    if query.expect_total is not None:
        checkpoint = Checkpoint(
            step=f"{label} ({where})",
            expected=f"{query.expect_total} row(s)",
            actual=f"{total} row(s)",
            matched=total == query.expect_total,
        )
        found.extend((plan.key, checkpoint) for plan in plans)
    if query.attest is None:
        return found, None
    selection = query.attest
    chosen = [str(row["Device ID"]) for row in rows[: selection.select]]
    response = admin("POST", "/admin/devices/attest", selection.principal, {"deviceIds": chosen})
    try:
        reason = "accepted" if response.is_success else str(response.json().get("reason", ""))
    except ValueError:
        reason = response.text[:200]
    retry = response.headers.get("Retry-After")
    if retry:
        reason += f" (Retry-After: {retry})"
    checkpoint = Checkpoint(
        step=f"{label}: Attest device on {len(chosen)} selected row(s) of the {where}",
        expected=f"HTTP {selection.expect_response}",
        actual=f"HTTP {response.status_code}",
        matched=response.status_code == selection.expect_response,
        reason=reason,
    )
    selected = set(chosen)
    found.extend((plan.key, checkpoint) for plan in plans if plan.emm_device_id in selected)
    return found, response


def check_columns(admin: AdminCall, label: str, spec: ReportColumns, plan: DevicePlan) -> Checkpoint:
    """The device's row against the columns the scenario names."""
    response = admin("GET", f"/admin/devices/{quote(plan.emm_device_id, safe='')}", "admin", None)
    row: dict[str, Any] = response.json() if response.is_success else {}
    expected = "; ".join(f"{name}: {value}" for name, value in spec.columns.items())
    actual = "; ".join(f"{name}: {row.get(name, '(no row)')}" for name in spec.columns)
    return Checkpoint(
        step=f"{label} (report columns)",
        expected=expected,
        actual=actual,
        matched=bool(row) and all(str(row.get(name)) == value for name, value in spec.columns.items()),
    )
