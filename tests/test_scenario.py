"""Scenario files: every error names its file, line and field; fleets plan deterministically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.fleet import plan_fleet
from harness.scenario import Scenario, load_scenario, parse_scenario
from harness.status import AttestationStatus, StatusDetail

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "fleet.yaml"

# A valid two-group fleet; tests splice one bad line into the second group at {extra}.
TWO_GROUPS = """\
name: fleet
seed: 11
groups:
  - name: laptops
    count: 2
    expect:
      status: Attested
  - name: desktops
    {extra}
    expect:
      status: Attested
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the n-th line containing needle."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} occurs {len(hits)} times"
    return hits[occurrence - 1]


def scenario_error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, SOURCE)
    return info.value


def assert_points_at(error: ScenarioError, line: int | None, field: str) -> None:
    assert error.path == SOURCE
    assert (error.line, error.field) == (line, field), str(error)
    assert error.message
    where = f"{SOURCE}:{line}" if line is not None else SOURCE
    assert str(error).startswith(where)
    if field:
        assert field in str(error)


# --- errors inside a group ------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "needle", "field", "message"),
    [
        ("platfrom: physical", "platfrom:", "groups[1].platfrom", "unknown field"),
        ("count: many", "count: many", "groups[1].count", "integer"),
        ("count: 0", "count: 0", "groups[1].count", "greater than or equal to 1"),
        ("count: 100001", "count: 100001", "groups[1].count", "less than or equal to 100000"),
        ("os_build: 11.0.1", "os_build:", "groups[1].os_build", "'11.0.1'"),
        ("os_build: 10.0.22631", "os_build:", "groups[1].os_build", "'10.0.22631'"),
        ("platform: bochs", "platform:", "groups[1].platform", "must be one of"),
        ("ownership: shared", "ownership:", "groups[1].ownership", "must be one of"),
        ("tpm: {vendor: acme}", "tpm:", "groups[1].tpm.vendor", "unknown vendor 'acme'"),
        ("tpm: {vendor: 'id:4946'}", "tpm:", "groups[1].tpm.vendor", "unknown vendor"),
        ("tpm: {firmware: seven}", "tpm:", "groups[1].tpm.firmware", "firmware 'seven'"),
        ("tpm: {firmware: 'id:12'}", "tpm:", "groups[1].tpm.firmware", "firmware 'id:12'"),
        ("tpm: {firmware: '70000.1'}", "tpm:", "groups[1].tpm.firmware", "16.16"),
        ("tpm: {family: '3.0'}", "tpm:", "groups[1].tpm.family", "must be one of"),
        ("hardware: {colour: red}", "hardware:", "groups[1].hardware.colour", "unknown field"),
        ("name: second-name", "second-name", "groups[1].name", "twice"),
    ],
    ids=[
        "unknown-field",
        "count-wrong-type",
        "count-zero",
        "count-too-big",
        "os-build-not-windows",
        "os-build-three-parts",
        "unknown-platform",
        "unknown-ownership",
        "unknown-tpm-vendor",
        "short-tpm-vendor-id",
        "firmware-text",
        "firmware-short-id",
        "firmware-over-16-bits",
        "tpm-family",
        "hardware-unknown-field",
        "duplicate-key-in-group",
    ],
)
def test_group_error_names_file_line_and_field(extra: str, needle: str, field: str, message: str) -> None:
    text = TWO_GROUPS.format(extra=extra)
    error = scenario_error(text)
    assert_points_at(error, line_of(text, needle), field)
    assert message in error.message


def test_unknown_field_message_is_exactly_unknown_field() -> None:
    text = TWO_GROUPS.format(extra="platfrom: physical")
    error = scenario_error(text)
    assert (error.line, error.field, error.message) == (9, "groups[1].platfrom", "unknown field")


def test_nested_block_error_points_at_the_nested_key() -> None:
    text = TWO_GROUPS.format(extra="tpm:\n      model: X\n      firmware: 'x.y'")
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "firmware:"), "groups[1].tpm.firmware")


def test_unknown_status_detail() -> None:
    text = TWO_GROUPS.replace(
        "      status: Attested\n  - name: desktops",
        "      status: Not attested\n      detail: TPM is on fire\n  - name: desktops",
    ).format(extra="count: 1")
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "TPM is on fire"), "groups[0].expect.detail")
    assert "must be one of" in error.message
    assert "TPM isn't trusted" in error.message


