"""vendor-check's pure parts: the report a vendor reads, the comparison of two reports, the
rows across units, the EK credential depth, malformed-command judgement and the reset lines."""

from __future__ import annotations

import datetime as dt
import json
import socket
import struct
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from harness.conformance import Latency, Row, Unit, VendorReport, compare_reports, write_vendor_reports
from harness.conformance._credential import attribute_types, credential_rows, platform_rows
from harness.conformance._malformed import _judge
from harness.conformance._platform import MssimResetLine, reset_line_for
from harness.conformance._resources import minimum_rows
from harness.conformance._units import unit_rows

NOW = dt.datetime.now(dt.UTC)


def _report(rows: list[Row], runs: int = 3) -> VendorReport:
    return VendorReport(
        started="2026-12-04T10:00:00+00:00", units=[Unit("", "swtpm:path=x")], runs=runs, rows=rows
    )


def _row(id: str, status: str, latency: Latency | None = None) -> Row:
    return Row(id, "Area", status, f"evidence of {id}", f"clause of {id}", latency)  # type: ignore[arg-type]


def test_report_puts_every_failure_first_with_a_link_to_its_row(tmp_path: Path) -> None:
    rows = [_row(f"ok.{i}", "pass") for i in range(50)] + [_row("bad.one", "fail"), _row("bad.two", "fail")]
    rows.insert(10, _row("so.so", "warning"))
    paths = write_vendor_reports(_report(rows), tmp_path)
    page = paths["html"].read_text()
    first_table = page.index("<table>")
    for failed in ("bad.one", "bad.two"):
        link = f'<a href="#row-{failed.replace(".", "-")}"><code>{failed}</code></a>'
        assert page.index(link) < first_table
        assert f'<tr id="row-{failed.replace(".", "-")}"' in page
    assert page.index('href="#row-so-so"') < first_table
    # JSON and JUnit carry the same rows, evidence and clause; JUnit lists failures first.
    document = json.loads(paths["json"].read_text())
    assert document["failures"] == ["bad.one", "bad.two"]
    cases = ET.parse(paths["junit"]).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases][:2] == ["bad.one", "bad.two"]
    assert len(cases) == len(document["rows"]) == 53
    clause = cases[0].find("properties/property[@name='clause']")
    assert clause is not None and clause.get("value") == "clause of bad.one"


def test_report_files_are_replaced_atomically_and_leave_no_temporary_file(tmp_path: Path) -> None:
    write_vendor_reports(_report([_row("a", "pass")]), tmp_path)
    write_vendor_reports(_report([_row("a", "fail")]), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "junit.xml", "report.json"]
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is False


def _document(rows: list[Row], runs: int = 3) -> dict[str, object]:
    return _report(rows, runs).to_dict()


def test_compare_lists_exactly_the_rows_whose_outcome_changed() -> None:
    old = _document([_row("a", "pass"), _row("b", "pass"), _row("gone", "warning"), _row("c", "fail")])
    new = _document([_row("a", "pass"), _row("b", "fail"), _row("c", "fail"), _row("added", "skipped")])
    changes = {(c.key, c.old, c.new) for c in compare_reports(old, new).rows}
    assert changes == {("b", "pass", "fail"), ("gone", "warning", "absent"), ("added", "absent", "skipped")}


def test_compare_lists_latency_changes_beyond_the_noise_only() -> None:
    def timed(median: float, spread: float) -> Latency:
        return Latency(5, median - spread / 2, median, median + spread / 2).net_of(Latency(5, 1, 1, 1))

    old = _document(
        [
            _row("slow", "pass", timed(10, 1)),
            _row("noisy", "pass", timed(10, 8)),
            _row("same", "pass", timed(10, 1)),
        ]
    )
    new = _document(
        [
            _row("slow", "pass", timed(20, 1)),
            _row("noisy", "pass", timed(15, 2)),
            _row("same", "pass", timed(10.5, 1)),
        ]
    )
    moved = compare_reports(old, new).latencies
    assert [(m.key, m.old_ms, m.new_ms) for m in moved] == [("slow", 9.0, 19.0)]
    assert compare_reports(_document([], runs=1), new).latency_note.startswith("latencies not compared")


