"""Exceptions raised by the engine.

EngineError is the base of everything the engine raises on purpose:

- FlowError: the flow files are invalid. It carries every problem found, each with
  the file, line and column, so a flow author can fix them all in one pass.
- FlowRuntimeError: a loaded bot reached a situation the load-time checks could not
  rule out, such as an action returning an outcome it never declared.
- ActionError: an action failed. The runtime wraps the original exception so the
  caller can roll back the turn's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ActionError",
    "EngineError",
    "FlowError",
    "FlowProblem",
    "FlowRuntimeError",
]


class EngineError(Exception):
    """Base class of the engine's exceptions."""


@dataclass(frozen=True)
class FlowProblem:
    """One problem in a flow file, at a 1-based line and column."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: error: {self.message}"


class FlowError(EngineError):
    """The flow files are invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.column))
        super().__init__("\n".join(str(problem) for problem in self.problems))


class FlowRuntimeError(EngineError):
    """A loaded bot did something its flow files do not allow."""


class ActionError(EngineError):
    """An action raised an exception; the turn must not be committed."""

    def __init__(self, action: str, state: str) -> None:
        self.action = action
        self.state = state
        super().__init__(f"action {action!r} failed in state {state}")
