from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.validators import (
    BUILTIN_VALIDATORS,
    Invalid,
    Valid,
    ValidationContext,
    cedula_check_digit,
)

ECUADOR = timezone(timedelta(hours=-5))
# 10:00 in Guayaquil on 4 December 2026.
CONTEXT = ValidationContext(datetime(2026, 12, 4, 15, 0, tzinfo=UTC), ECUADOR)


def validate(name: str, text: str, **options: object) -> Valid | Invalid:
    validator = BUILTIN_VALIDATORS.get(name)
    assert validator is not None
    return validator(text, options, CONTEXT)


# Check digits computed by hand with the modulo-10 rule (coefficients 2,1,2,1,...).
@pytest.mark.parametrize(
    ("cedula", "province"),
    [
        ("1710034065", "Pichincha"),
        ("0912345675", "Guayas"),
        ("0102030400", "Azuay"),
        ("1304567892", "Manabí"),
        ("2409876543", "Santa Elena"),
        ("3001234560", "registered abroad"),
    ],
)
def test_cedula_accepts_valid_numbers(cedula: str, province: str) -> None:
    assert validate("cedula", cedula) == Valid(cedula), province


def test_cedula_accepts_spaces_and_dashes() -> None:
    assert validate("cedula", " 171003406-5 ") == Valid("1710034065")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1710034064", "check_digit"),
        ("171003406", "length"),
        ("17100340655", "length"),
        ("17100340A5", "not_digits"),
        ("abcdefghij", "not_digits"),
        ("", "not_digits"),
        ("2510034065", "province"),
        ("0010034065", "province"),
        ("1760034065", "third_digit"),
        ("１７１００３４０６５", "not_digits"),
    ],
)
def test_cedula_rejects_invalid_numbers(text: str, reason: str) -> None:
    assert validate("cedula", text) == Invalid(reason)


def test_cedula_check_digit_zero() -> None:
    # The weighted sum of 0,1,0,2,0,3,0,4,0 is 10: the check digit is 0, not 10.
    assert cedula_check_digit("010203040") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("José María Pérez", "José María Pérez"),
        ("maría josé ñáñez de la torre", "María José Ñáñez de la Torre"),
        ("JUAN PÉREZ", "Juan Pérez"),
        ("  Ana   O'Brien-Cárdenas ", "Ana O'Brien-Cárdenas"),
        ("Güiracocha Ñaupa", "Güiracocha Ñaupa"),
    ],
)
def test_full_name_accepts_accents_and_enie(text: str, expected: str) -> None:
    assert validate("full_name", text) == Valid(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Pedro", "too_few_words"),
        ("", "too_few_words"),
        ("Juan P3rez", "invalid_characters"),
        ("Juan 👍", "invalid_characters"),
        ("Juan Pérez " + "x" * 120, "too_long"),
    ],
)
def test_full_name_rejects(text: str, reason: str) -> None:
    assert validate("full_name", text) == Invalid(reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("maria.perez@gmail.com", "maria.perez@gmail.com"),
        ("Ana+tickets@Correo.EC", "Ana+tickets@correo.ec"),
        (" juan@uce.edu.ec ", "juan@uce.edu.ec"),
    ],
)
def test_email_accepts(text: str, expected: str) -> None:
    assert validate("email", text) == Valid(expected)


@pytest.mark.parametrize(
    "text",
    [
        "maria",
        "maria@",
        "maria@gmail",
        "ma ria@gmail.com",
        "maría@gmail.com",
        "a..b@x.com",
        "@x.com",
        "a@b.c",
    ],
)
def test_email_rejects(text: str) -> None:
    assert validate("email", text) == Invalid("invalid")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17/05/2000", "2000-05-17"),
        ("1-2-1990", "1990-02-01"),
        ("29/02/2004", "2004-02-29"),
        ("04.12.2011", "2011-12-04"),
    ],
)
def test_date_accepts_day_month_year(text: str, expected: str) -> None:
    assert validate("date", text, min_age=15, past=True) == Valid(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2000-05-17", "format"),
        ("17/05/00", "format"),
        ("mayo 2000", "format"),
        ("31/02/2000", "invalid_date"),
        ("29/02/2001", "invalid_date"),
        ("01/01/2030", "future"),
        ("05/12/2011", "too_young"),
        ("01/01/2015", "too_young"),
    ],
)
def test_date_rejects(text: str, reason: str) -> None:
    assert validate("date", text, min_age=15, past=True) == Invalid(reason)


def test_date_minimum_age_counts_birthday_today() -> None:
    # 4 December 2026 in Ecuador: born 4 December 2011 turns 15 today.
    assert validate("date", "04/12/2011", min_age=15) == Valid("2011-12-04")


def test_date_uses_bot_timezone_for_today() -> None:
    # 02:00 UTC on 5 December is still 4 December in Ecuador.
    late = ValidationContext(datetime(2026, 12, 5, 2, 0, tzinfo=UTC), ECUADOR)
    validator = BUILTIN_VALIDATORS.get("date")
    assert validator is not None
    assert validator("05/12/2011", {"min_age": 15}, late) == Invalid("too_young")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2", 2), (" 10 ", 10), ("quiero 3", 3), ("dos", 2), ("Una", 1), ("3 tickets porfa", 3)],
)
def test_integer_accepts(text: str, expected: int) -> None:
    assert validate("integer", text, min=1, max=10) == Valid(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "too_small"),
        ("11", "too_large"),
        ("2 o 3", "not_a_number"),
        ("muchos", "not_a_number"),
        ("2.5", "not_a_number"),
    ],
)
def test_integer_rejects(text: str, reason: str) -> None:
    assert validate("integer", text, min=1, max=10) == Invalid(reason)


@pytest.mark.parametrize(
    ("text", "cents"),
    [("$4.00", 400), ("4", 400), ("4,5", 450), ("USD 12.30", 1230), ("2 dólares", 200)],
)
def test_money_returns_cents(text: str, cents: int) -> None:
    assert validate("money", text) == Valid(cents)


@pytest.mark.parametrize(
    ("text", "value"),
    [("Sí", True), ("si 👍", True), ("CLARO", True), ("no", False), ("Nop", False)],
)
def test_yes_no(text: str, value: bool) -> None:
    assert validate("yes_no", text) == Valid(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0991234567", "593991234567"),
        ("+593 99 123 4567", "593991234567"),
        ("+1 (415) 555-0100", "14155550100"),
    ],
)
def test_phone_normalises_to_international(text: str, expected: str) -> None:
    assert validate("phone", text) == Valid(expected)


@pytest.mark.parametrize("text", ["12345", "0891234567", "abc"])
def test_phone_rejects(text: str) -> None:
    assert validate("phone", text) == Invalid("invalid")


def test_regex_matches_whole_text() -> None:
    assert validate("regex", " AB-123 ", pattern=r"[A-Z]{2}-\d+") == Valid("AB-123")
    assert validate("regex", "xAB-123", pattern=r"[A-Z]{2}-\d+") == Invalid("no_match")


@pytest.mark.parametrize("name", BUILTIN_VALIDATORS.names())
@pytest.mark.parametrize("text", ["", "a" * 20000, "\x00\x1b[31m", "\u202e\u200f", "👍👍👍", "١٢٣"])
def test_validators_never_raise(name: str, text: str) -> None:
    options: dict[str, object] = {"pattern": r"\d+"} if name == "regex" else {}
    validator = BUILTIN_VALIDATORS.get(name)
    assert validator is not None
    assert isinstance(validator(text, options, CONTEXT), Valid | Invalid)
