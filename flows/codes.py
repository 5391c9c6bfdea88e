"""Codes that customers read, type and show at the door.

Both alphabets leave out characters that people confuse when reading them aloud or
on a screen: 0/O/Q, 1/I/L, 2/Z, 5/S, 6/G, 8/B. Codes come from `secrets`, so they
cannot be guessed from one another.
"""

from __future__ import annotations

import math
import secrets

__all__ = ["TICKET_CODE_BITS", "reservation_code", "ticket_code"]

ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
# Ten characters of a 22-letter alphabet: log2(22) * 10, about 44.6 bits.
TICKET_CODE_LENGTH = 10
TICKET_CODE_BITS = math.log2(len(ALPHABET)) * TICKET_CODE_LENGTH
RESERVATION_CODE_LENGTH = 6


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def ticket_code() -> str:
    """A ticket code such as "K7RMX-3PAFW": about 44.6 random bits, in two groups of five."""
    raw = _random(TICKET_CODE_LENGTH)
    return f"{raw[:5]}-{raw[5:]}"


def reservation_code() -> str:
    """A short code to name a reservation in messages and transfer descriptions."""
    return _random(RESERVATION_CODE_LENGTH)
