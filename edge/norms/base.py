"""The one shape every norm has: settings from the profile, a state, a step, a deadline.

A norm never reads a clock or a device: it sees the facts before and after an input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge.clock import Instant
from edge.config import Section
from edge.effects import Request
from edge.inputs import Input
from edge.state import Facts

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
class Norm(Generic[S, P]):
    """A norm module's `NORM`: pure functions over its own state."""

    name: str
    settings: type[P]
    initial: Callable[[Instant], S]
    step: Callable[[Ctx[P], S], tuple[S, Sequence[Request]]]
    deadline: Callable[[S, Facts, P, Instant], float | None]
    public: Callable[[S, Instant], dict[str, Any] | None] = lambda state, now: None


NO_REQUESTS: tuple[Request, ...] = ()
