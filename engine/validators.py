"""Input validators: turn what a customer typed into a slot value, or say why not.

A validator is a function `(text, options, context) -> Valid | Invalid`. `Invalid`
carries a short reason code (`check_digit`, `too_young`, ...) that flow files map to
re-prompt messages, so each mistake gets its own explanation. Validators never raise
on customer input: any text, however long or strange, gives Valid or Invalid.

Built-in validators are registered in `BUILTIN_VALIDATORS`; developers add their own
to a `ValidatorRegistry` with `register`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from enum import Enum
from typing import Any

from engine.text import normalize

__all__ = [
    "BUILTIN_VALIDATORS",
    "Invalid",
    "OptionKind",
    "Valid",
    "ValidationContext",
    "Validator",
    "ValidatorRegistry",
    "cedula_check_digit",
]

SlotValue = str | int | float | bool | None | list[Any] | dict[str, Any]


@dataclass(frozen=True)
class Valid:
    """Accepted input, converted to the value stored in the slot."""

    value: SlotValue


@dataclass(frozen=True)
class Invalid:
    """Rejected input; `reason` selects the re-prompt message."""

    reason: str


@dataclass(frozen=True)
class ValidationContext:
    """The context of a validation besides the text: the clock and the bot's time zone."""

    now: datetime
    timezone: tzinfo

    @property
    def today(self) -> date:
        return self.now.astimezone(self.timezone).date()


class OptionKind(Enum):
    """Types of validator options that flow files may set."""

    INTEGER = "an integer"
    # An integer, or a slot reference such as "{max_cantidad}" resolved at each turn.
    INTEGER_OR_SLOT = "an integer or a slot reference like {slot}"
    TEXT = "a text"
    REGEX = "a regular expression"
    BOOLEAN = "true or false"


ValidatorFunction = Callable[[str, Mapping[str, Any], ValidationContext], Valid | Invalid]


@dataclass(frozen=True)
class Validator:
    """A named validator, the options it takes and the reasons it can reject with."""

    name: str
    function: ValidatorFunction
    options: Mapping[str, OptionKind] = field(default_factory=dict)
    reasons: frozenset[str] = frozenset()
    required_options: frozenset[str] = frozenset()

    def __call__(
        self, text: str, options: Mapping[str, Any], context: ValidationContext
    ) -> Valid | Invalid:
        return self.function(text, options, context)


class ValidatorRegistry:
    """Validators by name. Copy the built-in registry to add your own."""

    def __init__(self, validators: Mapping[str, Validator] | None = None) -> None:
        self._validators: dict[str, Validator] = dict(validators or {})

    def register(
        self,
        name: str,
        function: ValidatorFunction,
        *,
        options: Mapping[str, OptionKind] | None = None,
        reasons: frozenset[str] | set[str] = frozenset(),
        required_options: frozenset[str] | set[str] = frozenset(),
    ) -> Validator:
        if name in self._validators:
            raise ValueError(f"a validator named {name!r} is already registered; pick another name")
        validator = Validator(
            name, function, dict(options or {}), frozenset(reasons), frozenset(required_options)
        )
        self._validators[name] = validator
        return validator

    def copy(self) -> ValidatorRegistry:
        return ValidatorRegistry(self._validators)

    def get(self, name: str) -> Validator | None:
        return self._validators.get(name)

    def names(self) -> list[str]:
        return sorted(self._validators)

    def __iter__(self) -> Iterator[Validator]:
        return iter(self._validators.values())


# --- text -----------------------------------------------------------------------


