"""index.html: one self-contained page to browse a run of up to tens of thousands of devices.

The page embeds the devices once, as compact JSON, and its script renders only the rows in
view; evidence is turned into DOM only for the device a user opens. Rendering every row and
its evidence as HTML would make a 10,000-device page tens of megabytes and unusably slow.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..results import (
    AttemptRecord,
    Checkpoint,
    CheckRecord,
    ClientStep,
    DeviceEvidence,
    DeviceResult,
    Outcome,
    RunResult,
    TPMCommand,
)
from ..status import RETRY_RECOMMENDED, AttestationStatus, StatusDetail
from ._files import atomic_write, encode_text

PAYLOAD_FORMAT = "harness-report/1"

# Position of each value in an encoded device row; the page looks positions up by name
# from this list, which is embedded with the data, so the two cannot drift apart.
FIELDS = (
    "name",
    "group",
    "scenario",
    "device_id",
    "expected_status",
    "expected_detail",
    "actual_status",
    "actual_detail",
    "matched",
    "error",
    "inventory",
    "client_steps",
    "request_items",
    "checks",
    "decision",
    "tpm_seconds",
    "seconds",
    "checkpoints",
    "attempts",
    "engine",
    "not_applicable",
    "key",
    "world",
    "trace",
)

# Nothing on the page may reach the network, and only the page's own script and style may
# run: the browser then enforces self-containment even if a device string slipped through.
_CSP = "default-src 'none'; script-src {script}; style-src '{style}'; base-uri 'none'; form-action 'none'"

_CLOSING_TAG = re.compile(r"</(script|style)", re.IGNORECASE)


class _StringTable:
    """Interns strings: a fleet repeats the same steps, checks, statuses and details for every
    device; storing each once keeps a 10,000-device page near 10 MB instead of 30 or more."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self.strings: list[str] = []

    def __call__(self, value: str) -> int:
        try:
            return self._index[value]
        except KeyError:
            index = self._index[value] = len(self.strings)
            self.strings.append(value)
            return index

    def flat(self, mapping: dict[str, str]) -> list[int]:
        # A flat key, value, key, value list keeps the order of the dict, which a JS object
        # would not for keys that look like integers.
        return [i for key, value in mapping.items() for i in (self(key), self(value))]


def _encode_device(device: DeviceResult, s: _StringTable) -> list[Any]:
    actual = device.actual
    evidence = device.evidence
    row: dict[str, Any] = {
        "name": s(device.name),
        "group": s(device.group),
        "scenario": s(device.scenario),
        "device_id": s(device.device_id),
        "expected_status": s(device.expected.status.value),
        "expected_detail": s(device.expected.detail.value),
        "actual_status": s(actual.status.value) if actual else None,
        "actual_detail": s(actual.detail.value) if actual else None,
        "matched": int(device.matched),
        "error": s(device.error),
        "inventory": s.flat(device.inventory),
        "client_steps": [
            [s(step.step), int(step.ok), s(step.detail), step.seconds] for step in evidence.client_steps
        ],
        "request_items": s.flat(evidence.request_items),
        "checks": [[s(c.name), int(c.passed), s(c.detail)] for c in evidence.checks],
        "decision": s(evidence.decision),
        "tpm_seconds": device.tpm_seconds,
        "seconds": device.seconds,
        "checkpoints": [
            [s(c.step), s(c.expected), s(c.actual), int(c.matched), s(c.reason)] for c in device.checkpoints
        ],
        "attempts": [
            [s(a.time), s(a.status), s(a.detail), s(a.trigger), s(a.decision)] for a in device.attempts
        ],
        "engine": s(device.engine),
        "not_applicable": s(device.not_applicable),
        "key": s(device.key),
        "world": s(device.world),
        "trace": [
            [s(c.source), s(c.command), s(c.response), c.rc, c.seconds, c.command_bytes, c.response_bytes]
            for c in device.trace
        ],
    }
    return [row[field] for field in FIELDS]


def encode_payload(result: RunResult, trends: dict[str, Any] | None = None) -> dict[str, Any]:
    """The page's data; `trends` (from the run history) adds the runs before this one and each
    device's recent outcomes, in the order of the devices."""
    strings = _StringTable()
    devices = [_encode_device(d, strings) for d in result.devices]
    return {
        "format": PAYLOAD_FORMAT,
        "fields": list(FIELDS),
        "retry": sorted(d.value for d in RETRY_RECOMMENDED),
        "strings": strings.strings,
        "devices": devices,
        "history": trends,
    }


