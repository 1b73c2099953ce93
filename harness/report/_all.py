"""Every report of a run at once, as `harness run --out DIR` writes them."""

from __future__ import annotations

import os
from pathlib import Path

from ..results import RunResult
from ._html import write_html
from ._json import write_json
from ._junit import write_junit


def write_reports(result: RunResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """results.json, junit.xml and index.html in `out_dir`; returns their paths by kind."""
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
