"""The ticket bot's settings: catalogue and payment details, checked when the bot loads."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.cli import packaged_flows
from engine import FlowError, load_bot
from flows.catalogue import CatalogueError, Event, parse_price, settings_problems

VALID = {
    "catalogo": [{"id": "simulador", "nombre": "Sesión", "precio": "2.00", "capacidad": 100}],
    "minutos_reserva": 15,
    "banco": {
        "nombre": "B",
        "tipo_cuenta": "Ahorros",
        "numero_cuenta": "1",
        "titular": "T",
        "ruc": "1",
    },
    "enlace_pago_tarjeta": "https://pagos.example.com/?r={reservation}&m={amount}",
}


def test_valid_settings_have_no_problems() -> None:
    assert settings_problems(VALID) == []


@pytest.mark.parametrize(
    ("price", "cents"), [("2.00", 200), ("2", 200), ("2.5", 250), (4, 400), ("1500.99", 150099)]
)
def test_parse_price(price: object, cents: int) -> None:
    assert parse_price(price) == cents


@pytest.mark.parametrize("price", ["2,00", "-1", "2.001", "dos", "", True, None])
def test_parse_price_rejects(price: object) -> None:
    with pytest.raises(CatalogueError, match="invalid price"):
        parse_price(price)


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"precio": "2,00"}, ("catalogo", 0, "precio"), "invalid price '2,00'"),
        (
            {"capacidad": 0},
            ("catalogo", 0, "capacidad"),
            "capacidad must be a whole number of at least 1",
        ),
        (
            {"nombre": "Concierto de Año Nuevo en el Teatro"},
            ("catalogo", 0, "nombre"),
            "over the 24 that fit",
        ),
        ({"id": "Función 1"}, ("catalogo", 0, "id"), "invalid id"),
        ({"fecha": "2026-12-20 19:30"}, ("catalogo", 0, "fecha"), "has no time zone offset"),
    ],
)
def test_catalogue_problems_name_the_field(
    change: dict[str, object], path: tuple[object, ...], message: str
) -> None:
    settings = {**VALID, "catalogo": [{**VALID["catalogo"][0], **change}]}  # type: ignore[dict-item]
    problems = settings_problems(settings)
    assert len(problems) == 1
    assert problems[0].path == path
    assert message in problems[0].message


def test_card_link_needs_placeholders() -> None:
    problems = settings_problems({**VALID, "enlace_pago_tarjeta": "https://pagos.example.com/"})
    assert [problem.path for problem in problems] == [("enlace_pago_tarjeta",)]


def test_bank_details_required() -> None:
    problems = settings_problems({**VALID, "banco": {"nombre": "B"}})
    assert len(problems) == 4
    assert all(problem.path == ("banco",) for problem in problems)


def test_event_date_in_spanish() -> None:
    start = datetime(2026, 12, 19, 19, 30, tzinfo=timezone(timedelta(hours=-5)))
    event = Event("obra", "Obra", 500, 10, 5, True, start)
    assert event.when() == "sábado 19/12 a las 19:30"


def test_check_reports_bad_price_in_bot_yaml(tmp_path: Path) -> None:
    directory = tmp_path / "flows"
    shutil.copytree(
        packaged_flows(), directory, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    settings = directory / "bot.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('precio: "2.00"', 'precio: "2,00"'),
        encoding="utf-8",
    )
    with pytest.raises(FlowError) as raised:
        load_bot(str(directory))
    problems = [str(problem) for problem in raised.value.problems]
    assert len(problems) == 1
    assert problems[0].startswith(f"{directory}/bot.yaml:")
    assert "settings.catalogo.0.precio: invalid price '2,00'" in problems[0]