def test_unknown_status() -> None:
    text = TWO_GROUPS.format(extra="count: 1").replace("status: Attested", "status: Attestd", 1)
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "Attestd"), "groups[0].expect.status")
    assert "must be one of" in error.message


def test_attested_expectation_with_a_detail() -> None:
    text = TWO_GROUPS.format(extra="count: 1").replace(
        "      status: Attested\n",
        "      status: Attested\n      detail: TPM isn't ready\n",
        1,
    )
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "expect:", 1), "groups[0].expect")
    assert "'Attested' device has no status detail" in error.message


def test_not_attested_expectation_without_detail() -> None:
    text = TWO_GROUPS.format(extra="count: 1")
    head, tail = text.rsplit("status: Attested", 1)
    text = head + "status: Not attested" + tail
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "expect:", 2), "groups[1].expect")
    assert "needs the status detail" in error.message


def test_not_started_expectation_with_detail() -> None:
    text = TWO_GROUPS.format(extra="count: 1").replace(
        "      status: Attested\n",
        "      status: Not started\n      detail: TPM isn't ready\n",
        1,
    )
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "expect:"), "groups[0].expect")


def test_missing_expectation() -> None:
    text = "name: fleet\ngroups:\n  - name: a\n    count: 1\n"
    error = scenario_error(text)
    assert_points_at(error, 3, "groups[0].expect")
    assert "required" in error.message.lower()


def test_duplicate_group_names_point_at_the_second_name() -> None:
    text = TWO_GROUPS.format(extra="count: 1").replace("name: desktops", "name: laptops")
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "name: laptops", 2), "groups[1].name")
    assert "'laptops'" in error.message
    assert "twice" in error.message


def test_duplicate_key_in_a_mapping() -> None:
    text = TWO_GROUPS.format(extra="count: 1\n    count: 3")
    error = scenario_error(text)
    assert_points_at(error, line_of(text, "count: 3"), "groups[1].count")
    assert "twice" in error.message


def test_duplicate_top_level_key() -> None:
    text = "name: a\nseed: 1\nname: b\ngroups:\n  - name: g\n    expect: {status: Attested}\n"
    error = scenario_error(text)
    assert_points_at(error, 3, "name")


def test_error_in_defaults_names_defaults() -> None:
    text = (
        "name: fleet\n"
        "defaults:\n"
        "  os_build: 10.0.22631.2792\n"
        "  tpm:\n"
        "    vendor: acme\n"
        "groups:\n"
        "  - name: a\n"
        "    expect: {status: Attested}\n"
    )
    error = scenario_error(text)
    assert_points_at(error, 5, "defaults.tpm.vendor")


def test_only_the_first_error_is_named_and_the_rest_counted() -> None:
    text = TWO_GROUPS.format(extra="count: 0\n    platform: bochs")
    error = scenario_error(text)
    needle = {"groups[1].count": "count: 0", "groups[1].platform": "platform:"}[error.field]
    assert_points_at(error, line_of(text, needle), error.field)
    assert error.message.endswith("(and 1 more error)")


# --- errors in the file as a whole ---------------------------------------------------------


def test_malformed_yaml_names_a_line() -> None:
    text = "name: fleet\ngroups: [\n  {name: a, expect: {status: Attested}}\n"
    error = scenario_error(text)
    assert error.path == SOURCE
    assert error.line is not None
    assert error.field == ""
    assert "not valid YAML" in error.message
    assert str(error).startswith(f"{SOURCE}:{error.line}: ")


def test_malformed_yaml_tab_indentation_names_its_line() -> None:
    text = "name: fleet\ngroups:\n  - name: a\n\tcount: 1\n"
    error = scenario_error(text)
    assert (error.path, error.line, error.field) == (SOURCE, 4, "")
    assert "not valid YAML" in error.message


def test_unclosed_bracket_points_at_the_bracket() -> None:
    text = (
        "name: fleet\ngroups:\n  - name: a\n    tpm: {vendor: infineon\n    expect:\n      status: Attested\n"
    )
    error = scenario_error(text)
    assert (error.line, error.field) == (4, "")


@pytest.mark.parametrize(
    "text", ["", "\n", "# only a comment\n", "---\n"], ids=["empty", "newline", "comment", "marker"]
)
def test_empty_file(text: str) -> None:
    error = scenario_error(text)
    assert_points_at(error, 1, "")
    assert "mapping" in error.message


