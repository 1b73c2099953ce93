"""The seam for world conditions: the registry is where every world setting lives.

The scenario models are assembled from it (each registered field, and only those, with
file:line:field errors), and a condition registered here, outside the package, becomes a
scenario field and acts at its hooks in a real run (swtpm, the embedded server).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import StringConstraints
from tpm2_pytss import ESYS_TR, TPM2_ALG, TPML_DIGEST_VALUES, TPML_PCR_SELECTION, TPMT_HA, TPMU_HA

from harness.errors import ScenarioError
from harness.fleet import RunOptions, plan_fleet, run_fleet
from harness.results import ClientStep
from harness.scenario import TPMSettings, parse_scenario, scenario_models
from harness.tpm import TimedESAPI
from harness.world import REGISTRY, DeviceLife, Setting, StepChange, WorldCondition

from .conftest import needs_swtpm

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = ROOT / "harness" / "world" / "conditions"

# --- the registry is the scenario's world --------------------------------------------------


def test_every_world_field_of_the_scenario_model_is_a_registered_setting() -> None:
    models = scenario_models()
    registered = {s.path for s in REGISTRY.settings()}
    core_tpm = set(TPMSettings.model_fields)  # the factory's TPM: vendor, model, firmware, EK
    in_model = {
        f"{section}.{name}"
        for section, model in models.sections.items()
        for name in model.model_fields
        if not (section == "tpm" and name in core_tpm)
    }
    assert in_model == registered
    step_keys = set(models.world_change.model_fields) - {"group"}
    assert step_keys == {change.name for change in REGISTRY.step_changes()}
    # The ones the scenarios and README use, each owned by exactly one condition.
    for path in (
        "tpm.state",
        "tpm.ek_certificate",
        "tpm.mdm_key",
        "client.aik_support",
        "entra.token",
        "network.aik_ca",
        "network.enrollment",
        "history.enrolled_before_attestation",
    ):
        assert sum(1 for c in REGISTRY.conditions() for s in c.settings if s.path == path) == 1, path


def test_each_built_in_condition_lives_in_its_own_module() -> None:
    modules = {type(c).__module__ for c in REGISTRY.conditions()}
    assert len(modules) == len(REGISTRY.conditions())
    assert all(m.startswith("harness.world.conditions.") for m in modules)
    assert {m.rsplit(".", 1)[1] for m in modules} <= {p.stem for p in CONDITIONS.glob("_*.py")}


def test_conditions_name_no_outcome() -> None:
    """Mechanisms only: no condition module mentions a status or a status detail."""
    from harness.status import AttestationStatus, StatusDetail

    outcomes = [s.value for s in AttestationStatus] + [d.value for d in StatusDetail if d.value]
    for path in CONDITIONS.glob("*.py"):
        text = path.read_text()
        assert "harness.status" not in text and "..status" not in text, path
        assert not [o for o in outcomes if f'"{o}"' in text or f"'{o}'" in text], path


SCENARIO = """\
name: seam
groups:
  - name: g
    {extra}
    expect: {{status: Attested}}
"""


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ("tpm: {state: sleepy}", "groups[0].tpm.state", "must be one of 'ready', 'lockout'"),
        ("network: {enrollment: lost}", "groups[0].network.enrollment", "must be one of 'delivered'"),
        ("entra: {token: stolen}", "groups[0].entra.token", "must be one of 'own-device'"),
        ("history: {enrolled_yesterday: true}", "groups[0].history.enrolled_yesterday", "unknown field"),
        ("lab: {pcr16: boot}", "groups[0].lab", "unknown field"),  # not registered (yet)
    ],
)
def test_unknown_world_values_are_refused_with_file_line_and_field(
    extra: str, field: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(SCENARIO.format(extra=extra), "seam.yaml")
    error = caught.value
    assert (error.path, error.line, error.field) == ("seam.yaml", 4, field), str(error)
    assert message in error.message


# --- a condition registered outside the package -------------------------------------------

Measurement = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]
PCR16: Setting[str | None] = Setting(
    "lab", "pcr16", Measurement | None, None, "a measurement extended into the debug PCR after the Entra join"
)


def _extend_pcr16(life: DeviceLife, measurement: str) -> None:
    """The real mechanism: TPM2_PCR_Extend, then the PCR read back from the TPM."""
    start = time.perf_counter()
    digest = TPMT_HA(
        hashAlg=TPM2_ALG.SHA256, digest=TPMU_HA(sha256=hashlib.sha256(measurement.encode()).digest())
    )
    with TimedESAPI(life.changeable_tpm().tcti) as esapi:
        esapi.pcr_extend(ESYS_TR.PCR16, TPML_DIGEST_VALUES([digest]))
        _, _, values = esapi.pcr_read(TPML_PCR_SELECTION.parse("sha256:16"))
        seconds = esapi.seconds
    life.note(
        ClientStep(
            step="world.lab.pcr16",
            ok=True,
            detail=bytes(values[0]).hex(),
            seconds=time.perf_counter() - start,
        ),
        seconds,
    )


class DebugPCR(WorldCondition):
    name = "lab.pcr16"
    settings = (PCR16,)
    step = StepChange("lab_pcr16", Measurement | None, order=70)

    def after_join(self, life: DeviceLife) -> None:
        measurement = PCR16.planned(life.world)
        if measurement is not None:
            _extend_pcr16(life, measurement)

    def change(self, life: DeviceLife, value: Any) -> None:
        _extend_pcr16(life, value)


@pytest.fixture
def debug_pcr() -> Iterator[WorldCondition]:
    with REGISTRY.registered(DebugPCR()) as condition:
        yield condition
    assert "lab" not in scenario_models().group_settings.model_fields  # gone with it


STEPPED = """\
name: measured
groups:
  - name: measured
    lab: {pcr16: boot}
    expect: {status: Attested}
  - name: plain
    expect: {status: Attested}