def _validate_text(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    min_length = int(options.get("min_length", 1))
    max_length = int(options.get("max_length", 1000))
    if not text:
        return Invalid("empty")
    if len(text) < min_length:
        return Invalid("too_short")
    if len(text) > max_length:
        return Invalid("too_long")
    return Valid(text)


# --- numbers --------------------------------------------------------------------

_NUMBER_WORDS = {
    "cero": 0,
    "un": 1,
    "uno": 1,
    "una": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
    "seis": 6,
    "siete": 7,
    "ocho": 8,
    "nueve": 9,
    "diez": 10,
    "once": 11,
    "doce": 12,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_INTEGER = re.compile(r"(?<![\d.,])[-+]?\d{1,9}(?![\d.,]\d)")


def _find_integer(text: str) -> int | None:
    """Return the one integer in `text` ("2", "quiero 2", "dos"), or None.

    Text with two different numbers ("2 o 3") is ambiguous and gives None.
    """
    found = {int(match.group()) for match in _INTEGER.finditer(text)}
    for word in normalize(text).split():
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
    return found.pop() if len(found) == 1 else None


def _validate_integer(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    number = _find_integer(text)
    if number is None:
        return Invalid("not_a_number")
    if "min" in options and number < int(options["min"]):
        return Invalid("too_small")
    if "max" in options and number > int(options["max"]):
        return Invalid("too_large")
    return Valid(number)


_MONEY = re.compile(r"^(?:usd|us\$|\$)?\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*(?:usd|dolares|\$)?$")


def _validate_money(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    """Accept "$4", "4.50", "4,5", "USD 4.00"; store integer cents."""
    match = _MONEY.match(text.strip().lower().replace("dólares", "dolares"))
    if match is None:
        return Invalid("invalid")
    cents = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if "min" in options and cents < int(options["min"]):
        return Invalid("too_small")
    if "max" in options and cents > int(options["max"]):
        return Invalid("too_large")
    return Valid(cents)


_YES = frozenset(
    {
        "si",
        "s",
        "sip",
        "claro",
        "dale",
        "ok",
        "okay",
        "de una",
        "yes",
        "y",
        "correcto",
        "listo",
        "si claro",
        "bueno",
    }
)
_NO = frozenset({"no", "n", "nop", "nope", "nel", "no gracias"})


def _validate_yes_no(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    key = normalize(text)
    if key in _YES:
        return Valid(True)
    if key in _NO:
        return Valid(False)
    return Invalid("unknown")


# --- Ecuadorian cédula ------------------------------------------------------------

# Province codes 01 to 24, and 30 for Ecuadorians registered abroad.
_CEDULA_PROVINCES = frozenset([*range(1, 25), 30])
_CEDULA_COEFFICIENTS = (2, 1, 2, 1, 2, 1, 2, 1, 2)


def cedula_check_digit(first_nine: str) -> int:
    """Return the modulo-10 check digit of the first nine digits of a cédula.

    Digits in odd positions are doubled (subtracting 9 when the product exceeds 9);
    the check digit brings the sum up to the next multiple of 10.
    """
    total = 0
    for digit, coefficient in zip(first_nine, _CEDULA_COEFFICIENTS, strict=True):
        product = int(digit) * coefficient
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


def _validate_cedula(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    digits = re.sub(r"[\s.\-]", "", text)
    if not digits.isascii() or not digits.isdigit():
        return Invalid("not_digits")
    if len(digits) != 10:
        return Invalid("length")
    if int(digits[:2]) not in _CEDULA_PROVINCES:
        return Invalid("province")
    if int(digits[2]) >= 6:
        return Invalid("third_digit")
    if cedula_check_digit(digits[:9]) != int(digits[9]):
        return Invalid("check_digit")
    return Valid(digits)


# --- email, names, phones -----------------------------------------------------------

# Practical, not RFC 5322: one @, no spaces, a dotted domain with a 2+ letter TLD.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,24}$")


def _validate_email(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    candidate = text.strip()
    if len(candidate) > 254 or not _EMAIL.match(candidate):
        return Invalid("invalid")
    local, domain = candidate.rsplit("@", 1)
    if local.startswith(".") or local.endswith(".") or ".." in candidate:
        return Invalid("invalid")
    return Valid(f"{local}@{domain.lower()}")


_NAME_PARTICLES = frozenset({"de", "del", "la", "las", "los", "y", "da", "van", "von"})


def _capitalize_name(words: list[str]) -> list[str]:
    """Capitalize names typed all in lower or upper case; keep mixed case as typed."""
    result = []
    for index, word in enumerate(words):
        if index > 0 and word.lower() in _NAME_PARTICLES:
            result.append(word.lower())
        else:
            result.append("-".join(part[:1].upper() + part[1:].lower() for part in word.split("-")))
    return result


def _validate_full_name(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    words = text.split()
    max_length = int(options.get("max_length", 100))
    min_words = int(options.get("min_words", 2))
    for word in words:
        stripped = word.replace("'", "").replace("’", "").replace("-", "").replace(".", "")
        if not stripped or not stripped.isalpha():
            return Invalid("invalid_characters")
    if len(words) < min_words:
        return Invalid("too_few_words")
    name = " ".join(words)
    if len(name) > max_length:
        return Invalid("too_long")
    if name == name.lower() or name == name.upper():
        name = " ".join(_capitalize_name(words))
    return Valid(name)


_ECUADOR_MOBILE = re.compile(r"^(?:\+?593|0)(9\d{8})$")
_INTERNATIONAL = re.compile(r"^\+?([1-9]\d{7,14})$")


def _validate_phone(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    """Accept Ecuadorian mobiles ("099 123 4567", "+593 99 123 4567") and E.164 numbers.

    The value is the international number without "+", as WhatsApp ids are written.
    """
    compact = re.sub(r"[\s().\-]", "", text)
    mobile = _ECUADOR_MOBILE.match(compact)
    if mobile:
        return Valid("593" + mobile.group(1))
    international = _INTERNATIONAL.match(compact)
    if international and compact.startswith("+"):
        return Valid(international.group(1))
    return Invalid("invalid")


# --- dates ----------------------------------------------------------------------

_DATE = re.compile(r"^(\d{1,2})\s*[/\-.\s]\s*(\d{1,2})\s*[/\-.\s]\s*(\d{4})$")


def _age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _validate_date(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    """Accept DD/MM/AAAA (also with - . or spaces); store an ISO date."""
    match = _DATE.match(text.strip())
    if match is None:
        return Invalid("format")
    day, month, year = (int(group) for group in match.groups())
    try:
        value = date(year, month, day)
    except ValueError:
        return Invalid("invalid_date")
    today = context.today
    if options.get("past", False) and value > today:
        return Invalid("future")
    if "min_age" in options and _age_on(value, today) < int(options["min_age"]):
        return Invalid("too_young")
    if "max_age" in options and _age_on(value, today) > int(options["max_age"]):
        return Invalid("too_old")
    return Valid(value.isoformat())


def _validate_regex(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    pattern = options["pattern"]
    compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
    if compiled.fullmatch(text.strip()) is None:
        return Invalid("no_match")
    return Valid(text.strip())


def _build_builtins() -> ValidatorRegistry:
    registry = ValidatorRegistry()
    bounds = {"min": OptionKind.INTEGER_OR_SLOT, "max": OptionKind.INTEGER_OR_SLOT}
    registry.register(
        "text",
        _validate_text,
        options={"min_length": OptionKind.INTEGER, "max_length": OptionKind.INTEGER},
        reasons={"empty", "too_short", "too_long"},
    )
    registry.register(
        "integer",
        _validate_integer,
        options=bounds,
        reasons={"not_a_number", "too_small", "too_large"},
    )
    registry.register(
        "money", _validate_money, options=bounds, reasons={"invalid", "too_small", "too_large"}
    )
    registry.register("yes_no", _validate_yes_no, reasons={"unknown"})
    registry.register(
        "cedula",
        _validate_cedula,
        reasons={"not_digits", "length", "province", "third_digit", "check_digit"},
    )
    registry.register("email", _validate_email, reasons={"invalid"})
    registry.register(
        "full_name",
        _validate_full_name,
        options={"min_words": OptionKind.INTEGER, "max_length": OptionKind.INTEGER},
        reasons={"invalid_characters", "too_few_words", "too_long"},
    )
    registry.register("phone", _validate_phone, reasons={"invalid"})
    registry.register(
        "date",
        _validate_date,
        options={
            "min_age": OptionKind.INTEGER,
            "max_age": OptionKind.INTEGER,
            "past": OptionKind.BOOLEAN,
        },
        reasons={"format", "invalid_date", "future", "too_young", "too_old"},
    )
    registry.register(
        "regex",
        _validate_regex,
        options={"pattern": OptionKind.REGEX},
        reasons={"no_match"},
        required_options={"pattern"},
    )
    return registry


BUILTIN_VALIDATORS = _build_builtins()
