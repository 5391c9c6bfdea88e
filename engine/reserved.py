"""Names the engine reserves in slots and targets; flow authors cannot use them for their own."""

from __future__ import annotations

__all__ = ["BACK", "EMOJI_PREFIX", "LANGUAGE_SLOT", "RESERVED_SLOTS", "RETURN_SLOT", "ROWS_SLOT"]

# The customer's language; flows may set it (`set: {_language: en}`).
LANGUAGE_SLOT = "_language"
# The options a row provider returned, kept so the next message can pick one.
ROWS_SLOT = "_rows"
# The state a command left when it moved the conversation; `to: back` returns there.
RETURN_SLOT = "_return_state"
# Resolved id of the target `back`.
BACK = "@back"
# Prefix of choice keys for emoji-only aliases, which normalise to the empty string.
EMOJI_PREFIX = "emoji:"

RESERVED_SLOTS = frozenset({LANGUAGE_SLOT, ROWS_SLOT, RETURN_SLOT})
