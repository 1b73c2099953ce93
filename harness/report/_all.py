"""Every report of a run at once, as `harness run --out DIR` writes them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..results import RunResult
from ._html import write_html
from ._json import write_json
from ._junit import JUnitExtras, write_junit

BUNDLES = "bundles"  # where `harness run` writes evidence bundles and traces, under --out
_ATTACHED = (".json", ".tpm-trace.txt")


def write_reports(
    result: RunResult,
    out_dir: str | os.PathLike[str],
    *,
    history: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """results.json, junit.xml and index.html in `out_dir`; returns their paths by kind.

    With a run history the page opens with its trend charts and each device's recent
    outcomes, and JUnit marks flaky devices.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "junit": out / "junit.xml",
        "html": out / "index.html",
    }
    trends: dict[str, Any] | None = None
    flaky: frozenset[str] = frozenset()
    if history is not None:
        from ..history import History
        from ..history import trends as history_trends

        with History(history) as opened:
            trends = history_trends(opened, result)
        flaky = frozenset(
            d.key for d, (label, _) in zip(result.devices, trends["devices"], strict=True) if label == "flaky"
        )
    write_json(result, paths["json"])
    write_junit(result, paths["junit"], JUnitExtras(flaky=flaky, attachments=_attachments(result, out)))
    write_html(result, paths["html"], trends)
    return paths


def _attachments(result: RunResult, out: Path) -> dict[str, list[str]]:
    """Each device's bundle and trace file under out/bundles, as paths a CI job can open."""
    found: dict[str, list[str]] = {}
    bundles = out / BUNDLES
    if not bundles.is_dir():
        return found
    for device in result.devices:
        if device.device_id and not device.matched:
            files = [bundles / f"{device.device_id}{suffix}" for suffix in _ATTACHED]
            found[device.device_id] = [str(f) for f in files if f.is_file()]
    return found