def test_units_sharing_an_ek_or_random_output_are_named() -> None:
    units = [
        Unit("unit1", "a", ek_fingerprint="aa"),
        Unit("unit2", "b", ek_fingerprint="bb"),
        Unit("unit3", "c", ek_fingerprint="aa"),
    ]
    rows = {r.id: r for r in unit_rows(units, {"unit1": b"1", "unit2": b"2", "unit3": b"2"})}
    assert rows["units.ek_unique"].status == "fail"
    assert "unit1 and unit3 have the same EK" in rows["units.ek_unique"].evidence
    assert (
        rows["units.rng_unique"].status == "fail" and "unit2 and unit3" in rows["units.rng_unique"].evidence
    )
    distinct = unit_rows(units[:2], {"unit1": b"1", "unit2": b"2"})
    assert [r.status for r in distinct] == ["pass", "pass"]


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body


def _sda(with_assertions: bool) -> bytes:
    spec = _der(0x30, _der(0x0C, b"2.0") + _der(0x02, b"\x00") + _der(0x02, b"\x9f"))
    attributes = _der(0x30, _der(0x06, bytes.fromhex("67810502 10")) + _der(0x31, spec))
    if with_assertions:
        attributes += _der(0x30, _der(0x06, bytes.fromhex("67810502 12")) + _der(0x31, _der(0x30, b"")))
    return _der(0x30, attributes)


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EK CA")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=9000))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, certificate


def _ek_certificate(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    *,
    days: int,
    aia: bool,
    sda: bytes | None,
    aki_key: object = None,
) -> x509.Certificate:
    key, issuer = ca
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(issuer.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key()).serial_number(7)
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_key or key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )  # fmt: skip
    if aia:
        location = x509.UniformResourceIdentifier("http://pki.vendor.example/ek-ica.cer")
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, location)]
            ),
            critical=False,
        )
    if sda is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.9"), sda), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def test_credential_rows_of_a_complete_certificate_pass() -> None:
    ca = _ca()
    certificate = _ek_certificate(ca, days=3660 * 2, aia=True, sda=_sda(True))
    rows = {r.id: r for r in credential_rows("ek", certificate, [ca[1]], NOW)}
    assert {r.status for r in rows.values()} == {"pass"}, rows
    assert "family 2.0, level 0, revision 159" in rows["ek.subject_directory_attributes"].evidence
    assert "http://pki.vendor.example/ek-ica.cer" in rows["ek.aia"].evidence
    assert (
        "ecdsa" not in rows["ek.issuer_algorithms"].evidence
        and "sha256" in rows["ek.issuer_algorithms"].evidence
    )


def test_credential_rows_name_each_shortfall() -> None:
    ca = _ca()
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    certificate = _ek_certificate(ca, days=365, aia=False, sda=_sda(False), aki_key=other)
    rows = {r.id: r for r in credential_rows("ek", certificate, [ca[1]], NOW)}
    assert rows["ek.validity"].status == "warning" and "shorter than 10 years" in rows["ek.validity"].evidence
    assert rows["ek.aki"].status == "fail" and "differs from the issuer's" in rows["ek.aki"].evidence
    assert rows["ek.aia"].status == "warning"
    assert rows["ek.subject_directory_attributes"].status == "warning"
    assert "WITHOUT tpmSecurityAssertions" in rows["ek.subject_directory_attributes"].evidence
    expired = credential_rows("ek", certificate, [ca[1]], NOW + dt.timedelta(days=400))[0]
    assert expired.status == "fail"
    alone = {r.id: r for r in credential_rows("ek", certificate, [], NOW)}
    assert alone["ek.issuer_algorithms"].status == "skipped"


