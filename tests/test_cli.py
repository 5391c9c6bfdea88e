"""The `whatsapp-tickets` command as a user runs it: a real process, piped stdin, a SQLite file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.cli import packaged_flows
from tests.helpers import write_flows

REGISTRATION = [
    "hola",
    "comprar",
    "1710034065",
    "Juan Carlos Pérez Ñaupa",
    "17/05/2000",
    "juan.perez@example.com",
    "Quito, Av. Amazonas N34-120",
    "si",
]


def command() -> list[str]:
    script = Path(sys.executable).parent / "whatsapp-tickets"
    if script.exists():
        return [str(script)]
    found = shutil.which("whatsapp-tickets")
    return [found] if found else [sys.executable, "-m", "adapters.cli"]


def run(
    arguments: list[str],
    stdin: str = "",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "WHATSAPP_TICKETS_DB"}
    environment.update(env or {})
    return subprocess.run(
        [*command(), *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=environment,
        check=False,
    )


def chat(db: Path, lines: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        ["chat", "--trace", "--db", str(db), *extra], stdin="\n".join(lines) + "\n", cwd=db.parent
    )


def traces(output: str) -> list[str]:
    return re.findall(r"^# state: (\S+)$", output, flags=re.MULTILINE)


def test_chat_registration_ends_at_ticket_quantity(tmp_path: Path) -> None:
    result = chat(tmp_path / "chat.db", REGISTRATION)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert traces(result.stdout) == [
        "inicio.menu",
        "registro.esperando_cedula",
        "registro.esperando_nombre",
        "registro.esperando_fecha_nacimiento",
        "registro.esperando_correo",
        "registro.esperando_direccion",
        "registro.confirmando_datos",
        "reserva.esperando_cantidad",
    ]
    assert result.stdout.rstrip().endswith("# state: reserva.esperando_cantidad")
    assert "1. Comprar tickets\n2. Mis tickets\n3. Ayuda" in result.stdout


def test_chat_output_has_no_prompt_or_colour(tmp_path: Path) -> None:
    result = chat(tmp_path / "chat.db", ["hola"])
    assert "\033[" not in result.stdout
    assert not result.stdout.startswith(">")


def test_chat_invalid_cedula_stays_with_explanation(tmp_path: Path) -> None:
    result = chat(tmp_path / "chat.db", ["hola", "comprar", "1710034064"])
    assert traces(result.stdout)[-1] == "registro.esperando_cedula"
    last_turn = result.stdout.split("# state: registro.esperando_cedula")[-2]
    assert "Ese número de cédula no es válido" in last_turn


def test_chat_skips_blank_lines(tmp_path: Path) -> None:
    result = chat(tmp_path / "chat.db", ["", "hola", "   ", "", "comprar"])
    assert traces(result.stdout) == ["inicio.menu", "registro.esperando_cedula"]


def test_chat_keeps_the_conversation_across_runs(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = chat(db, REGISTRATION[:4], "--phone", "593991112233")
    assert traces(first.stdout)[-1] == "registro.esperando_fecha_nacimiento"
    second = chat(db, REGISTRATION[4:], "--phone", "593991112233")
    assert second.returncode == 0, second.stderr
    assert traces(second.stdout)[-1] == "reserva.esperando_cantidad"
    assert "Juan Carlos Pérez Ñaupa" in second.stdout


def test_chat_phone_numbers_have_separate_sessions(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    chat(db, REGISTRATION[:3], "--phone", "593991112233")
    other = chat(db, ["hola"], "--phone", "593994445566")
    assert traces(other.stdout) == ["inicio.menu"]
    assert "Soy el asistente" in other.stdout


def test_chat_database_from_environment(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = run(
        ["chat", "--trace"], stdin="hola\n", cwd=tmp_path, env={"WHATSAPP_TICKETS_DB": str(db)}
    )
    assert result.returncode == 0, result.stderr
    assert db.exists()
    assert not (tmp_path / "whatsapp-tickets.db").exists()


def test_chat_simulated_event_and_wait(tmp_path: Path) -> None:
    lines = [
        *REGISTRATION,
        "2",
        "si",
        "transferencia",
        "000123456",
        "/event pago_confirmado",
        "comprar",
        "/wait 11",
    ]
    result = chat(tmp_path / "chat.db", lines)
    assert result.returncode == 0, result.stderr
    assert traces(result.stdout)[-4:] == [
        "pago.verificando",
        "inicio.menu",
        "reserva.esperando_cantidad",
        "none",
    ]
    assert "¡Pago confirmado!" in result.stdout
    assert "cerré esta conversación" in result.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/event", "/event needs a name, as in /event pago_confirmado"),
        ("/tap", "/tap needs a name, as in /tap comprar"),
    ],
)
def test_chat_slash_command_without_argument(tmp_path: Path, line: str, message: str) -> None:
    result = chat(tmp_path / "chat.db", ["hola", line])
    assert result.returncode == 0
    assert message in result.stderr


def test_chat_rejects_invalid_phone(tmp_path: Path) -> None:
    result = run(["chat", "--phone", "abc", "--db", str(tmp_path / "x.db")], stdin="hola\n")
    assert result.returncode == 2
    assert "invalid phone number 'abc'" in result.stderr


def test_verbose_after_command_name(tmp_path: Path) -> None:
    result = run(["check", "-v", packaged_flows()])
    assert result.returncode == 0
    assert re.search(r"\d+ phases, \d+ states, no errors", result.stdout)


def test_chat_unknown_slash_command_is_reported(tmp_path: Path) -> None:
    result = chat(tmp_path / "chat.db", ["/bailar", "hola"])
    assert result.returncode == 0
    assert "unknown chat command /bailar" in result.stderr
    assert traces(result.stdout) == ["inicio.menu"]


def test_chat_with_broken_flows_exits_1(tmp_path: Path) -> None:
    directory = write_flows(tmp_path / "broken", {"bot.yaml": "bot: [x\n"})
    result = run(["chat", "--flows", directory, "--db", str(tmp_path / "x.db")], stdin="hola\n")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{directory}/bot.yaml:2:1: error: invalid YAML" in result.stderr


def test_check_packaged_flows_passes(tmp_path: Path) -> None:
    result = run(["check", packaged_flows()])
    assert result.returncode == 0, result.stderr
    assert "no errors" in result.stdout


def test_check_defaults_to_flows_directory(tmp_path: Path) -> None:
    shutil.copytree(
        packaged_flows(), tmp_path / "flows", ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    result = run(["check"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flows: bot 'tickets'")


@pytest.fixture
def broken_flows(tmp_path: Path) -> Path:
    """The ticket bot with a syntax error, an unknown target and a 21-character button title."""
    directory = tmp_path / "flows"
    shutil.copytree(
        packaged_flows(), directory, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    return directory


def replace_in(path: Path, old: str, new: str) -> tuple[int, int]:
    """Replace the first `old` in the file; return the 1-based line and column of `new`."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    offset = text.index(old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def test_check_reports_yaml_syntax_error(broken_flows: Path) -> None:
    replace_in(
        broken_flows / "reserva.yaml",
        "    action: preparar_reserva",
        "    action: [preparar_reserva",
    )
    result = run(["check", "flows"], cwd=broken_flows.parent)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(
        r"^flows/reserva\.yaml:\d+:\d+: error: invalid YAML", result.stderr, flags=re.MULTILINE
    )