def decode_payload(payload: dict[str, Any]) -> list[DeviceResult]:
    """The inverse of encode_payload: what the page's script reconstructs for each device."""
    if payload.get("format") != PAYLOAD_FORMAT:
        raise ValueError(f"not a {PAYLOAD_FORMAT} payload: {payload.get('format')!r}")
    strings: list[str] = payload["strings"]
    fields: list[str] = payload["fields"]

    def pairs(flat: list[int]) -> dict[str, str]:
        return {strings[flat[i]]: strings[flat[i + 1]] for i in range(0, len(flat), 2)}

    devices = []
    for encoded in payload["devices"]:
        row = dict(zip(fields, encoded, strict=True))
        actual = None
        if row["actual_status"] is not None:
            actual = Outcome(
                status=AttestationStatus(strings[row["actual_status"]]),
                detail=StatusDetail(strings[row["actual_detail"]]),
            )
        devices.append(
            DeviceResult(
                name=strings[row["name"]],
                group=strings[row["group"]],
                scenario=strings[row["scenario"]],
                device_id=strings[row["device_id"]],
                expected=Outcome(
                    status=AttestationStatus(strings[row["expected_status"]]),
                    detail=StatusDetail(strings[row["expected_detail"]]),
                ),
                actual=actual,
                matched=bool(row["matched"]),
                error=strings[row["error"]],
                inventory=pairs(row["inventory"]),
                evidence=DeviceEvidence(
                    client_steps=[
                        ClientStep(step=strings[a], ok=bool(b), detail=strings[c], seconds=d)
                        for a, b, c, d in row["client_steps"]
                    ],
                    request_items=pairs(row["request_items"]),
                    checks=[
                        CheckRecord(name=strings[a], passed=bool(b), detail=strings[c])
                        for a, b, c in row["checks"]
                    ],
                    decision=strings[row["decision"]],
                ),
                tpm_seconds=row["tpm_seconds"],
                seconds=row["seconds"],
                checkpoints=[
                    Checkpoint(
                        step=strings[a],
                        expected=strings[b],
                        actual=strings[c],
                        matched=bool(d),
                        reason=strings[e],
                    )
                    for a, b, c, d, e in row["checkpoints"]
                ],
                attempts=[
                    AttemptRecord(
                        time=strings[a],
                        status=strings[b],
                        detail=strings[c],
                        trigger=strings[d],
                        decision=strings[e],
                    )
                    for a, b, c, d, e in row["attempts"]
                ],
                engine=strings[row["engine"]],
                not_applicable=strings[row["not_applicable"]] if "not_applicable" in row else "",
                key=strings[row["key"]],
                world=strings[row["world"]],
                trace=[
                    TPMCommand(
                        source=strings[a],
                        command=strings[b],
                        response=strings[c],
                        rc=d,
                        seconds=e,
                        command_bytes=f,
                        response_bytes=g,
                    )
                    for a, b, c, d, e, f, g in row["trace"]
                ],
            )
        )
    return devices


def embed_json(value: Any) -> Markup:
    """JSON that is safe as the content of a <script> element.

    Escaping every "<" (not only "</") also rules out "<!--", which would otherwise switch
    the HTML parser into a state where the closing </script> no longer ends the element.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c"))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {rest:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes)} min"


def _detail_label(detail: str) -> str:
    return detail or "(no detail)"


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    env.filters["detail_label"] = _detail_label
    return env


@functools.cache
def _asset(name: str) -> str:
    text = resources.files("harness.report").joinpath("templates", name).read_text("utf-8")
    # The asset is inserted unescaped into a <script> or <style> element; this would end it early.
    if _CLOSING_TAG.search(text):
        raise ValueError(f"{name} must not contain a closing script or style tag")
    return text


def render_html(result: RunResult, trends: dict[str, Any] | None = None) -> str:
    summary = result.summary
    script = _asset("report.js")
    style = _asset("report.css")
    # Chart.js (MIT, from the npm registry, shipped with the package) draws the trend charts;
    # it is inlined only into a report that has a history to chart.
    charts = _asset("chart.umd.min.js") if trends and trends.get("runs") else ""
    hashes = " ".join(f"'{_csp_hash(text)}'" for text in (charts, script) if text)
    retry = {d.value for d in RETRY_RECOMMENDED}
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            summary=summary,
            by_status=sorted(summary.by_status.items(), key=lambda kv: (-kv[1], kv[0])),
            by_detail=sorted(summary.by_detail.items(), key=lambda kv: (-kv[1], kv[0])),
            retry=retry,
            payload=embed_json(encode_payload(result, trends)),
            script=Markup(script),
            charts=Markup(charts),
            trends=trends,
            style=Markup(style),
            csp=_CSP.format(script=hashes, style=_csp_hash(style)),
        )
    )


def write_html(result: RunResult, path: str | os.PathLike[str], trends: dict[str, Any] | None = None) -> None:
    atomic_write(Path(path), encode_text(render_html(result, trends)))
