"""The admin page in a real browser against a running server: token, filters, paging,
selection, the Attest device action and its answers, and the device detail view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.protocol import REPORT_COLUMNS
from harness.server import EmbeddedServer, ManualClock, Principal, ServerConfig
from harness.status import AttestationStatus, StatusDetail
from tests.browser import headless_chrome, needs_chrome
from tests.serving import seed_device

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
XSS = "<img src=x onerror=alert(1)>"


pytestmark = [
    pytest.mark.browser,
    needs_chrome,
]


def _record(
    server: EmbeddedServer, emm: str, name: str, status: AttestationStatus, detail: StatusDetail
) -> None:
    seed_device(
        server.app.state.context,
        emm,
        name=name,
        status=status,
        detail=detail,
        decision=f"decision for {emm}",
        checks=[
            {"name": "EK certificate chains to a trusted manufacturer", "passed": True, "detail": ""},
            {"name": "TPM is ready", "passed": False, "detail": "the TPM is in lockout"},
        ],
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    config = ServerConfig(
        data_dir=tmp_path / "server",
        principals={ALICE: Principal("alice", remote_tasks=True), BOB: Principal("bob", remote_tasks=False)},
    )
    clock = ManualClock(dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC))
    with EmbeddedServer(config, clock) as running:
        for index in range(60):
            status, detail = [
                (AttestationStatus.NOT_ATTESTED, StatusDetail.TPM_NOT_READY),
                (AttestationStatus.ATTESTED, StatusDetail.NONE),
                (AttestationStatus.NOT_STARTED, StatusDetail.NONE),
            ][index % 3]
            name = XSS if index == 0 else f"PC-{index:04d}"
            _record(running, f"emm-{index:04d}", name, status, detail)
        yield running


@pytest.fixture
def driver() -> Iterator[Any]:
    with headless_chrome(window="1600,1000") as browser:
        yield browser


def test_admin_page_reports_filters_and_attests(server: EmbeddedServer, driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, 10)

    def rows() -> list[Any]:
        return driver.find_elements(By.CSS_SELECTOR, "#rows tr.device")

    def cells(row: Any) -> list[str]:
        return [td.text for td in row.find_elements(By.TAG_NAME, "td")]

    def use_token(token: str) -> None:
        field = driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token)
        driver.find_element(By.ID, "use-token").click()

    def answer() -> Any:
        out = driver.find_element(By.ID, "action-result")
        return out.get_attribute("data-status"), out.text

    driver.get(server.url + "/admin/")
    assert "Enter the admin bearer token" in driver.find_element(By.ID, "auth-state").text
    assert rows() == []

    use_token("not-a-token-at-all")
    wait.until(lambda d: "did not accept" in d.find_element(By.ID, "auth-state").text)

    use_token(ALICE)
    wait.until(lambda d: len(rows()) == 50)
    assert driver.find_element(By.ID, "count").text == "Showing 1–50 of 60 devices."
    headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#head th")]
    assert headers[0].startswith("Select")
    assert headers[1:] == list(REPORT_COLUMNS)
    # A device name is shown as text, never as markup.
    assert XSS in [cells(r)[1] for r in rows()]
    assert driver.find_elements(By.CSS_SELECTOR, "#rows img") == []

    driver.find_element(By.ID, "next").click()
    wait.until(lambda d: len(rows()) == 10)
    assert driver.find_element(By.ID, "count").text == "Showing 51–60 of 60 devices."

    Select(driver.find_element(By.ID, "f-status")).select_by_value("Not attested")
    wait.until(lambda d: d.find_element(By.ID, "count").text == "Showing 1–20 of 20 devices.")
    assert {cells(r)[4] for r in rows()} == {"Not attested"}
    assert all("retry recommended" in cells(r)[5] for r in rows())

    chosen = []
    for row in rows()[:3]:
        row.find_element(By.CSS_SELECTOR, "input.select").click()
        chosen.append(cells(row)[2])
    assert driver.find_element(By.ID, "selected-count").text == "3 selected"

    attest = driver.find_element(By.ID, "attest")
    attest.click()
    wait.until(lambda d: answer()[0] == "202")
    assert "3 device(s) queued" in answer()[1]
    assert "next check-in" in answer()[1]
    for emm in chosen:
        action = server.app.state.context.store.device(emm, server.app.state.context.clock.now())["action"]
        assert action["state"] == "pending" and action["requestedBy"] == "alice"

    attest.click()
    wait.until(lambda d: answer()[0] == "429")
    assert "wait 60 s" in answer()[1]

    # The detail view of a selected device: its evidence and the action just taken.
    rows()[0].find_elements(By.TAG_NAME, "td")[3].click()
    details = driver.find_element(By.ID, "details")
    wait.until(lambda d: details.is_displayed() and chosen[0] in d.find_element(By.ID, "d-title").text)
    assert f"decision for {chosen[0]}" in details.text
    assert "TPM is ready: the TPM is in lockout" in details.text
    assert "EK certificate chains to a trusted manufacturer" in details.text
    assert "requested 2025-03-01T09:00:00Z by alice: pending" in details.text
    failed = details.find_elements(By.CSS_SELECTOR, "li.check.failed")
    assert [f.text for f in failed] == ["TPM is ready: the TPM is in lockout"]

    # Someone without the Remote tasks permission sees why the action is refused.
    server.app.state.context.clock.advance(60)
    driver.find_element(By.ID, "forget-token").click()
    use_token(BOB)
    wait.until(lambda d: len(rows()) == 20)
    rows()[5].find_element(By.CSS_SELECTOR, "input.select").click()
    driver.find_element(By.ID, "attest").click()
    wait.until(lambda d: answer()[0] == "403")
    assert "Remote tasks" in answer()[1]

    log: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    # Refused requests (401, 403, 429) are logged by the browser itself; anything else is a fault.
    problems = [
        e
        for e in log
        if e["level"] in ("SEVERE", "WARNING") and "Failed to load resource" not in e["message"]
    ]
    assert problems == []
