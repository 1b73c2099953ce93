"""report.json, junit.xml (one test case per requirement) and one self-contained index.html."""

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


def write_vendor_reports(report: VendorReport, out_dir: Path) -> dict[str, Path]:
    """report.json, junit.xml and index.html in `out_dir`, each replaced in one step."""
    paths = {"json": out_dir / "report.json", "junit": out_dir / "junit.xml", "html": out_dir / "index.html"}
    write_json_document(report.to_dict(), paths["json"])
    write_xml_document(junit_xml(report), paths["junit"])
    write_text_document(html_page(report), paths["html"])
    return paths


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
    for row in report.rows:
        case = ET.SubElement(suite, "testcase", classname=f"vendor-check.{row.area}", name=row.id)
        if row.latency is not None:
            case.set("time", f"{row.latency.median_ms / 1000:.4f}")
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


def _areas(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.area, []).append(row)
    return list(grouped.items())


def html_page(report: VendorReport) -> str:
    templates = resources.files("harness.conformance") / "templates"
    css = (templates / "vendor.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string((templates / "vendor.html.j2").read_text(encoding="utf-8"))
    return template.render(
        report=report, areas=_areas(report.rows), css=css, csp=_CSP.format(style=f"sha256-{digest}")
    )
