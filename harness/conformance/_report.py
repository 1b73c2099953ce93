"""report.json, junit.xml (one test case per requirement) and one self-contained index.html.

All three carry the same rows with the same evidence and clause; the page and the JUnit
suite put the failures first, so a vendor reads what to fix before what passed.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import jinja2

from ..report import write_json_document, write_text_document, write_xml_document, xml_text
from ._model import Row, VendorReport

# The page loads nothing and runs no script; the browser enforces it even if a vendor
# string in the evidence looked like markup.
_CSP = "default-src 'none'; style-src '{style}'; base-uri 'none'; form-action 'none'"
_ORDER = {"fail": 0, "warning": 1, "skipped": 2, "pass": 3}


def write_vendor_reports(report: VendorReport, out_dir: Path) -> dict[str, Path]:
    """report.json, junit.xml and index.html in `out_dir`, each replaced in one step."""
    paths = {"json": out_dir / "report.json", "junit": out_dir / "junit.xml", "html": out_dir / "index.html"}
    write_json_document(report.to_dict(), paths["json"])
    write_xml_document(junit_xml(report), paths["junit"])
    write_text_document(html_page(report), paths["html"])
    return paths


def _by_outcome(rows: list[Row]) -> list[Row]:
    # sorted() is stable: within an outcome the rows keep the order they were checked in.
    return sorted(rows, key=lambda r: _ORDER[r.status])


def junit_xml(report: VendorReport) -> ET.Element:
    counts = report.counts
    suite = ET.Element(
        "testsuite",
        name="vendor-check",
        tests=str(len(report.rows)),
        failures=str(counts["fail"]),
        errors="0",
        skipped=str(counts["skipped"]),
        time=f"{report.seconds:.3f}",
        timestamp=report.started,
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="tcti", value=xml_text(report.tcti))
    ET.SubElement(properties, "property", name="destructive", value=str(report.destructive).lower())
    for unit in report.units:
        ET.SubElement(properties, "property", name=f"unit.{unit.name}", value=xml_text(unit.tcti))
    for row in _by_outcome(report.rows):
        group = f"vendor-check.{row.unit}.{row.area}" if row.unit else f"vendor-check.{row.area}"
        case = ET.SubElement(suite, "testcase", classname=xml_text(group), name=xml_text(row.key))
        if row.latency is not None:
            case.set("time", f"{row.latency.median_ms / 1000:.4f}")
        case_properties = ET.SubElement(case, "properties")
        ET.SubElement(case_properties, "property", name="clause", value=xml_text(row.clause))
        ET.SubElement(case_properties, "property", name="evidence", value=xml_text(row.evidence))
        if row.latency is not None:
            ET.SubElement(case_properties, "property", name="latency", value=str(row.latency))
        text = xml_text(f"{row.evidence}\nclause: {row.clause}")
        if row.status == "fail":
            ET.SubElement(case, "failure", message=xml_text(row.evidence)).text = text
        elif row.status == "skipped":
            ET.SubElement(case, "skipped", message=xml_text(row.evidence))
        else:
            ET.SubElement(case, "system-out").text = f"{row.status}: {text}"
    suites = ET.Element("testsuites")
    suites.append(suite)
    return suites


def _sections(report: VendorReport) -> list[tuple[str, list[tuple[str, list[Row]]]]]:
    """(unit heading, [(area, rows)]) in the order the rows were checked."""
    units: dict[str, dict[str, list[Row]]] = {}
    for row in report.rows:
        units.setdefault(row.unit, {}).setdefault(row.area, []).append(row)
    tctis = {u.name: u.tcti for u in report.units}
    sections = []
    for unit, areas in units.items():
        heading = f"{unit}: {tctis.get(unit, '')}" if unit else ("All units" if len(report.units) > 1 else "")
        sections.append((heading, list(areas.items())))
    return sections


def html_page(report: VendorReport) -> str:
    templates = resources.files("harness.conformance") / "templates"
    css = (templates / "vendor.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string((templates / "vendor.html.j2").read_text(encoding="utf-8"))
    return template.render(
        report=report,
        failures=report.failures,
        warnings=[r for r in report.rows if r.status == "warning"],
        sections=_sections(report),
        css=css,
        csp=_CSP.format(style=f"sha256-{digest}"),
    )
