"""The reports a user reads after a run: results.json, junit.xml and index.html."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.report import decode_payload, load_results, write_html, write_json, write_junit, write_reports
from harness.results import (
    CheckRecord,
    ClientStep,
    DeviceEvidence,
    DeviceResult,
    Outcome,
    RunResult,
    summarise,
)
from harness.status import AttestationStatus, StatusDetail
from tests.browser import headless_chrome, needs_chrome

ATTESTED = Outcome(status=AttestationStatus.ATTESTED)
NOT_TRUSTED = Outcome(status=AttestationStatus.NOT_ATTESTED, detail=StatusDetail.TPM_NOT_TRUSTED)
XSS = "<script>alert(1)</script>"


def attested_device() -> DeviceResult:
    return DeviceResult(
        name="laptop-001",
        group="laptops",
        scenario="scenarios/smoke.yaml",
        device_id="0b5e3c1a-0000-4000-8000-000000000001",
        expected=ATTESTED,
        actual=ATTESTED,
        matched=True,
        inventory={"Manufacturer": "Contoso", "1": "a key that looks like an index"},
        evidence=DeviceEvidence(
            client_steps=[
                ClientStep(step="TPM2_CreatePrimary", ok=True, detail="EK", seconds=0.012),
                ClientStep(step="POST /attest", ok=True, detail="200", seconds=0.25),
            ],
            request_items={"AikCert": "X.509, 1203 bytes", "Nonce": "abcd"},
            checks=[CheckRecord(name="ek_chain", passed=True, detail="chains to a trusted root")],
        ),
        tpm_seconds=0.5,
        seconds=1.25,
    )


def mismatched_device() -> DeviceResult:
    return DeviceResult(
        name="desktop-002",
        group="desktops",
        scenario="scenarios/smoke.yaml",
        device_id="0b5e3c1a-0000-4000-8000-000000000002",
        expected=ATTESTED,
        actual=NOT_TRUSTED,
        matched=False,
        evidence=DeviceEvidence(
            client_steps=[ClientStep(step="POST /attest", ok=True, seconds=0.3)],
            checks=[
                CheckRecord(name="ek_chain", passed=False, detail="issuer CN=Rogue CA is not trusted"),
                CheckRecord(name="nonce", passed=True, detail="fresh"),
            ],
            decision="EK certificate does not chain to a trusted TPM manufacturer",
        ),
        tpm_seconds=0.25,
        seconds=2.5,
    )


def errored_device() -> DeviceResult:
    return DeviceResult(
        name="vm-003",
        group="vms",
        scenario="scenarios/edge.yaml",
        device_id="",
        expected=NOT_TRUSTED,
        actual=None,
        matched=False,
        error="swtpm exited with code 1\nstderr: cannot bind socket",
        seconds=0.5,
    )


def make_result(devices: list[DeviceResult] | None = None, **extra: Any) -> RunResult:
    if devices is None:
        devices = [attested_device(), mismatched_device(), errored_device()]
    return RunResult(
        summary=summarise(
            devices,
            scenarios=["scenarios/smoke.yaml", "scenarios/edge.yaml"],
            started_at="2024-05-01T10:00:00+00:00",
            wall_seconds=3.0,
            workers=2,
            **extra,
        ),
        devices=devices,
    )


@pytest.fixture
def result() -> RunResult:
    return make_result()


# --- write_reports / results.json -------------------------------------------------------------


def test_write_reports_creates_the_directory_and_the_three_files(tmp_path: Path, result: RunResult) -> None:
    out = tmp_path / "reports" / "latest"
    paths = write_reports(result, out)
    assert paths == {
        "json": out / "results.json",
        "junit": out / "junit.xml",
        "html": out / "index.html",
    }
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "junit.xml", "results.json"]


def test_results_json_round_trips_and_has_the_documented_shape(tmp_path: Path, result: RunResult) -> None:
    path = tmp_path / "results.json"
    write_json(result, path)
    assert load_results(path) == result

    data = json.loads(path.read_text("utf-8"))
    assert data == result.model_dump(mode="json")
    assert data["summary"]["total"] == 3
    first = data["devices"][0]
    assert first["name"] == "laptop-001"
    assert first["expected"] == {"status": "Attested", "detail": ""}
    assert data["devices"][1]["actual"] == {
        "status": "Not attested",
        "detail": "TPM isn't trusted",
    }
    assert data["devices"][2]["actual"] is None
    assert [d["matched"] for d in data["devices"]] == [True, False, False]
    assert path.read_text("utf-8").startswith('{\n  "summary"'), "indented for people to read"


def test_a_failed_write_leaves_the_previous_results_json_intact(
    tmp_path: Path, result: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.json"
    write_json(result, path)
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_json(make_result([attested_device()]), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "no temporary file left"


def test_a_report_can_be_re_rendered_from_results_json(tmp_path: Path, result: RunResult) -> None:
    write_reports(result, tmp_path / "first")
    reloaded = load_results(tmp_path / "first" / "results.json")
    write_reports(reloaded, tmp_path / "second")
    for name in ("results.json", "junit.xml", "index.html"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


# --- junit.xml --------------------------------------------------------------------------------


def junit(tmp_path: Path, result: RunResult) -> ET.Element:
    path = tmp_path / "junit.xml"
    write_junit(result, path)
    return ET.parse(path).getroot()


def counts(element: ET.Element) -> dict[str, str]:
    return {k: element.attrib[k] for k in ("tests", "failures", "errors")}


def properties(case: ET.Element) -> dict[str, str]:
    return {p.attrib["name"]: p.attrib["value"] for p in case.findall("properties/property")}


def test_junit_has_one_suite_per_scenario_with_correct_counts(tmp_path: Path, result: RunResult) -> None:
    root = junit(tmp_path, result)
    assert root.tag == "testsuites"
    assert counts(root) == {"tests": "3", "failures": "1", "errors": "1"}
    assert float(root.attrib["time"]) == pytest.approx(3.0)

    suites = {s.attrib["name"]: s for s in root.findall("testsuite")}
    assert set(suites) == {"smoke", "edge"}
    assert counts(suites["smoke"]) == {"tests": "2", "failures": "1", "errors": "0"}
    assert counts(suites["edge"]) == {"tests": "1", "failures": "0", "errors": "1"}
    assert float(suites["smoke"].attrib["time"]) == pytest.approx(1.25 + 2.5)

    cases = [c.attrib for c in suites["smoke"].findall("testcase")]
    assert cases == [
        {"classname": "smoke.laptops", "name": "laptop-001", "time": "1.250"},
        {"classname": "smoke.desktops", "name": "desktop-002", "time": "2.500"},
    ]


def test_junit_mismatch_is_a_failure_that_says_expected_and_actual(tmp_path: Path, result: RunResult) -> None:
    root = junit(tmp_path, result)
    case = root.find("testsuite/testcase[@name='desktop-002']")
    assert case is not None
    failures = case.findall("failure")
    assert len(failures) == 1 and case.find("error") is None
    message = failures[0].attrib["message"]
    # The checkpoint that failed comes first: for a scenario without steps, the first enrollment.
    assert message == "enrollment: expected Attested, actual Not attested / TPM isn't trusted"
    text = failures[0].text or ""
    assert "EK certificate does not chain to a trusted TPM manufacturer" in text
    assert "ek_chain: issuer CN=Rogue CA is not trusted" in text
    assert "nonce" not in text, "only failing checks are listed"

    passing = root.find("testsuite/testcase[@name='laptop-001']")
    assert passing is not None and len(passing) == 1, "a match has properties and nothing else"


def test_junit_harness_failure_is_an_error_not_a_failure(tmp_path: Path, result: RunResult) -> None:
    root = junit(tmp_path, result)
    case = root.find("testsuite/testcase[@name='vm-003']")
    assert case is not None and case.find("failure") is None
    error = case.find("error")
    assert error is not None
    assert error.attrib["message"] == "swtpm exited with code 1"
    assert "cannot bind socket" in (error.text or "")


def test_junit_testcases_carry_expected_and_actual_as_properties(tmp_path: Path, result: RunResult) -> None:
    root = junit(tmp_path, result)
    by_name = {c.attrib["name"]: properties(c) for c in root.iter("testcase")}
    assert by_name["desktop-002"] == {
        "expected_status": "Attested",
        "expected_detail": "",
        "actual_status": "Not attested",
        "actual_detail": "TPM isn't trusted",
        "device_id": "0b5e3c1a-0000-4000-8000-000000000002",
        "reason": "EK certificate does not chain to a trusted TPM manufacturer",
        "device_name": "desktop-002",
        "failed_checkpoint": "enrollment: expected Attested, actual Not attested / TPM isn't trusted",
    }
    assert by_name["vm-003"]["actual_status"] == ""
    assert by_name["laptop-001"]["actual_status"] == "Attested"


def test_junit_stays_well_formed_with_control_characters_in_details(tmp_path: Path) -> None:
    device = mismatched_device()
    device.evidence.decision = "server said \x00\x1b[31mno\x1b[0m"
    device.name = "bad\x07name"
    root = junit(tmp_path, make_result([device]))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert properties(case)["reason"].startswith("server said \ufffd\ufffd[31mno")


# --- index.html -------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects what a browser would load or run from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open = (tag, dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open is None:
            return
        tag, attrs = self._open
        if tag == "script":
            self.scripts.append((attrs, data))
        else:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def html_of(tmp_path: Path, result: RunResult) -> str:
    path = tmp_path / "index.html"
    write_html(result, path)
    return path.read_text("utf-8")


def parse_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def embedded_payload(html: str) -> tuple[str, Any]:
    scripts = [(a, text) for a, text in parse_page(html).scripts if a.get("id") == "report-data"]
    assert len(scripts) == 1, "the device data is embedded exactly once"
    attrs, text = scripts[0]
    assert attrs.get("type") == "application/json", "data, never run as code"
    return text, json.loads(text)


def test_html_loads_nothing_from_the_network(tmp_path: Path) -> None:
    html = html_of(tmp_path, make_result())
    assert "http://" not in html and "https://" not in html

    page = parse_page(html)
    loading = {"src", "href", "srcset", "action", "data", "poster", "background", "formaction"}
    for tag, attrs in page.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base"), tag
        assert not (loading & set(attrs)), (tag, attrs)
    assert all("url(" not in css and "@import" not in css for css in page.styles)
    csp = next(a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and "default-src 'none'" in csp


def test_html_mentions_a_server_url_only_as_text(tmp_path: Path) -> None:
    html = html_of(tmp_path, make_result(server="https://127.0.0.1:8443"))
    assert "https://127.0.0.1:8443" in html
    for _tag, attrs in parse_page(html).tags:
        assert all("127.0.0.1" not in (v or "") for v in attrs.values())


def test_html_inline_script_and_style_are_allowed_by_the_page_policy(tmp_path: Path) -> None:
    # A browser runs an inline script under a hash policy only if the hash is of its exact text.
    page = parse_page(html_of(tmp_path, make_result()))
    csp = next(a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None
    code = [text for attrs, text in page.scripts if "type" not in attrs]
    assert len(code) == 1 and len(page.styles) == 1
    for text in (*code, *page.styles):
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_html_embeds_every_device_once_and_losslessly(tmp_path: Path, result: RunResult) -> None:
    html = html_of(tmp_path, result)
    _, payload = embedded_payload(html)
    assert decode_payload(payload) == result.devices


def test_html_summary_is_readable_without_javascript(tmp_path: Path, result: RunResult) -> None:
    html = html_of(tmp_path, result)
    markup = re.sub(r"<script.*?</script>", "", html, flags=re.DOTALL)
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", markup)))
    assert "scenarios/smoke.yaml" in text and "scenarios/edge.yaml" in text
    assert "2024-05-01T10:00:00+00:00" in text
    assert re.search(r"3 total 1 matched 2 mismatched .*1 harness errors", text)
    assert re.search(r"Not attested 1", text) and re.search(r"Attested 1", text)
    assert "TPM isn't trusted 1" in text
    assert "<noscript>" in html


def test_html_escapes_device_strings(tmp_path: Path) -> None:
    device = mismatched_device()
    device.name = XSS
    device.group = "<!--<script>"
    device.evidence.decision = "</script><img src=x onerror=alert(2)>"
    result = make_result([device, attested_device()])
    result.summary.scenarios = ["<b>bold</b>.yaml"]
    html = html_of(tmp_path, result)

    assert XSS not in html
    assert "<img" not in html and "<!--" not in html and "<b>bold" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;.yaml" in html
    text, payload = embedded_payload(html)
    assert "<" not in text, "no markup can start inside the embedded data"
    names = {d.name for d in decode_payload(payload)}
    assert XSS in names, "the page still shows the name as text"
    # Only the page's own two scripts, the data and the code: nothing injected.
    assert html.count("<script") == 2


def test_html_for_10000_devices_stays_small(tmp_path: Path) -> None:
    devices = []
    for i in range(10_000):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        matched = i % 50 != 0
        devices.append(
            DeviceResult(
                name=f"DESKTOP-{i:05d}",
                group=("laptops", "desktops", "vms")[i % 3],
                scenario="scenarios/fleet.yaml",
                device_id=f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}",
                expected=ATTESTED,
                actual=ATTESTED if matched else NOT_TRUSTED,
                matched=matched,
                inventory={
                    "Manufacturer": "Contoso",
                    "Model": f"Surface {i % 7}",
                    "Serial": digest[:12].upper(),
                    "OS": "Windows 11 Enterprise 23H2",
                    "EK hash": digest,
                },
                evidence=DeviceEvidence(
                    client_steps=[
                        ClientStep(step=f"step {k}", ok=True, detail=f"handle 0x8000000{k}", seconds=0.0123)
                        for k in range(10)
                    ]
                    + [ClientStep(step="TPM2_Quote", ok=True, detail=f"nonce {digest[40:56]}", seconds=0.1)],
                    request_items={
                        "AikCert": f"X.509 CN=AIK-{digest[:8]}, 1203 bytes",
                        "EkPub": f"RSA 2048 sha256:{digest[:32]}",
                        "Nonce": digest[40:56],
                        "Quote": "TPMS_ATTEST 145 bytes",
                    },
                    checks=[
                        CheckRecord(name=f"check {k}", passed=matched or k != 2, detail="fine")
                        for k in range(8)
                    ],
                    decision="" if matched else "EK certificate does not chain to a trusted root",
                ),
                tpm_seconds=0.4567,
                seconds=1.2345,
            )
        )
    result = make_result(devices)
    path = tmp_path / "index.html"
    write_html(result, path)
    assert path.stat().st_size < 15 * 1024 * 1024
    _, payload = embedded_payload(path.read_text("utf-8"))
    assert len(payload["devices"]) == 10_000


# --- the page's script ------------------------------------------------------------------------


def page_script(html: str) -> str:
    code = [text for attrs, text in parse_page(html).scripts if "type" not in attrs]
    assert len(code) == 1
    return code[0]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_page_script_decodes_the_devices_exactly_as_results_json_has_them(
    tmp_path: Path, result: RunResult
) -> None:
    html = html_of(tmp_path, result)
    (tmp_path / "page.js").write_text(page_script(html), "utf-8")
    (tmp_path / "data.json").write_text(embedded_payload(html)[0], "utf-8")
    runner = (
        "const fs = require('fs'), vm = require('vm');\n"
        "const ctx = vm.createContext({});\n"
        "vm.runInContext(fs.readFileSync(process.argv[2], 'utf8'), ctx);\n"
        "ctx.payload = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));\n"
        "process.stdout.write(JSON.stringify(vm.runInContext("
        "'AttestationReport.decodeAll(payload)', ctx)));\n"
    )
    (tmp_path / "run.js").write_text(runner, "utf-8")
    out = subprocess.run(
        ["node", str(tmp_path / "run.js"), str(tmp_path / "page.js"), str(tmp_path / "data.json")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == result.model_dump(mode="json")["devices"]


@pytest.mark.browser
@needs_chrome
def test_page_in_a_browser_filters_and_shows_evidence(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    xss = attested_device()
    xss.name = XSS
    extra = [xss.model_copy(update={"name": f"fleet-{i:04d}"}) for i in range(1200)]
    result = make_result([mismatched_device(), errored_device(), xss, *extra])
    path = tmp_path / "index.html"
    write_html(result, path)

    with headless_chrome() as driver:

        def rows() -> list[Any]:
            return driver.find_elements(By.CSS_SELECTOR, "#rows tr.device")

        driver.get(path.as_uri())
        count = driver.find_element(By.ID, "count")
        assert count.text == "Showing 500 of 1,203 devices."
        assert len(rows()) == 500
        first = rows()[0].find_elements(By.TAG_NAME, "td")
        assert first[0].text == "desktop-002", "mismatches come first"

        driver.find_element(By.ID, "more").click()
        assert len(rows()) == 1000

        Select(driver.find_element(By.ID, "f-outcome")).select_by_value("error")
        assert [r.find_element(By.TAG_NAME, "td").text for r in rows()] == ["vm-003"]

        Select(driver.find_element(By.ID, "f-outcome")).select_by_value("")
        driver.find_element(By.ID, "f-search").send_keys("alert(1)")
        WebDriverWait(driver, 5).until(lambda d: len(rows()) == 1)
        assert rows()[0].find_element(By.TAG_NAME, "td").text == XSS

        driver.find_element(By.CSS_SELECTOR, "button[type=reset]").click()
        WebDriverWait(driver, 5).until(lambda d: len(rows()) == 500)
        rows()[0].click()
        details = driver.find_element(By.ID, "details")
        assert details.is_displayed()
        assert "issuer CN=Rogue CA is not trusted" in details.text
        assert "EK certificate does not chain to a trusted TPM manufacturer" in details.text

        log: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
        problems = [e for e in log if e["level"] in ("SEVERE", "WARNING")]
        assert problems == []