def test_check_reports_unknown_target_state(broken_flows: Path) -> None:
    line, column = replace_in(
        broken_flows / "inicio.yaml",
        "next: verificando_cliente\n",
        "next: verificando_clientes\n",
    )
    result = run(["check", "flows"], cwd=broken_flows.parent)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"flows/inicio.yaml:{line}:{column + 6}: error: unknown target state 'verificando_clientes', "
        "did you mean 'verificando_cliente'?"
    ) in result.stderr


def test_check_reports_long_button_title(broken_flows: Path) -> None:
    line, column = replace_in(
        broken_flows / "inicio.yaml", "title: Comprar tickets", "title: Comprar tus tickets!!"
    )
    result = run(["check", "flows"], cwd=broken_flows.parent)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"flows/inicio.yaml:{line}:{column + 7}: error: button title (es) has 21 characters, over the "
        "WhatsApp limit of 20; shorten it"
    ) in result.stderr


def test_check_json_format(broken_flows: Path) -> None:
    line, column = replace_in(
        broken_flows / "inicio.yaml", "title: Comprar tickets", "title: Comprar tus tickets!!"
    )
    result = run(["check", "flows", "--format", "json"], cwd=broken_flows.parent)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["problems"][0]["path"] == "flows/inicio.yaml"
    assert (report["problems"][0]["line"], report["problems"][0]["column"]) == (line, column + 7)


def test_check_missing_directory(tmp_path: Path) -> None:
    result = run(["check", "no-such-dir"], cwd=tmp_path)
    assert result.returncode == 1
    assert "no-such-dir:1:1: error: flow directory not found" in result.stderr
