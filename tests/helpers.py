"""Small helpers shared by the tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine import OutgoingMessage
from engine.testing import message_text


def write_flows(directory: Path, files: dict[str, str]) -> str:
    """Write flow files (dedented) into `directory` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return str(directory)


def joined(messages: list[OutgoingMessage]) -> str:
    """All the text of `messages`, one message per paragraph."""
    return "\n\n".join(message_text(message) for message in messages)
