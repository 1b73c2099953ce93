"""The run history, `harness diff` and flakiness, on results built here (pure logic, real SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.history import History, diff_runs, record_run, run_view, trends
from harness.report import write_json, write_reports
from harness.results import Checkpoint, DeviceResult, Outcome, RunResult, summarise
from harness.status import AttestationStatus, StatusDetail

ATTESTED = Outcome(status=AttestationStatus.ATTESTED)
NOT_TRUSTED = Outcome(status=AttestationStatus.NOT_ATTESTED, detail=StatusDetail.TPM_NOT_TRUSTED)


def device(
    group: str, index: int, actual: Outcome | None = ATTESTED, *, world: str = "w", seconds: float = 1.0
) -> DeviceResult:
    return DeviceResult(
        name=f"{group}-{index}",
        group=group,
        scenario="scenarios/nightly.yaml",
        device_id=f"id-{group}-{index}",
        expected=ATTESTED,
        actual=actual,
        matched=actual == ATTESTED,
        key=f"nightly/{group}/{index}@7",
        world=world,
        seconds=seconds,
        tpm_seconds=seconds / 2,
    )


def run(devices: list[DeviceResult], *, started: str, code: str = "git:abc") -> RunResult:
    summary = summarise(devices, scenarios=["scenarios/nightly.yaml"], started_at=started, wall_seconds=3.0)
    return RunResult(summary=summary.model_copy(update={"code": code}), devices=devices)


def healthy(started: str, **changes: Outcome) -> RunResult:
    devices = [device(g, i, changes.get(f"{g}{i}", ATTESTED)) for g in ("a", "b") for i in range(2)]
    return run(devices, started=started)


def test_recording_a_run_twice_keeps_one_row_and_devices_keep_their_key(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    first = healthy("2026-12-01T00:00:00+00:00")
    record_run(path, first)
    record_run(path, first)
    record_run(path, healthy("2026-12-02T00:00:00+00:00"))
    with History(path) as history:
        runs = history.runs()
        assert [r.started_at[:10] for r in runs] == ["2026-12-01", "2026-12-02"]
        assert [r.total for r in runs] == [4, 4]
        assert len(history.device_runs("nightly/a/0@7")) == 2, "the same device in both runs"


def test_diff_lists_exactly_the_devices_whose_status_changed(tmp_path: Path) -> None:
    before = run_view(healthy("2026-12-01T00:00:00+00:00", a1=NOT_TRUSTED))
    after = run_view(healthy("2026-12-02T00:00:00+00:00", a1=NOT_TRUSTED, b0=NOT_TRUSTED, b1=NOT_TRUSTED))
    found = diff_runs(before, after)
    assert [c.key for c in found.changed] == ["nightly/b/0@7", "nightly/b/1@7"]
    assert [c.key for c in found.new_mismatches] == ["nightly/b/0@7", "nightly/b/1@7"]
    assert [c.key for c in found.persistent_mismatches] == ["nightly/a/1@7"]
    assert found.fixed == [] and found.added == [] and found.removed == [] and found.flaky == []


def test_diff_finds_new_removed_and_fixed_devices() -> None:
    before = run([device("a", 0, NOT_TRUSTED), device("a", 1)], started="2026-12-01T00:00:00+00:00")
    after = run([device("a", 0), device("a", 2)], started="2026-12-02T00:00:00+00:00")
    found = diff_runs(run_view(before), run_view(after))
    assert [c.key for c in found.fixed] == ["nightly/a/0@7"]
    assert [c.key for c in found.added] == ["nightly/a/2@7"]
    assert [c.key for c in found.removed] == ["nightly/a/1@7"]


def test_a_device_is_slower_only_beyond_noise() -> None:
    before = run(
        [device("a", 0, seconds=3.0), device("a", 1, seconds=3.0)], started="2026-12-01T00:00:00+00:00"
    )
    after = run(
        [device("a", 0, seconds=5.0), device("a", 1, seconds=9.0)], started="2026-12-02T00:00:00+00:00"
    )
    found = diff_runs(run_view(before), run_view(after))
    assert [c.key for c in found.slower] == ["nightly/a/1@7"], "5 s after 3 s is noise; 9 s is not"


def test_flaky_is_back_and_forth_in_the_same_world_on_the_same_code(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    days = ["2026-12-01T00:00:00+00:00", "2026-12-02T00:00:00+00:00", "2026-12-03T00:00:00+00:00"]
    runs = [
        # a/0 flips back and forth with nothing changed; b/0 changes once, with its world;
        # c/0 changes once and stays so, with nothing in its world changed (a trust store, say).
        run([device("a", 0), device("b", 0), device("c", 0)], started=days[0]),
        run(
            [
                device("a", 0, NOT_TRUSTED),
                device("b", 0, NOT_TRUSTED, world="v"),
                device("c", 0, NOT_TRUSTED),
            ],
            started=days[1],
        ),
        run(
            [device("a", 0), device("b", 0, NOT_TRUSTED, world="v"), device("c", 0, NOT_TRUSTED)],
            started=days[2],
        ),
    ]
    for each in runs:
        record_run(path, each)
    with History(path) as history:
        found = diff_runs(history.view(history.runs()[1]), history.view(history.runs()[2]), history)
        assert found.flaky == ["nightly/a/0@7"]
        assert found.changed == [], "a flaky device's flip is noise, not a change"
        assert [row[0] for row in trends(history, runs[2])["devices"]] == [
            "flaky",
            "persistent",
            "persistent",
        ]
    other_code = run(
        [device("a", 0, NOT_TRUSTED), device("b", 0, world="v"), device("c", 0, NOT_TRUSTED)],
        started="2026-12-04T00:00:00+00:00",
        code="git:def",
    )
    record_run(path, other_code)
    with History(path) as history:
        assert [row[0] for row in trends(history, other_code)["devices"]] == ["new", "fixed", "persistent"], (
            "on new code there is no earlier run to be flaky against"
        )


def test_two_results_files_alone_mark_nothing_flaky() -> None:
    before = run_view(healthy("2026-12-01T00:00:00+00:00"))
    after = run_view(healthy("2026-12-02T00:00:00+00:00", a0=NOT_TRUSTED))
    found = diff_runs(before, after)
    assert found.flaky == [] and [c.key for c in found.changed] == ["nightly/a/0@7"]


def test_trends_have_one_entry_per_run_and_recent_outcomes_per_device(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    results = [
        healthy("2026-12-01T00:00:00+00:00"),
        healthy("2026-12-02T00:00:00+00:00", a0=NOT_TRUSTED),
        healthy("2026-12-03T00:00:00+00:00", a0=NOT_TRUSTED),
    ]
    for each in results:
        record_run(path, each)
    with History(path) as history:
        shown = trends(history, results[-1])
    assert [r["matched"] for r in shown["runs"]] == [4, 3, 3]
    assert [r["mismatched"] for r in shown["runs"]] == [0, 1, 1]
    assert shown["runs"][1]["mix"] == {"Attested": 3, "TPM isn't trusted": 1}
    assert shown["devices"][0] == ["persistent", "mxx"]
    assert shown["devices"][1] == ["", "mmm"]


def test_a_mismatch_names_its_checkpoint_in_the_diff() -> None:
    late = device("a", 0)
    late = late.model_copy(
        update={
            "matched": False,
            "checkpoints": [
                Checkpoint(step="step 3: expect", expected="Attested", actual="Not attested", matched=False)
            ],
        }
    )
    found = diff_runs(
        run_view(run([device("a", 0)], started="2026-12-01T00:00:00+00:00")),
        run_view(run([late], started="2026-12-02T00:00:00+00:00")),
    )
    assert found.new_mismatches[0].after is not None
    assert (
        found.new_mismatches[0].after.checkpoint == "step 3: expect: expected Attested, actual Not attested"
    )


def test_diff_command_gates_on_new_mismatches_and_prints_json(tmp_path: Path) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    write_json(healthy("2026-12-01T00:00:00+00:00"), before)
    write_json(healthy("2026-12-02T00:00:00+00:00", b1=NOT_TRUSTED), after)
    runner = CliRunner()
    plain = runner.invoke(app, ["diff", str(before), str(after)])
    assert plain.exit_code == 0, plain.output
    assert "nightly/b/1@7" in plain.output
    gated = runner.invoke(app, ["diff", str(before), str(after), "--fail-on-new-mismatch", "--json"])
    assert gated.exit_code == 1
    document = json.loads(gated.output)
    assert [c["key"] for c in document["changed"]] == ["nightly/b/1@7"]
    assert document["changed"][0]["after"]["detail"] == "TPM isn't trusted"
    same = runner.invoke(app, ["diff", str(before), str(before), "--fail-on-new-mismatch"])
    assert same.exit_code == 0


def test_diff_against_the_history_compares_with_the_run_before(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    for day, changes in (("01", {}), ("02", {"a0": NOT_TRUSTED})):
        result = healthy(f"2026-12-{day}T00:00:00+00:00", **changes)
        record_run(path, result)
        write_reports(result, tmp_path / day, history=path)
    runner = CliRunner()
    against_file = runner.invoke(
        app, ["diff", str(tmp_path / "02" / "results.json"), "--history", str(path), "--json"]
    )
    last_two = runner.invoke(app, ["diff", "--history", str(path), "--json"])
    for answer in (against_file, last_two):
        assert answer.exit_code == 0, answer.output
        assert [c["key"] for c in json.loads(answer.output)["new_mismatches"]] == ["nightly/a/0@7"]


@pytest.mark.parametrize(
    "args",
    [["diff"], ["diff", "--history", "missing.sqlite"], ["diff", "nothing.json", "nothing.json"]],
)
def test_diff_command_says_what_is_missing(tmp_path: Path, args: list[str]) -> None:
    answer = CliRunner().invoke(
        app, [a if not a.endswith(("json", "sqlite")) else str(tmp_path / a) for a in args]
    )
    assert answer.exit_code == 2