@pytest.mark.parametrize(
    "text", ["- name: a\n- name: b\n", "just a string\n", "42\n"], ids=["list", "string", "number"]
)
def test_top_level_is_not_a_mapping(text: str) -> None:
    error = scenario_error(text)
    assert_points_at(error, 1, "")
    assert "mapping" in error.message


def test_unknown_top_level_field() -> None:
    text = "name: fleet\nseed: 1\nflavour: vanilla\ngroups:\n  - name: a\n    expect: {status: Attested}\n"
    error = scenario_error(text)
    assert_points_at(error, 3, "flavour")
    assert error.message == "unknown field"


def test_missing_groups() -> None:
    error = scenario_error("name: fleet\nseed: 1\n")
    assert error.field == "groups"
    assert error.line == 1
    assert "required" in error.message.lower()


def test_empty_group_list() -> None:
    error = scenario_error("name: fleet\ngroups: []\n")
    assert_points_at(error, 2, "groups")


def test_invalid_scenario_name() -> None:
    error = scenario_error("name: '!bad'\ngroups:\n  - name: a\n    expect: {status: Attested}\n")
    assert_points_at(error, 1, "name")


def test_boolean_count_is_a_wrong_type() -> None:
    error = scenario_error(TWO_GROUPS.format(extra="count: true"))
    assert error.field == "groups[1].count"


# --- reading files -------------------------------------------------------------------------


def test_load_scenario_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    text = TWO_GROUPS.format(extra="platfrom: physical")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = info.value
    assert (error.path, error.line, error.field) == (str(path), 9, "groups[1].platfrom")
    assert str(error).startswith(f"{path}:9: groups[1].platfrom: ")


def test_load_scenario_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = info.value
    assert not isinstance(error, OSError)
    assert error.path == str(path)
    assert error.line is None
    assert "cannot read" in error.message


def test_load_scenario_directory_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path)
    assert info.value.path == str(tmp_path)


