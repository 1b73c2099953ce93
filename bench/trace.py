"""(h) The TPM command trace's cost: the same fleet with every device's trace kept, and without.

The runs alternate (off, all, all, off) so that a machine getting busier or quieter during
the part weighs on both sides alike.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_COMMANDS = 2000  # TPM2_GetRandom round trips per side of the per-command figure


def bench_trace(scenario_path: Path, workers: int, say: Callable[[str], None]) -> float:
    """Wall time with `--trace all` over wall time with `--trace off`; prints the figures."""
    from harness.fleet import RunOptions, run_fleet
    from harness.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    say(f"(h) TPM command trace: {scenario_path.name}, {workers} workers, trace off, all, all, off")
    walls: dict[str, list[float]] = {"off": [], "all": []}
    commands = 0
    for mode in ("off", "all", "all", "off"):
        result = run_fleet([scenario], RunOptions(workers=workers, trace=mode))
        walls[mode].append(result.summary.wall_seconds)
        if mode == "all":
            commands = sum(len(d.trace) for d in result.devices)
        summary = result.summary
        matched = f"{summary.matched}/{summary.total} matched"
        say(f"    trace {mode:4} wall {summary.wall_seconds:6.1f} s, {matched}")
    off, on = sum(walls["off"]) / 2, sum(walls["all"]) / 2
    per_command = (on - off) / commands * 1e6 if commands else 0.0
    say(f"    TPM commands traced  {commands} ({commands / max(scenario.device_count, 1):.0f} per device)")
    say(f"    trace_ratio          {on / off:.3f} (wall with every trace / wall without)")
    say(f"    per command          {per_command:.0f} us of wall time (negative: within noise)")
    plain, traced = per_command_seconds()
    say(
        f"    one TPM2_GetRandom   {plain * 1e6:.0f} us untraced, {traced * 1e6:.0f} us traced "
        f"(+{(traced - plain) * 1e6:.0f} us, ratio {traced / plain:.3f}; one swtpm, {_COMMANDS} each)"
    )
    return on / off


def per_command_seconds() -> tuple[float, float]:
    """Seconds per TPM2_GetRandom on one swtpm, without and with the trace, alternating blocks."""
    from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, start_trace, stop_trace

    backend = SwtpmBackend()
    spent = {False: 0.0, True: 0.0}
    with tempfile.TemporaryDirectory(prefix="eah-bench-", dir="/tmp") as work:
        tpm = backend.start(TPMRequest(), Path(work))
        try:
            for traced in (False, True, True, False):
                if traced:
                    start_trace(tpm.tcti)
                with TimedESAPI(tpm.tcti) as esapi:
                    start = time.perf_counter()
                    for _ in range(_COMMANDS // 2):
                        esapi.get_random(8)
                    spent[traced] += time.perf_counter() - start
                stop_trace(tpm.tcti)
        finally:
            tpm.close()
            backend.close()
    return spent[False] / _COMMANDS, spent[True] / _COMMANDS
