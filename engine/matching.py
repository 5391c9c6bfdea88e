"""Matching what a customer typed to one of the options on screen.

Beyond the exact key (number, id, title or alias, see `engine.text.normalize`), a
typed answer may carry courtesy words ("comprar por favor"), name the option by
position ("opción 2", "la primera") or have a small typo ("trasferencia"). Typos are
forgiven only for words of 5 letters or more and only when one option is close,
because "si" and "no" are one letter apart from many words.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Mapping

__all__ = ["emoji_key", "match_option", "option_number"]

_POSITIONS = {
    "uno": 1, "una": 1, "primera": 1, "primero": 1, "primer": 1,
    "dos": 2, "segunda": 2, "segundo": 2,
    "tres": 3, "tercera": 3, "tercero": 3, "tercer": 3,
    "cuatro": 4, "cuarta": 4, "cuarto": 4,
    "cinco": 5, "quinta": 5, "quinto": 5,
    "seis": 6, "sexta": 6, "sexto": 6,
    "siete": 7, "septima": 7, "septimo": 7,
    "ocho": 8, "octava": 8, "octavo": 8,
    "nueve": 9, "novena": 9, "noveno": 9,
    "diez": 10, "decima": 10, "decimo": 10,
    "one": 1, "first": 1, "two": 2, "second": 2, "three": 3, "third": 3,
    "four": 4, "fourth": 4, "five": 5, "fifth": 5,
}  # fmt: skip
# Words before a position that do not change it: "opción 2", "la 2", "número 2".
_POSITION_PREFIXES = frozenset({"opcion", "option", "la", "el", "numero", "number", "nro", "num"})
_COURTESY = (
    "por favor",
    "porfavor",
    "porfa",
    "porfis",
    "plis",
    "please",
    "pls",
    "xfa",
    "gracias",
    "thanks",
)
_MIN_TYPO_LENGTH = 5
_TYPO_CUTOFF = 0.85


def emoji_key(text: str) -> str:
    """Return the emojis of `text` without spaces, variation selectors or skin tones.

    Used for options whose alias is an emoji ("👍"), which `normalize` reduces to "".
    """
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace() or category in ("Mn", "Sk", "Cf") or "\ufe00" <= char <= "\ufe0f":
            continue
        kept.append(char)
    return "".join(kept)


def option_number(key: str) -> int | None:
    """Return the position named by `key` ("2", "opcion 2", "la segunda"), or None."""
    words = key.split()
    while len(words) > 1 and words[0] in _POSITION_PREFIXES:
        words = words[1:]
    if len(words) != 1:
        return None
    word = words[0]
    if word.isdigit():
        return int(word)
    return _POSITIONS.get(word)


def _strip_courtesy(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for phrase in _COURTESY:
            if key.endswith(" " + phrase):
                key, changed = key[: -len(phrase) - 1], True
            elif key.startswith(phrase + " "):
                key, changed = key[len(phrase) + 1 :], True
    return key


def match_option(key: str, keys: Mapping[str, str]) -> str | None:
    """Return the option id that `key` (a normalised answer) picks, or None.

    `keys` maps normalised option numbers, ids, titles and aliases to option ids.
    """
    if key in keys:
        return keys[key]
    key = _strip_courtesy(key)
    if key in keys:
        return keys[key]
    number = option_number(key)
    if number is not None:
        return keys.get(str(number))
    if len(key) < _MIN_TYPO_LENGTH:
        return None
    candidates = [
        candidate
        for candidate in keys
        if len(candidate) >= _MIN_TYPO_LENGTH and not candidate.isdigit()
    ]
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=_TYPO_CUTOFF)
    ids = {keys[candidate] for candidate in close}
    return ids.pop() if len(ids) == 1 else None
