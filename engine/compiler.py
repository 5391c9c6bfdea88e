"""Compile a checked `BotSpec` into one `transitions` HierarchicalMachine.

The machine is built once per bot and shared by every conversation: building a
machine and adding models are the expensive operations of `transitions`, so turns
restore a stored state with `set_state` on a pooled model and fire one trigger per
move. Phases are the machine's parent states and their states its children, joined
with "." so that the machine's state names are the flow's ids (`registro.esperando_cedula`).

Trigger names, one set per kind of move:

- `choose_<id>` for a static option, `row_chosen` for a dynamic row
- `media_received` for a photo or document a state accepts
- `input_valid`, `input_exhausted`
- `outcome_<name>` for an action's outcome, `proceed` for `next:` without input
- `event_<name>` for an external event
- `command_<name>` for a command; commands without a target are internal transitions
- `timeout` for an inactivity timeout that goes to a state
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transitions.extensions.nesting import HierarchicalMachine, NestedState

from engine.actions import ActionRegistry
from engine.checks import effective_commands, uses_buttons
from engine.matching import emoji_key
from engine.reserved import BACK, EMOJI_PREFIX, RETURN_SLOT
from engine.spec import (
    BotSpec,
    Branch,
    CommandSpec,
    ExitSpec,
    StateSpec,
    TimeoutSpec,
)
from engine.text import normalize

__all__ = ["CompiledBot", "CompiledState", "compile_bot"]

SEPARATOR = "."


class DottedState(NestedState):
    """Nested state joined with "." because flow ids contain underscores.

    HierarchicalMachine splits state names on `NestedState.separator`, "_" by default,
    which would cut `esperando_cedula` in two. The separator is set on this subclass,
    not on the library's class, which every machine in the process shares.
    """

    separator = SEPARATOR


class FlowMachine(HierarchicalMachine):
    state_cls = DottedState


class SessionModel:
    """A pooled model: the machine reads and writes `state`; guards read `slots`."""

    def __init__(self) -> None:
        self.state = ""
        self.slots: dict[str, Any] = {}


@dataclass
class CompiledState:
    """A state with everything a turn needs precomputed."""

    spec: StateSpec
    # Commands available here, by name and by each normalised word that triggers them.
    commands: dict[str, CommandSpec]
    command_words: dict[str, CommandSpec]
    # Normalised answer -> choice id, per language: ids, titles, aliases and numbers.
    choice_keys: dict[str, dict[str, str]]
    buttons: bool
    max_attempts: int
    exhausted: ExitSpec
    timeout: TimeoutSpec
    on_timeout: ExitSpec
    choice_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass
class CompiledBot:
    spec: BotSpec
    actions: ActionRegistry
    machine: FlowMachine
    states: dict[str, CompiledState]


Condition = Callable[[Any], bool]


def _guard_conditions(branch: Branch) -> list[Condition]:
    guard = branch.guard
    if guard is None:
        return []
    # A plain function of the event, not a model's bound method: the machine is shared
    # by every pooled model, and `send_event=True` hands each call its own model.
    return [lambda event: guard.test(event.model.slots)]


def _returns_to(state_id: str) -> Condition:
    return lambda event: event.model.slots.get(RETURN_SLOT) == state_id


@dataclass(frozen=True)
class _Targets:
    """Destinations of `to: back`: any waiting state, else the menu."""

    returns: tuple[str, ...]
    menu: str


def _branch_transitions(
    trigger: str, source: str, branches: list[Branch], targets: _Targets
) -> list[dict[str, Any]]:
    transitions = []
    for branch in branches:
        conditions = _guard_conditions(branch)
        if branch.target.state != BACK:
            transitions.append(
                {
                    "trigger": trigger,
                    "source": source,
                    "dest": branch.target.state,
                    "conditions": conditions,
                }
            )
            continue
        # One guarded transition per possible return state keeps `back` a real
        # transition of the machine; the menu catches a missing or stale slot.
        for state_id in targets.returns:
            transitions.append(
                {
                    "trigger": trigger,
                    "source": source,
                    "dest": state_id,
                    "conditions": [*conditions, _returns_to(state_id)],
                }
            )
        transitions.append(
            {"trigger": trigger, "source": source, "dest": targets.menu, "conditions": conditions}
        )
    return transitions


def _state_transitions(
    state: CompiledState, targets: _Targets, actions: ActionRegistry
) -> list[dict[str, Any]]:
    spec = state.spec
    source = spec.id
    transitions: list[dict[str, Any]] = []
    for choice in spec.choices:
        transitions += _branch_transitions(f"choose_{choice.id}", source, choice.branches, targets)
    if spec.rows:
        transitions += _branch_transitions("row_chosen", source, spec.rows.branches, targets)
    if spec.media:
        transitions += _branch_transitions("media_received", source, spec.media.branches, targets)
    if spec.input:
        transitions += _branch_transitions("input_valid", source, spec.next, targets)
    if spec.input or spec.choices or spec.rows:
        exhausted = state.exhausted.target.state if state.exhausted.target else targets.menu
        transitions.append({"trigger": "input_exhausted", "source": source, "dest": exhausted})
    if spec.action:
        action = actions.get(spec.action)
        declared = action.outcomes if action else frozenset()
        for outcome in sorted(declared | spec.outcomes.keys()):
            # Outcomes without their own `on:` branches take `next:`.
            branches = spec.outcomes.get(outcome, spec.next)
            transitions += _branch_transitions(f"outcome_{outcome}", source, branches, targets)
    if spec.next and not spec.input:
        transitions += _branch_transitions("proceed", source, spec.next, targets)
    for event, branches in spec.events.items():
        transitions += _branch_transitions(f"event_{event}", source, branches, targets)
    for name, command in state.commands.items():
        # A command without a target is an internal transition: no exit, no entry.
        command_target = command.exit.target.state if command.exit.target else None
        transitions.append({"trigger": f"command_{name}", "source": source, "dest": command_target})
    if state.on_timeout.target:
        transitions.append(
            {"trigger": "timeout", "source": source, "dest": state.on_timeout.target.state}
        )
    return transitions


def _choice_keys(spec: StateSpec, languages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    by_language: dict[str, dict[str, str]] = {}
    for language in languages:
        keys: dict[str, str] = {}
        for number, choice in enumerate(spec.choices, start=1):
            template = choice.title.templates.get(language) or next(
                iter(choice.title.templates.values())
            )
            candidates = [str(number), choice.id, *choice.aliases]
            if not template.fields:
                candidates.append(template.static_text)
            for candidate in candidates:
                key = normalize(candidate)
                keys.setdefault(key or EMOJI_PREFIX + emoji_key(candidate), choice.id)
        by_language[language] = keys
    return by_language


def _compile_state(bot: BotSpec, spec: StateSpec) -> CompiledState:
    phase = bot.phases[spec.phase]
    exhausted = spec.exhausted or ExitSpec()
    if not exhausted.say:
        exhausted = ExitSpec(
            bot.texts["attempts_exhausted"], exhausted.action, exhausted.target, exhausted.mark
        )
    if exhausted.target is None:
        exhausted = ExitSpec(exhausted.say, exhausted.action, bot.menu, exhausted.mark)

    if spec.timeout is not None:
        timeout = spec.timeout
    elif spec.events:
        # A state that waits for an external event is not reset by inactivity.
        timeout = TimeoutSpec(spec.mark)
    else:
        timeout = phase.timeout or bot.inactivity_timeout
    on_timeout = spec.on_timeout or phase.on_timeout or bot.on_timeout
    if not on_timeout.say:
        on_timeout = ExitSpec(
            bot.texts["timeout"], on_timeout.action, on_timeout.target, on_timeout.mark
        )

    commands = effective_commands(bot, spec)
    return CompiledState(
        spec=spec,
        commands=commands,
        command_words={word: command for command in commands.values() for word in command.words},
        choice_keys=_choice_keys(spec, bot.languages),
        buttons=uses_buttons(spec),
        max_attempts=spec.attempts or bot.attempts,
        exhausted=exhausted,
        timeout=timeout,
        on_timeout=on_timeout,
        choice_ids=frozenset(choice.id for choice in spec.choices),
    )


def _machine_states(bot: BotSpec) -> list[dict[str, Any]]:
    return [
        {"name": phase.name, "children": list(phase.states), "initial": phase.initial}
        for phase in bot.phases.values()
    ]


def compile_bot(bot: BotSpec, actions: ActionRegistry) -> CompiledBot:
    """Build the bot's machine and its per-state tables."""
    states = {state_id: _compile_state(bot, spec) for state_id, spec in bot.states.items()}
    transitions: list[dict[str, Any]] = []
    returns = tuple(state_id for state_id, state in states.items() if state.spec.waits)
    targets = _Targets(returns, bot.menu.state)
    for state in states.values():
        transitions += _state_transitions(state, targets, actions)
    machine = FlowMachine(
        model=None,
        states=_machine_states(bot),
        transitions=transitions,
        initial=bot.start.state.split(SEPARATOR)[0],
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )
    return CompiledBot(bot, actions, machine, states)