def test_load_scenario_non_utf8_file_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_bytes(b"name: fl\xffeet\ngroups: []\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.path == str(path)


def test_control_character_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: fleet\x01\ngroups: []\n", SOURCE)
    assert info.value.path == SOURCE


# --- valid scenarios -----------------------------------------------------------------------


def test_smoke_scenario_loads() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    assert scenario.device_count >= 6
    expectations = {(g.expect.status, g.expect.detail) for g in scenario.groups}
    assert (AttestationStatus.ATTESTED, StatusDetail.NONE) in expectations
    assert (AttestationStatus.NOT_ATTESTED, StatusDetail.FEATURE_NOT_SUPPORTED) in expectations
    assert str(StatusDetail.FEATURE_NOT_SUPPORTED) == "Feature isn't supported"
    assert all(g.line is not None for g in scenario.groups)


MERGED = """\
name: merged
seed: 5
defaults:
  platform: hyper-v
  ownership: personal
  upn_domain: fabrikam.com
  hardware:
    manufacturer: Contoso
  tpm:
    vendor: nuvoton
    firmware: "7.2"
groups:
  - name: physical-override
    platform: physical
    hardware:
      model: Surface 9
    tpm:
      model: NPCT75x-B
    expect:
      status: Attested
  - name: vendor-override
    tpm:
      vendor: infineon
      ek: ecc256
    expect:
      status: Not attested
      detail: Feature isn't supported
  - name: plain
    expect:
      status: Not attested
      detail: Feature isn't supported
"""


def test_defaults_merge_into_groups() -> None:
    scenario = parse_scenario(MERGED, SOURCE)
    groups = {g.name: g for g in scenario.groups}

    first = groups["physical-override"]
    assert first.platform == "physical"  # the group's value wins
    assert first.ownership == "personal"  # from defaults
    assert first.upn_domain == "fabrikam.com"
    assert first.os_build == "10.0.22631.2792"  # built in
    assert (first.hardware.manufacturer, first.hardware.model) == ("Contoso", "Surface 9")
    assert first.tpm.vendor == "nuvoton"  # defaults.tpm.vendor ...
    assert first.tpm.model == "NPCT75x-B"  # ... and the group's tpm.model, together
    assert first.tpm.firmware == "7.2"
    assert first.tpm.ek == "rsa2048"

    second = groups["vendor-override"]
    assert second.platform == "hyper-v"
    assert second.virtual
    assert second.tpm.vendor == "infineon"  # group overrides defaults
    assert second.tpm.firmware == "7.2"
    assert second.tpm.ek == "ecc256"
    assert second.hardware.manufacturer == "Contoso"

    third = groups["plain"]
    assert third.platform == "hyper-v"
    assert third.tpm.vendor == "nuvoton"
    assert third.tpm.model is None

    assert [g.line for g in scenario.groups] == [
        line_of(MERGED, "- name: physical-override"),
        line_of(MERGED, "- name: vendor-override"),
        line_of(MERGED, "- name: plain"),
    ]


def test_built_in_defaults_apply_when_nothing_is_set() -> None:
    scenario = parse_scenario("name: bare\ngroups:\n  - name: g\n    expect: {status: Attested}\n", SOURCE)
    assert (scenario.name, scenario.seed, scenario.path) == ("bare", 0, SOURCE)
    (group,) = scenario.groups
    assert group.platform == "physical"
    assert not group.virtual
    assert group.os_build == "10.0.22631.2792"
    assert group.ownership == "corporate"
    assert group.upn_domain == "contoso.com"
    assert group.count == 1
    assert group.tpm.family == "2.0"
    assert group.tpm.vendor is None
    assert group.tpm.ek == "rsa2048"
    assert (group.hardware.manufacturer, group.hardware.model) == (None, None)
    assert group.expect.detail is StatusDetail.NONE


def test_defaults_do_not_leak_between_scenarios() -> None:
    parse_scenario(MERGED, SOURCE)
    bare = parse_scenario("name: bare\ngroups:\n  - name: g\n    expect: {status: Attested}\n")
    assert bare.groups[0].platform == "physical"
    assert bare.groups[0].tpm.vendor is None
    assert bare.groups[0].upn_domain == "contoso.com"


# --- the CLI ---------------------------------------------------------------------------------


def harness_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_bad_file(directory: Path) -> Path:
    path = directory / "fleet.yaml"
    path.write_text(TWO_GROUPS.format(extra="platfrom: physical"), encoding="utf-8")
    return path


def test_cli_validate_bad_file_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    write_bad_file(tmp_path)
    result = harness_cli("validate", "fleet.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "fleet.yaml:9" in result.stderr
    assert "groups[1].platfrom" in result.stderr
    assert "unknown field" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_validate_missing_file_exits_2(tmp_path: Path) -> None:
    result = harness_cli("validate", "absent.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "absent.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_validate_good_file_exits_0() -> None:
    result = harness_cli("validate", "scenarios/smoke.yaml", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "2 groups, 6 devices" in result.stderr


def test_cli_validate_long_path_keeps_file_line_on_one_line(tmp_path: Path) -> None:
    directory = tmp_path / ("a-scenario-directory-with-a-long-name-" * 2)
    directory.mkdir()
    path = write_bad_file(directory)
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
    result = harness_cli("validate", str(path), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert f"{path}:9: groups[1].platfrom" in result.stderr


def test_cli_run_bad_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    write_bad_file(tmp_path)
    out = tmp_path / "out"
    result = harness_cli("run", "fleet.yaml", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "fleet.yaml:9" in result.stderr
    assert "groups[1].platfrom" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_cli_run_good_then_bad_file_writes_nothing(tmp_path: Path) -> None:
    write_bad_file(tmp_path)
    out = tmp_path / "out"
    smoke = str(ROOT / "scenarios" / "smoke.yaml")
    result = harness_cli("run", smoke, "fleet.yaml", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "fleet.yaml:9" in result.stderr
    assert not out.exists() or not any(out.iterdir())


# --- planning ----------------------------------------------------------------------------------


TWO_PLAIN_GROUPS = """\
name: planned
seed: {seed}
groups:
  - name: first
    count: 4
    expect: {{status: Attested}}
  - name: second
    count: 4
    expect: {{status: Attested}}
"""


def identities(scenario: Scenario) -> list[tuple[str, str, str, str, str]]:
    plans, _ = plan_fleet([scenario])
    return [
        (p.key, p.inventory.device_name, p.inventory.upn, p.inventory.serial, p.emm_device_id) for p in plans
    ]


def test_planning_is_deterministic() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    first, second = identities(scenario), identities(scenario)
    assert first == second
    assert len(first) == scenario.device_count
    reparsed = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    assert identities(reparsed) == first


def test_planning_is_deterministic_across_processes(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from harness.fleet import plan_fleet\n"
        "from harness.scenario import load_scenario\n"
        "plans, _ = plan_fleet([load_scenario('scenarios/smoke.yaml')])\n"
        "print(json.dumps([[p.inventory.device_name, p.inventory.upn, p.inventory.serial,"
        " p.emm_device_id] for p in plans]))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    here = [list(row[1:]) for row in identities(load_scenario(ROOT / "scenarios" / "smoke.yaml"))]
    assert outputs[0] == here


def test_planning_keeps_expectations_with_the_controller() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    plans, expectations = plan_fleet([scenario])
    assert set(expectations) == {p.key for p in plans}
    assert len({p.key for p in plans}) == len(plans)
    assert len({p.emm_device_id for p in plans}) == len(plans)


def test_two_groups_get_different_devices() -> None:
    rows = identities(parse_scenario(TWO_PLAIN_GROUPS.format(seed=1), SOURCE))
    first = [r for r in rows if r[0].startswith("planned/first/")]
    second = [r for r in rows if r[0].startswith("planned/second/")]
    assert len(first) == len(second) == 4
    for column in (1, 2, 3, 4):  # name, UPN, serial, EMM device id
        assert {r[column] for r in first}.isdisjoint({r[column] for r in second}), column


def test_two_seeds_get_different_devices() -> None:
    one = identities(parse_scenario(TWO_PLAIN_GROUPS.format(seed=1), SOURCE))
    two = identities(parse_scenario(TWO_PLAIN_GROUPS.format(seed=2), SOURCE))
    assert [r[0] for r in one] == [r[0] for r in two]  # same keys ...
    for column in (1, 2, 3, 4):  # ... but different names, UPNs, serials and ids
        assert {r[column] for r in one}.isdisjoint({r[column] for r in two}), column


# --- world settings and steps ------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ("tpm: {family: '1.2', state: lockout}", "groups[1]", "tpm.state needs a TPM 2.0"),
        ("tpm: {family: none, mdm_key: present}", "groups[1]", "tpm.mdm_key needs a TPM 2.0"),
        ("tpm: {state: sleepy}", "groups[1].tpm.state", "must be one of 'ready', 'lockout'"),
        ("network: {aik_ca: down}", "groups[1].network.aik_ca", "must be one of 'reachable'"),
        ("entra: {join: none, token: previous-device}", "groups[1].entra", "never joined"),
        ("client: {diagnostic_log_kib: -1}", "groups[1].client.diagnostic_log_kib", "greater than"),
    ],
)
def test_impossible_worlds_are_refused_at_their_line(extra: str, field: str, message: str) -> None:
    text = TWO_GROUPS.format(extra=extra)
    error = scenario_error(text)
    assert error.field == field, str(error)
    assert message in error.message
    assert error.line in (line_of(text, "- name: desktops"), line_of(text, extra.split(":")[0] + ":"))


def test_world_settings_reach_the_device_plan() -> None:
    text = TWO_GROUPS.format(
        extra="tpm: {vendor: nuvoton, ek_certificate: unlisted-ca, state: lockout, mdm_key: present}\n"
        "    network: {aik_ca: reset, enrollment: replayed, nonce_from: lagging-replica}\n"
        "    entra: {join: software, token: foreign-tenant}\n"
        "    client: {aik_support: false, power_off_after: nonce, diagnostic_log_kib: 2}"
    )
    plans, _ = plan_fleet([parse_scenario(text, SOURCE)])
    plan = next(p for p in plans if p.group == "desktops")
    assert plan.tpm.issuer == "nuvoton-unlisted"
    assert (plan.world["tpm.state"], plan.world["tpm.mdm_key"]) == ("lockout", "present")
    assert (plan.world["network.aik_ca"], plan.world["network.enrollment"]) == ("reset", "replayed")
    assert (plan.world["network.nonce_from"], plan.world["entra.token"]) == (
        "lagging-replica",
        "foreign-tenant",
    )
    behaviour = plan.behaviour
    assert not behaviour.entra_key_in_tpm and behaviour.entra_joined
    assert not behaviour.sends_aik_items and behaviour.powers_off_after_nonce
    assert behaviour.diagnostic_log_bytes == 2048
    # Nothing of the expectation travels with the plan.
    assert "expect" not in repr(plan).lower()


def test_no_ek_certificate_means_no_issuer_and_raw_vendor_ids_get_the_odm_ca() -> None:
    text = TWO_GROUPS.format(extra="tpm: {ek_certificate: none}")
    text = text.replace("    count: 2\n", "    count: 2\n    tpm: {vendor: 'id:5A5A5A00'}\n")
    plans, _ = plan_fleet([parse_scenario(text, SOURCE)])
    by_group = {p.group: p for p in plans}
    assert by_group["desktops"].tpm.issuer is None
    assert by_group["laptops"].tpm.issuer == "odm"
    assert by_group["laptops"].tpm.manufacturer_id == "id:5A5A5A00"


STEPS = (
    TWO_GROUPS.format(extra="count: 1")
    + """\
principals:
  - name: helpdesk
steps:
  - attest: {groups: [laptops], as: helpdesk, expect_response: 403}
  - advance_clock: {seconds: 61}
  - check_in: {groups: [laptops, desktops]}
  - world: {group: desktops, aik_ca: reachable}
  - expect: {group: laptops, status: Attested}
"""
)


def test_steps_parse_in_order() -> None:
    scenario = parse_scenario(STEPS, SOURCE)
    assert [s.kind for s in scenario.steps] == ["attest", "advance_clock", "check_in", "world", "expect"]
    assert scenario.steps[0].attest is not None and scenario.steps[0].attest.principal == "helpdesk"
    assert [p.name for p in scenario.principals] == ["helpdesk"]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "groups: [laptops, desktops]",
            "groups: [laptops, servers]",
            "steps[2].check_in.groups[1]",
            "servers",
        ),
        ("{group: laptops, status", "{group: phones, status", "steps[4].expect.group", "phones"),
        ("as: helpdesk", "as: intern", "steps[0].attest.as", "intern"),
        ("advance_clock: {seconds: 61}", "advance_clock: {seconds: 0}", "steps[1].advance_clock.seconds", ""),
        (
            "- advance_clock: {seconds: 61}",
            "- {advance_clock: {seconds: 5}, check_in: {groups: [laptops]}}",
            "steps[1]",
            "exactly one",
        ),
        ("{group: desktops, aik_ca: reachable}", "{group: desktops}", "steps[3].world", "changes"),
        (
            "{group: desktops, aik_ca: reachable}",
            "{group: desktops, firmware_update: {firmware: seven}}",
            "steps[3].world.firmware_update.firmware",
            "firmware 'seven'",
        ),
        (
            "{group: desktops, aik_ca: reachable}",
            "{group: desktops, os_upgrade: {build: '11'}}",
            "steps[3].world.os_upgrade.build",
            "not a Windows",
        ),
        (
            "{group: desktops, aik_ca: reachable}",
            "{group: desktops, entra: {rejoin: software}}",
            "steps[3].world.entra.rejoin",
            "",
        ),
        (
            "{group: desktops, aik_ca: reachable}",
            "{group: desktops, tpm: format}",
            "steps[3].world.tpm",
            "",
        ),
        (
            "{group: laptops, status: Attested}",
            "{group: laptops, status: Attested, action: forgotten}",
            "steps[4].expect.action",
            "",
        ),
    ],
)
def test_step_errors_point_at_the_step(old: str, new: str, field: str, message: str) -> None:
    text = STEPS.replace(old, new)
    assert text != STEPS
    error = scenario_error(text)
    assert error.field == field, str(error)
    assert message in error.message
    assert error.line == line_of(text, new)


def test_remedy_steps_and_a_history_parse() -> None:
    text = (
        TWO_GROUPS.format(extra="count: 1\n    history: {enrolled_before_attestation: true}")
        + """\
steps:
  - world: {group: desktops, tpm: clear, wipe: true}
  - world: {group: laptops, os_upgrade: {build: 10.0.26100.2894}, entra: {rejoin: tpm}}
  - world: {group: laptops, firmware_update: {firmware: "7.63"}}
  - expect: {group: laptops, status: Attested, action: pending}
"""
    )
    scenario = parse_scenario(text, SOURCE)
    assert any(g.history.enrolled_before_attestation for g in scenario.groups)
    first, second, third, fourth = scenario.steps
    assert first.world is not None and first.world.tpm == "clear" and first.world.wipe
    assert second.world is not None and second.world.os_upgrade is not None
    assert second.world.os_upgrade.build == "10.0.26100.2894"
    assert third.world is not None and third.world.firmware_update is not None
    assert fourth.expect is not None and fourth.expect.action == "pending"
