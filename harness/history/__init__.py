"""The run history: runs recorded into one SQLite file, compared, charted and judged for flakiness.

`record_run` adds a run; `diff_runs` compares two (from results.json files or the history);
`trends` is what a report shows of the history; `code_identity` says which code ran, so that
"the same scenario on the same code" can be decided.
"""

from ._code import code_identity
from ._diff import SLOWER_FACTOR, SLOWER_SECONDS, Change, RunDiff, diff_runs, is_flaky, label
from ._model import DeviceView, RunInfo, RunView, run_view, view_of
from ._store import History, record_run
from ._trends import flaky_keys, trends

__all__ = [
    "SLOWER_FACTOR",
    "SLOWER_SECONDS",
    "Change",
    "DeviceView",
    "History",
    "RunDiff",
    "RunInfo",
    "RunView",
    "code_identity",
    "diff_runs",
    "flaky_keys",
    "is_flaky",
    "label",
    "record_run",
    "run_view",
    "trends",
    "view_of",
]
