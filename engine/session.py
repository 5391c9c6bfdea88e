"""The per-customer conversation record that storage keeps between turns."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.messages import OutgoingMessage

__all__ = ["Session", "Turn"]


@dataclass
class Session:
    """Where one phone number's conversation stands.

    `state` is a full state id (`registro.esperando_cedula`), or None when no
    conversation is open: the next message starts one. `deadline` is when the
    conversation times out for inactivity, None when it never does. `slots` hold
    JSON-compatible values only, because storage serialises them.
    """

    phone: str
    state: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    deadline: datetime | None = None
    flow_version: str = ""
    updated_at: datetime | None = None

    def copy(self) -> Session:
        return Session(
            self.phone,
            self.state,
            copy.deepcopy(self.slots),
            self.attempts,
            self.deadline,
            self.flow_version,
            self.updated_at,
        )


@dataclass
class Turn:
    """The result of one turn: the new session, the replies in order, and the states entered."""

    session: Session
    messages: list[OutgoingMessage]
    states: list[str]
    # False when the inbound event meant nothing in the current state (an external
    # event the state does not wait for); such a turn sends nothing.
    handled: bool = True
