"""Actions: the Python functions a flow calls by name.

An action is an async function that receives an `ActionContext` and returns the name
of an outcome (or None when it declares none). The flow branches on that outcome.
Actions do the turn's I/O, such as reading a customer or holding tickets, through
`context.services`, which the caller hands in: the server and the console chat pass
the turn's open database transaction, so everything an action writes commits or
rolls back together with the new session state.

Row providers are actions that return the options of a dynamic choice list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.events import ExternalEvent, InboundEvent
from engine.messages import OutgoingMessage

__all__ = [
    "Action",
    "ActionContext",
    "ActionRegistry",
    "HookContext",
    "Notification",
    "Option",
    "SettingsProblem",
]


@dataclass(frozen=True)
class Option:
    """A row of a dynamic choice list; choosing it stores `value` (default `id`) in the slot."""

    id: str
    title: str
    description: str | None = None
    value: Any = None
    section: str | None = None


@dataclass
class ActionContext:
    """The data an action may read and change during one turn."""

    phone: str
    state: str
    slots: dict[str, Any]
    now: datetime
    event: InboundEvent | None
    services: Any
    settings: dict[str, Any]
    language: str
    replies: list[OutgoingMessage] = field(default_factory=list)

    def reply(self, message: OutgoingMessage) -> None:
        """Queue a message that the action builds itself, sent in order with the rest."""
        self.replies.append(message)


@dataclass(frozen=True)
class SettingsProblem:
    """A problem in bot.yaml's `settings`; `path` leads to the value, as ("catalogo", 0, "precio")."""

    path: tuple[str | int, ...]
    message: str


@dataclass(frozen=True)
class HookContext:
    """What startup and periodic hooks receive: the caller's services, settings and clock."""

    services: Any
    settings: dict[str, Any]
    now: datetime


@dataclass(frozen=True)
class Notification:
    """Something to tell a customer outside a turn of theirs, such as a payment that cleared.

    `event` goes to the customer's conversation first. When the conversation does not
    wait for it (the customer is elsewhere, or has none open), `messages` are sent
    instead, so the customer hears of it either way.
    """

    phone: str
    event: ExternalEvent | None = None
    messages: tuple[OutgoingMessage, ...] = ()
    # Slot values the conversation must have for `event` to go to it, such as the
    # code of the reservation the news is about.
    when: tuple[tuple[str, Any], ...] = ()


ActionFunction = Callable[[ActionContext], Awaitable[str | None]]
RowsFunction = Callable[[ActionContext], Awaitable[list[Option]]]
SettingsCheck = Callable[[dict[str, Any]], list[SettingsProblem]]
StartupHook = Callable[[HookContext], Awaitable[None]]
PeriodicHook = Callable[[HookContext], Awaitable[list[Notification]]]


@dataclass(frozen=True)
class Action:
    """A registered action and what the loader checks flows against."""

    name: str
    function: ActionFunction | RowsFunction
    outcomes: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()
    provides_rows: bool = False


class ActionRegistry:
    """Actions by name, filled with the `action` and `rows` decorators."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._settings_checks: list[SettingsCheck] = []
        self._startup_hooks: list[StartupHook] = []
        self._periodic_hooks: list[PeriodicHook] = []

    def action(
        self,
        name: str | None = None,
        *,
        outcomes: tuple[str, ...] | list[str] = (),
        sets: tuple[str, ...] | list[str] = (),
    ) -> Callable[[ActionFunction], ActionFunction]:
        """Register an action; `outcomes` lists what it may return, `sets` the slots it writes."""

        def register(function: ActionFunction) -> ActionFunction:
            self._add(
                Action(name or function.__name__, function, frozenset(outcomes), frozenset(sets))
            )
            return function

        return register

    def rows(
        self, name: str | None = None, *, sets: tuple[str, ...] | list[str] = ()
    ) -> Callable[[RowsFunction], RowsFunction]:
        """Register a row provider for a dynamic choice list."""

        def register(function: RowsFunction) -> RowsFunction:
            action = Action(name or function.__name__, function, frozenset(), frozenset(sets), True)
            self._add(action)
            return function

        return register

    def settings_check(self, function: SettingsCheck) -> SettingsCheck:
        """Register a check of bot.yaml's `settings`, run by the loader (and `check`)."""
        self._settings_checks.append(function)
        return function

    def check_settings(self, settings: dict[str, Any]) -> list[SettingsProblem]:
        problems: list[SettingsProblem] = []
        for check in self._settings_checks:
            problems.extend(check(settings))
        return problems

    def on_start(self, function: StartupHook) -> StartupHook:
        """Register a hook run once when a chat or server starts, in a transaction."""
        self._startup_hooks.append(function)
        return function

    def periodic(self, function: PeriodicHook) -> PeriodicHook:
        """Register a hook run by the server's sweeper (and the chat's /wait), in a transaction.

        It returns the notifications to deliver, such as expired reservations.
        """
        self._periodic_hooks.append(function)
        return function

    @property
    def startup_hooks(self) -> list[StartupHook]:
        return list(self._startup_hooks)

    @property
    def periodic_hooks(self) -> list[PeriodicHook]:
        return list(self._periodic_hooks)

    def _add(self, action: Action) -> None:
        if action.name in self._actions:
            raise ValueError(f"an action named {action.name!r} is already registered; rename one")
        self._actions[action.name] = action

    def get(self, name: str) -> Action | None:
        return self._actions.get(name)

    def names(self) -> list[str]:
        return sorted(self._actions)

    def __iter__(self) -> Iterator[Action]:
        return iter(self._actions.values())
