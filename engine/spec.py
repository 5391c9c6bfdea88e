"""The loaded form of a bot's flow files, before compilation.

The loader fills these classes from YAML, the checks walk them, and the compiler
turns them into one `transitions` machine. Every object keeps the `Mark` of the YAML
that defined it, so later checks can still point at a line and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from engine.source import Mark
from engine.templates import Template
from engine.validators import Validator

__all__ = [
    "BotSpec",
    "Branch",
    "ChoiceSpec",
    "CommandSpec",
    "ExitSpec",
    "Guard",
    "InputSpec",
    "MediaSpec",
    "MessageSpec",
    "PhaseSpec",
    "RowsSpec",
    "StateSpec",
    "Target",
    "Text",
    "TimeoutSpec",
]


@dataclass(frozen=True)
class Text:
    """A template given per language; `templates` always has the default language."""

    templates: Mapping[str, Template]
    mark: Mark

    def render(
        self, language: str, default: str, slots: Mapping[str, Any], timezone: tzinfo
    ) -> str:
        template = self.templates.get(language) or self.templates[default]
        return template.render(slots, timezone)

    def all_templates(self) -> list[Template]:
        return list(self.templates.values())


@dataclass(frozen=True)
class MessageSpec:
    """A message of a state: text, or an image with an optional caption."""

    mark: Mark
    body: Text | None = None
    image: Text | None = None
    header: Text | None = None
    footer: Text | None = None

    def texts(self) -> list[Text]:
        return [text for text in (self.body, self.image, self.header, self.footer) if text]


@dataclass
class Target:
    """A state named in a flow file; `state` is the resolved full id (`phase.state`)."""

    raw: str
    mark: Mark
    # The phase whose file names the target: a bare name there means a state of it.
    phase: str | None = None
    state: str = ""


_COMPARISON = re.compile(
    r"^\s*(?P<slot>[a-z_][a-z0-9_]*)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?)\s*$"
)
_TRUTH = re.compile(r"^\s*(?P<negated>not\s+)?(?P<slot>[a-z_][a-z0-9_]*)\s*$")


@dataclass(frozen=True)
class Guard:
    """A condition on slots: `slot`, `not slot`, or `slot <op> literal`."""

    source: str
    slot: str
    operator: str
    value: Any
    mark: Mark

    @classmethod
    def parse(cls, source: str, mark: Mark) -> Guard:
        """Parse a guard; raise ValueError with the fix when it is malformed."""
        truth = _TRUTH.match(source)
        if truth:
            operator = "falsy" if truth.group("negated") else "truthy"
            return cls(source, truth.group("slot"), operator, None, mark)
        comparison = _COMPARISON.match(source)
        if comparison is None:
            raise ValueError(
                f"invalid condition {source!r}, write `slot`, `not slot` or "
                "`slot == value` (also !=, <, <=, >, >=)"
            )
        value = _parse_literal(comparison.group("value"), source)
        operator = comparison.group("op")
        if operator in ("<", "<=", ">", ">=") and (
            not isinstance(value, int | float) or isinstance(value, bool)
        ):
            raise ValueError(
                f"{operator} in {source!r} needs a number on the right, as in `cantidad > 5`"
            )
        return cls(source, comparison.group("slot"), operator, value, mark)

    def test(self, slots: Mapping[str, Any]) -> bool:
        actual = slots.get(self.slot)
        if self.operator == "truthy":
            return bool(actual)
        if self.operator == "falsy":
            return not actual
        if self.operator == "==":
            return bool(actual == self.value)
        if self.operator == "!=":
            return bool(actual != self.value)
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return False
        return bool(
            {
                "<": actual < self.value,
                "<=": actual <= self.value,
                ">": actual > self.value,
                ">=": actual >= self.value,
            }[self.operator]
        )


def _parse_literal(text: str, condition: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    for number_type in (int, float):
        try:
            return number_type(text)
        except ValueError:
            continue
    raise ValueError(
        f"invalid value {text!r} in condition {condition!r}, quote texts ('tarjeta'), "
        "or use a number, true, false or null"
    )


@dataclass
class Branch:
    """One way out of a state: go to `target` when `guard` holds (always when None)."""

    target: Target
    guard: Guard | None = None


@dataclass
class ChoiceSpec:
    id: str
    title: Text
    branches: list[Branch]
    mark: Mark
    description: Text | None = None
    section: Text | None = None
    aliases: tuple[str, ...] = ()
    assignments: dict[str, Any] = field(default_factory=dict)


@dataclass
class RowsSpec:
    """Choice rows produced at run time by an action (such as the events on sale)."""

    action: str
    slot: str
    branches: list[Branch]
    mark: Mark


@dataclass
class MediaSpec:
    """What a state does with a photo or document: run `action`, send `say`, then branch."""

    kinds: frozenset[str]
    branches: list[Branch]
    mark: Mark
    action: str | None = None
    say: list[MessageSpec] = field(default_factory=list)


@dataclass
class InputSpec:
    type: str
    slot: str
    validator: Validator
    options: dict[str, Any]
    mark: Mark


@dataclass
class ExitSpec:
    """What happens on a command, a timeout or when attempts run out.

    Runs `action`, sends `say`, then goes to `target`. A command without a target
    stays in the current state and asks its question again; a timeout without a
    target closes the conversation.
    """

    say: list[MessageSpec] = field(default_factory=list)
    action: str | None = None
    target: Target | None = None
    mark: Mark | None = None


@dataclass
class CommandSpec:
    name: str
    words: tuple[str, ...]
    exit: ExitSpec
    mark: Mark
    help: bool = False
    clear_slots: bool = False


@dataclass
class TimeoutSpec:
    """An inactivity limit: `seconds`, none at all, or until the time in `until_slot`."""

    mark: Mark
    seconds: int | None = None
    until_slot: str | None = None

    @property
    def disabled(self) -> bool:
        return self.seconds is None and self.until_slot is None


@dataclass
class StateSpec:
    id: str
    phase: str
    name: str
    mark: Mark
    say: list[MessageSpec] = field(default_factory=list)
    help: list[MessageSpec] = field(default_factory=list)
    assignments: dict[str, Any] = field(default_factory=dict)
    action: str | None = None
    action_mark: Mark | None = None
    outcomes: dict[str, list[Branch]] = field(default_factory=dict)
    outcome_marks: dict[str, Mark] = field(default_factory=dict)
    input: InputSpec | None = None
    media: MediaSpec | None = None
    choices: list[ChoiceSpec] = field(default_factory=list)
    rows: RowsSpec | None = None
    list_button: Text | None = None
    retry: dict[str, list[MessageSpec]] = field(default_factory=dict)
    retry_marks: dict[str, Mark] = field(default_factory=dict)
    attempts: int | None = None
    exhausted: ExitSpec | None = None
    next: list[Branch] = field(default_factory=list)
    events: dict[str, list[Branch]] = field(default_factory=dict)
    timeout: TimeoutSpec | None = None
    on_timeout: ExitSpec | None = None
    commands: dict[str, CommandSpec | None] = field(default_factory=dict)

    @property
    def waits(self) -> bool:
        """Whether the state waits for the customer or an external event."""
        return bool(self.input or self.choices or self.rows or self.events or self.media)

    def decision_branches(self) -> list[Branch]:
        """Branches the flow decides between: next, options, rows, media, outcomes, events."""
        result = list(self.next)
        for choice in self.choices:
            result.extend(choice.branches)
        if self.rows:
            result.extend(self.rows.branches)
        if self.media:
            result.extend(self.media.branches)
        for branches in (*self.outcomes.values(), *self.events.values()):
            result.extend(branches)
        return result

    def branches(self) -> list[Branch]:
        """Every branch leaving the state, commands and the bot-wide timeout excluded."""
        result = self.decision_branches()
        if self.exhausted and self.exhausted.target:
            result.append(Branch(self.exhausted.target))
        if self.on_timeout and self.on_timeout.target:
            result.append(Branch(self.on_timeout.target))
        return result


@dataclass
class PhaseSpec:
    name: str
    path: str
    mark: Mark
    initial: str = ""
    initial_mark: Mark | None = None
    states: dict[str, StateSpec] = field(default_factory=dict)
    timeout: TimeoutSpec | None = None
    on_timeout: ExitSpec | None = None
    commands: dict[str, CommandSpec | None] = field(default_factory=dict)


@dataclass
class BotSpec:
    name: str
    mark: Mark
    language: str
    languages: tuple[str, ...]
    timezone: tzinfo
    start: Target
    menu: Target
    inactivity_timeout: TimeoutSpec
    on_timeout: ExitSpec
    attempts: int
    actions_module: str | None
    # Approved template {"name", "language"} for messages outside the 24-hour window.
    notification_template: dict[str, str] | None
    greetings: tuple[str, ...]
    commands: dict[str, CommandSpec]
    texts: dict[str, list[MessageSpec]]
    settings: dict[str, Any]
    slots: dict[str, Any]
    phases: dict[str, PhaseSpec] = field(default_factory=dict)
    version: str = ""

    @property
    def states(self) -> dict[str, StateSpec]:
        return {
            state.id: state for phase in self.phases.values() for state in phase.states.values()
        }