steps:
  - world: {group: measured, lab_pcr16: later}
  - check_in: {groups: [measured]}
  - expect: {group: measured, status: Attested}
"""


def _pcr(*measurements: str) -> str:
    value = bytes(32)
    for measurement in measurements:
        value = hashlib.sha256(value + hashlib.sha256(measurement.encode()).digest()).digest()
    return value.hex()


def test_a_registered_condition_is_a_field_of_the_model_and_the_plan(debug_pcr: WorldCondition) -> None:
    scenario = parse_scenario(STEPPED, "measured.yaml")
    plans, _ = plan_fleet([scenario])
    assert {p.group: p.world["lab.pcr16"] for p in plans} == {"measured": "boot", "plain": None}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(STEPPED.replace("pcr16: boot", "pcr16: 'Boot Loader'"), "measured.yaml")
    assert (caught.value.line, caught.value.field) == (4, "groups[0].lab.pcr16")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(STEPPED.replace("lab_pcr16: later", "lab_pcr16: LATER"), "measured.yaml")
    assert caught.value.field == "steps[0].world.lab_pcr16"


@needs_swtpm
def test_a_registered_condition_acts_at_its_hooks_in_a_real_run(debug_pcr: WorldCondition) -> None:
    scenario = parse_scenario(STEPPED, "measured.yaml")
    result = run_fleet([scenario], RunOptions(workers=1))
    by_group = {d.group: d for d in result.devices}
    measured = by_group["measured"]
    assert measured.matched, [c.model_dump() for c in measured.checkpoints]
    steps = [s for s in measured.evidence.client_steps if s.step == "world.lab.pcr16"]
    # After the Entra join, then at the world step: the PCR as the device's own TPM holds it.
    assert [s.detail for s in steps] == [_pcr("boot"), _pcr("boot", "later")]
    names = [s.step for s in measured.evidence.client_steps]
    assert names.index("entra.token") < names.index("world.lab.pcr16") < names.index("enrollment.request")
    assert not any(s.step == "world.lab.pcr16" for s in by_group["plain"].evidence.client_steps)
    assert re.fullmatch(r"[0-9a-f]{64}", steps[0].detail)


class Rack(WorldCondition):
    """A group-level setting (no section), which only the plan carries."""

    name = "rack"
    settings = (Setting("", "rack", Measurement | None, None, "where the devices stand"),)


def test_a_registered_group_level_setting_takes_defaults_and_reaches_the_plan() -> None:
    text = "name: racks\ndefaults: {rack: r1}\ngroups:\n  - {name: a, expect: {status: Attested}}\n"
    text += "  - {name: b, rack: r2, expect: {status: Attested}}\n"
    with REGISTRY.registered(Rack()):
        plans, _ = plan_fleet([parse_scenario(text, "racks.yaml")])
        assert {p.group: p.world["rack"] for p in plans} == {"a": "r1", "b": "r2"}
        with pytest.raises(ScenarioError) as caught:
            parse_scenario(text.replace("rack: r2", "rack: R2"), "racks.yaml")
        assert (caught.value.line, caught.value.field) == (5, "groups[1].rack")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "racks.yaml")
    assert caught.value.field == "defaults.rack" and caught.value.message.startswith("unknown field")
