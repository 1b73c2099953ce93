"""The world conditions by name: one registry that the scenario model, the device plan, the
helper services and the device's life all read, so that a condition is added in one place.

A condition is a class registered with `@world_condition`. It declares the scenario fields it
owns (`settings`, and `step` for a `world:` step), and overrides only the hooks where it acts.
Conditions carry mechanisms only: what they do to the TPM, the network or the client, never
which status the device is expected to end up with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from ..errors import HarnessError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..client import ClientBehaviour
    from ..scenario import ResolvedGroup
    from ..tpm import Manufactured
    from ._life import DeviceLife, FactoryOrder, NetworkPath
    from ._plan import PlanDraft

T = TypeVar("T")

# The value of every registered setting of one device, by path ('tpm.state'), as planned.
WorldValues = Mapping[str, object]


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One scenario field a condition owns: `<section>.<name>`, or `<name>` on the group itself."""

    section: str  # 'tpm', 'client', 'entra', 'network', 'history', a new one, or '' for the group
    name: str
    annotation: Any  # the pydantic type of the field (a Literal, bool, an Annotated int...)
    default: T
    description: str = ""

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    def of(self, group: object) -> T:
        """The value in a scenario group (a resolved one: every setting is decided)."""
        return self.in_section(getattr(group, self.section) if self.section else group)

    def in_section(self, section: object) -> T:
        """The value in the section's own model (what check_section is given)."""
        return cast(T, getattr(section, self.name))

    def planned(self, world: WorldValues) -> T:
        """The value in a device's plan (or its world as changed by steps since)."""
        return cast(T, world.get(self.path, self.default))


@dataclass(frozen=True)
class StepChange(Generic[T]):
    """A key of a `world:` step that a condition owns; `order` places it among a step's changes."""

    name: str
    annotation: Any  # its type, optional: 'X | None' (or bool with default False)
    order: int
    description: str = ""
    default: object = None
    # A change after which the device enrolls anew: its check-in schedule starts again.
    new_enrollment: bool = False


class WorldCondition:
    """A fact of the world: its scenario fields, its share of the plan, and where it acts.

    Every hook runs for every device; a condition whose value is the default does nothing.
    """

    name: ClassVar[str]  # 'tpm.state', shown in errors and listings
    settings: ClassVar[tuple[Setting[Any], ...]] = ()
    step: ClassVar[StepChange[Any] | None] = None

    # --- the scenario ------------------------------------------------------------------

    def check_section(self, section: BaseModel) -> str | None:
        """A conflict inside this condition's section (reported at the section's field)."""
        return None

    def check_group(self, group: ResolvedGroup) -> str | None:
        """A conflict with the rest of a resolved group (reported at the group)."""
        return None

    # --- the plan and what the run starts ----------------------------------------------

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        """Add to the device's plan (client behaviour, the factory's TPM plan)."""

    def helpers(self, world: WorldValues) -> Iterable[str]:
        """The helper services (by registered name) a device with these values needs."""
        return ()

    # --- the device's life, in order --------------------------------------------------

    def factory_order(self, life: DeviceLife, order: FactoryOrder) -> None:
        """Before the TPM is manufactured: change what the factory writes."""

    def factory_made(self, life: DeviceLife, order: FactoryOrder, made: Manufactured) -> None:
        """Right after manufacturing, still at the factory (e.g. publish the EK certificate)."""

    def after_manufacture(self, life: DeviceLife) -> None:
        """The TPM as it left the factory, before Windows runs (e.g. an earlier enrollment)."""

    def before_join(self, life: DeviceLife) -> None:
        """Windows is installed and its client exists; the Entra join comes next (out of box)."""

    def after_join(self, life: DeviceLife) -> None:
        """After the Entra join, before the first enrollment (e.g. the TPM's later state)."""

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        """Shape the device's path to the services; runs again whenever the world changes."""

    def reinstalled(self, behaviour: ClientBehaviour) -> ClientBehaviour:
        """A new Windows install (a wipe): what of this condition the new install keeps."""
        return behaviour

    def change(self, life: DeviceLife, value: Any) -> None:
        """This condition's key of a `world:` step, with its value."""


class ConditionRegistry:
    """The registered conditions, in registration order (which orders their hooks)."""

    def __init__(self) -> None:
        self._conditions: dict[str, WorldCondition] = {}
        self.generation = 0  # bumped on every change, so that derived models are rebuilt

    def register(self, condition: WorldCondition) -> WorldCondition:
        if condition.name in self._conditions:
            raise HarnessError(f"the world condition {condition.name!r} is registered twice")
        taken = {s.path: c.name for c in self._conditions.values() for s in c.settings}
        for setting in condition.settings:
            if setting.path in taken:
                raise HarnessError(f"{setting.path} is already a setting of {taken[setting.path]}")
        step = condition.step
        if step is not None and any(s.name == step.name for s in self.step_changes()):
            raise HarnessError(f"the world step key {step.name!r} is already registered")
        self._conditions[condition.name] = condition
        self.generation += 1
        return condition

    def unregister(self, name: str) -> None:
        del self._conditions[name]
        self.generation += 1

    @contextmanager
    def registered(self, condition: WorldCondition) -> Iterator[WorldCondition]:
        """A condition registered for the block only (tests, experiments)."""
        self.register(condition)
        try:
            yield condition
        finally:
            self.unregister(condition.name)

    def conditions(self) -> list[WorldCondition]:
        return list(self._conditions.values())

    def settings(self) -> list[Setting[Any]]:
        return [s for c in self._conditions.values() for s in c.settings]

    def sections(self) -> list[str]:
        """The group's sections, in the order their first setting was registered."""
        return list(dict.fromkeys(s.section for s in self.settings() if s.section))

    def step_changes(self) -> list[StepChange[Any]]:
        steps = [c.step for c in self._conditions.values() if c.step is not None]
        return sorted(steps, key=lambda s: s.order)

    def for_step(self, name: str) -> WorldCondition:
        for condition in self._conditions.values():
            if condition.step is not None and condition.step.name == name:
                return condition
        raise HarnessError(f"no world condition owns the step key {name!r}")

    def defaults(self) -> dict[str, object]:
        return {s.path: s.default for s in self.settings()}


REGISTRY = ConditionRegistry()

C = TypeVar("C", bound=type[WorldCondition])


def world_condition(cls: C) -> C:
    """Register a condition class (one instance) in REGISTRY; use as a class decorator."""
    REGISTRY.register(cls())
    return cls
