"""Text normalisation for matching what customers type.

Customers type answers to buttons by hand, with or without accents, in any case, with
emojis and punctuation around them, so every comparison between customer text and a
choice, a command or a keyword goes through `normalize`.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_INPUT_LENGTH", "clean_input", "normalize"]

# WhatsApp text messages are at most 4096 characters. Longer input only comes from
# tests or a misbehaving client, and is cut here so that no validator or regular
# expression ever runs over an unbounded string.
MAX_INPUT_LENGTH = 4096

# Separators that customers use between words of an id they type ("mis_tickets").
_WORD_SEPARATORS = frozenset("_-/")


def clean_input(text: str) -> str:
    """Return customer text without control and format characters, trimmed.

    Keeps letters, digits, punctuation, symbols and single spaces, so validators see
    what the customer meant to write. Right-to-left marks, zero-width joiners and
    similar invisible characters are removed.
    """
    text = text[:MAX_INPUT_LENGTH]
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace():
            kept.append(" ")
        elif category[0] == "C":
            continue
        else:
            kept.append(char)
    return " ".join("".join(kept).split())


def normalize(text: str) -> str:
    """Return the comparison key of `text`.

    The key is lower case, without accents, emojis, punctuation or surrounding and
    repeated spaces: "  ¡Sí! 👍 " and "si" have the same key. Digits are kept, so "1."
    becomes "1". The result is empty for text made only of emojis or punctuation.
    """
    decomposed = unicodedata.normalize("NFKD", text[:MAX_INPUT_LENGTH])
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category[0] in "LN":
            kept.append(char)
        elif char.isspace() or char in _WORD_SEPARATORS:
            kept.append(" ")
        # Marks (accents), punctuation, symbols (emojis) and control characters go.
    return " ".join("".join(kept).casefold().split())
