"""Reports of a fleet run: results.json (the record), junit.xml (for CI), index.html (for people).

Every writer reads a RunResult; load_results reads a results.json back, so a report can be
re-rendered later, for instance after the page's layout changed.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..results import RunResult
from ._html import write_html
from ._json import load_results, write_json
from ._junit import write_junit

__all__ = ["load_results", "write_html", "write_json", "write_junit", "write_reports"]


def write_reports(result: RunResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "junit": out / "junit.xml",
        "html": out / "index.html",
    }
    write_json(result, paths["json"])
    write_junit(result, paths["junit"])
    write_html(result, paths["html"])
    return paths
