"""The one shape every norm has: settings from the profile, a state, a step, a deadline.

A norm never reads a clock or a device: it sees the facts before and after an input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from edge.base.schema import Section
from edge.core.clock import Instant
from edge.core.effects import Request
from edge.core.inputs import Input
from edge.core.state import Facts

S = TypeVar("S")
P = TypeVar("P", bound=Section)


@dataclass(frozen=True, slots=True)
class Ctx(Generic[P]):
    """What a norm sees for one input: facts before and after it, the time, its settings."""

    before: Facts
    after: Facts
    input: Input
    now: Instant
    settings: P

    def started(self, attr: str, value: object) -> bool:
        """A fact `attr.state`-like field became `value` with this input."""
        return _get(self.after, attr) == value and _get(self.before, attr) != value

    def ended(self, attr: str, value: object) -> bool:
        return _get(self.before, attr) == value and _get(self.after, attr) != value


def _get(facts: Facts, path: str) -> object:
    obj: object = facts
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def due(deadline: float | None, now: Instant) -> bool:
    return deadline is not None and now.mono >= deadline - 1e-9


def earliest(*deadlines: float | None) -> float | None:
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None


@dataclass(frozen=True)
class DayTally(Generic[S]):
    """What a day-scoped norm keeps across a restart of the service on the same day.

    `save` gives the day's tally as JSON-ready values of `fields` (name -> int, float, bool or
    str); `restore` merges a saved tally (already checked by `check_tally`) into the state of a
    run that has just started, returning the requests it implies (a flag to raise again).
    """

    fields: Mapping[str, type]
    save: Callable[[S], dict[str, Any]]
    restore: Callable[[S, Mapping[str, Any]], tuple[S, Sequence[Request]]]

    @classmethod
    def adding(cls, fields: Mapping[str, type]) -> DayTally[Any]:
        """Counters kept as state fields of these names: saved as they are, restored by adding
        them to what this run counted (booleans: either), once (the state's `restored` flag)."""

        def save(state: Any) -> dict[str, Any]:
            return {name: getattr(state, name) for name in fields}

        def restore(state: Any, saved: Mapping[str, Any]) -> tuple[Any, Sequence[Request]]:
            if state.restored:
                return state, ()
            added = {
                name: (getattr(state, name) or saved[name])
                if kind is bool
                else getattr(state, name) + saved[name]
                for name, kind in fields.items()
            }
            return replace(state, **added, restored=True), ()

        return cls(fields=fields, save=save, restore=restore)


_EXPECTED = {int: "an integer >= 0", float: "a number >= 0", bool: "true or false", str: "a string"}


def _tally_value(kind: type, value: object) -> object:
    """`value` as a `kind` tally field, or None when it is not one."""
    if kind is bool or kind is str:
        return value if isinstance(value, kind) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind is int and not isinstance(value, int):
        return None
    if not (math.isfinite(value) and value >= 0):
        return None
    return kind(value)


def check_tally(norm: str, fields: Mapping[str, type], data: object) -> dict[str, Any]:
    """A saved tally as its fields, or ValueError naming the field and what was expected."""
    if not isinstance(data, dict):
        raise ValueError(f"{norm}: expected an object, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for name, kind in fields.items():
        value = _tally_value(kind, data.get(name))
        if value is None:
            got = data.get(name)
            raise ValueError(f"{norm}.{name}: expected {_EXPECTED[kind]}, got {got!r}")
        out[name] = value
    return out


@dataclass(frozen=True)
class Norm(Generic[S, P]):
    """A norm module's `NORM`: pure functions over its own state."""

    name: str
    settings: type[P]
    initial: Callable[[Instant], S]
    step: Callable[[Ctx[P], S], tuple[S, Sequence[Request]]]
    deadline: Callable[[S, Facts, P, Instant], float | None]
    public: Callable[[S, Instant], dict[str, Any] | None] = lambda state, now: None
    day: DayTally[S] | None = None  # the day's tally that survives a restart, if any


NO_REQUESTS: tuple[Request, ...] = ()