def test_subject_directory_attributes_are_read_from_der() -> None:
    assert sorted(attribute_types(_sda(True))) == ["2.23.133.2.16", "2.23.133.2.18"]


def test_platform_certificate_rows() -> None:
    assert [r.status for r in platform_rows([0x01C00002], {})] == ["skipped"]
    rows = platform_rows(
        [0x01C00002, 0x01C08000, 0x01C08001], {0x01C08000: _der(0x30, b"\x02\x01\x01"), 0x01C08001: b"junk"}
    )
    assert [(r.id, r.status) for r in rows] == [
        ("platform.nv.0x01C08000", "pass"),
        ("platform.nv.0x01C08001", "fail"),
    ]


@pytest.mark.parametrize(("code", "status"), [(0x143, "pass"), (0x1C4, "warning"), (0x000, "fail")])
def test_a_malformed_command_must_be_refused_with_the_named_code(code: int, status: str) -> None:
    answer = struct.pack(">HII", 0x8001, 10, code)
    assert _judge("error.x", "bad", answer, 0x143, "TPM_RC_COMMAND_CODE").status == status
    assert _judge("error.x", "bad", b"\x80", 0x143, "TPM_RC_COMMAND_CODE").status == "fail"


def test_minimums_against_the_ptp() -> None:
    rows = {r.id: r for r in minimum_rows({0x10E: 3, 0x111: 63})}
    assert rows["res.min.hr_transient_min"].status == "pass"
    assert rows["res.min.active_sessions_max"].status == "fail"
    assert rows["res.min.pcr_count"].status == "fail" and "not reported" in rows["res.min.pcr_count"].evidence


def test_reset_lines_per_tcti(tmp_path: Path) -> None:
    line, why = reset_line_for(("device", "/dev/tpmrm0"))
    assert line is None and "platform firmware" in why
    line, why = reset_line_for(("swtpm", f"path={tmp_path}/tpm.sock"))
    assert line is None and "control channel" in why
    mssim, _ = reset_line_for(("mssim", "host=127.0.0.1,port=2321"))
    assert isinstance(mssim, MssimResetLine) and mssim.port == 2322


def test_mssim_reset_line_sends_power_off_on_and_nv_on() -> None:
    """The simulator's platform port, played by a listener that records each signal."""
    listener = socket.create_server(("127.0.0.1", 0))
    signals: list[int] = []

    def serve() -> None:
        for _ in range(3):
            connection, _ = listener.accept()
            with connection:
                signals.append(struct.unpack(">I", connection.recv(4))[0])
                connection.sendall(b"\0\0\0\0")

    thread = threading.Thread(target=serve)
    thread.start()
    MssimResetLine("127.0.0.1", listener.getsockname()[1]).restart(power_lost=False)
    thread.join(timeout=10)
    listener.close()
    assert signals == [2, 1, 11]  # POWER_OFF, POWER_ON, NV_ON


def test_lifecycle_rows_that_cannot_run_are_skipped_with_the_reason_not_passed() -> None:
    from harness.conformance._lifecycle import LifecycleTarget, lifecycle_rows

    # No reset line and not destructive: no row touches the TPM, so none needs one here.
    target = LifecycleTarget(("device", "/dev/tpmrm0"), None, "no reset line here", False, "not allowed here")
    rows = {r.id: r for r in lifecycle_rows(target)}
    assert {r.status for r in rows.values()} == {"skipped"}
    assert "no reset line here" in rows["life.sleep_resume"].evidence
    assert "no reset line here" in rows["life.unorderly_reset"].evidence
    assert (
        "not allowed here" in rows["life.clear"].evidence
        and "not allowed here" in rows["life.change_eps"].evidence
    )
    assert "life.change_eps is skipped" in rows["life.firmware_update.reissued"].evidence
