from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import ActionRegistry, FlowError, SettingsProblem, load_bot
from engine.loader import parse_duration
from tests.helpers import write_flows

BOT = """
bot: prueba
start: inicio.menu
menu: inicio.menu
"""

PHASE = """
phase: inicio
states:
  menu:
    say: ¿Qué quieres hacer?
    choices:
      - id: uno
        title: Opción uno
        next: pregunta
  pregunta:
    say: ¿Cómo te llamas?
    input:
      type: text
      slot: nombre
    next: menu
"""


def problems_of(directory: str, actions: ActionRegistry | None = None) -> list[str]:
    with pytest.raises(FlowError) as raised:
        load_bot(directory, actions=actions)
    return [str(problem) for problem in raised.value.problems]


def load_with(
    tmp_path: Path, phase: str, bot: str = BOT, actions: ActionRegistry | None = None
) -> list[str]:
    directory = write_flows(tmp_path / "flows", {"bot.yaml": bot, "inicio.yaml": phase})
    return problems_of(directory, actions)


def test_base_bot_loads(tmp_path: Path) -> None:
    directory = write_flows(tmp_path / "flows", {"bot.yaml": BOT, "inicio.yaml": PHASE})
    bot = load_bot(directory)
    assert sorted(bot.compiled.states) == ["inicio.menu", "inicio.pregunta"]


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    phase = PHASE.replace("    say: ¿Cómo te llamas?", "    say: [¿Cómo te llamas?")
    problems = load_with(tmp_path, phase)
    assert len(problems) == 1
    assert re.match(
        r".*/flows/inicio\.yaml:1[0-2]:\d+: error: invalid YAML: .+, fix the syntax", problems[0]
    )


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    phase = PHASE.replace("    next: menu", "    nxt: menu")
    problems = load_with(tmp_path, phase)
    assert any(
        p.endswith(
            "inicio.yaml:14:5: error: unknown key 'nxt' in state inicio.pregunta, did you mean 'next'?"
        )
        for p in problems
    ), problems


def test_unknown_target_state(tmp_path: Path) -> None:
    phase = PHASE.replace("        next: pregunta", "        next: preguntas")
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:8:15: error: unknown target state 'preguntas', did you mean 'pregunta'?"
    ]


def test_unknown_target_in_other_phase(tmp_path: Path) -> None:
    phase = PHASE.replace("    next: menu", "    next: pago.inicio")
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:14:11: error: unknown target state 'pago.inicio': there is no phase "
        "'pago', known phases: inicio"
    ]


def test_unknown_action(tmp_path: Path) -> None:
    phase = (
        PHASE
        + """
  guardando:
    action: guardar_nombre
    next: menu
"""
    )
    phase = phase.replace("    next: menu\n\n  guardando", "    next: guardando\n\n  guardando")
    actions = ActionRegistry()

    @actions.action()
    async def guardar(context: object) -> None:
        return None

    problems = load_with(tmp_path, phase, actions=actions)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:17:13: error: unknown action 'guardar_nombre', did you mean 'guardar'?"
    ]


def test_unknown_validator(tmp_path: Path) -> None:
    phase = PHASE.replace("      type: text", "      type: texto")
    problems = load_with(tmp_path, phase)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{tmp_path}/flows/inicio.yaml:12:13: error: unknown validator 'texto', did you mean 'text'?"
    )


def test_unknown_validator_option(tmp_path: Path) -> None:
    phase = PHASE.replace("      slot: nombre", "      slot: nombre\n      min_edad: 15")
    problems = load_with(tmp_path, phase)
    assert problems[0].startswith(
        f"{tmp_path}/flows/inicio.yaml:14:7: error: unknown key 'min_edad' in input"
    )


def test_duplicate_state_id(tmp_path: Path) -> None:
    phase = (
        PHASE
        + """
  menu:
    say: Otra vez
    next: pregunta
"""
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:16:3: error: duplicate key 'menu' in states (first at line 3), "
        "remove or rename one of them"
    ]


def test_duplicate_phase_across_files(tmp_path: Path) -> None:
    directory = write_flows(
        tmp_path / "flows", {"bot.yaml": BOT, "inicio.yaml": PHASE, "otra.yaml": PHASE}
    )
    problems = problems_of(directory)
    assert problems == [
        f"{directory}/otra.yaml:1:8: error: phase 'inicio' is already defined in {directory}/inicio.yaml, "
        "give each phase file its own name"
    ]


def test_duplicate_choice_id(tmp_path: Path) -> None:
    phase = PHASE.replace(
        "        next: pregunta\n",
        "        next: pregunta\n      - id: uno\n        title: Otra\n        next: menu\n",
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:9:9: error: duplicate choice id 'uno' (first at line 6), "
        "give each option its own id"
    ]


def test_button_title_over_twenty_characters(tmp_path: Path) -> None:
    phase = PHASE.replace("title: Opción uno", "title: Comprar tickets ahora")
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:7:16: error: button title (es) has 21 characters, over the WhatsApp "
        "limit of 20; shorten it"
    ]


def test_button_title_counts_characters_not_bytes(tmp_path: Path) -> None:
    # 20 code points, 27 bytes in UTF-8: within the limit.
    title = "Inscripción añadida✅"
    assert len(title) == 20
    assert len(title.encode()) > 20
    directory = write_flows(
        tmp_path / "flows", {"bot.yaml": BOT, "inicio.yaml": PHASE.replace("Opción uno", title)}
    )
    load_bot(directory)


def test_list_row_limits(tmp_path: Path) -> None:
    choices = "".join(
        f"      - id: op{number}\n        title: Opción {number}\n        next: pregunta\n"
        for number in range(11)
    )
    phase = PHASE.replace(
        "      - id: uno\n        title: Opción uno\n        next: pregunta\n", choices
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:36:9: error: state inicio.menu has 11 options, over the WhatsApp "
        "limit of 10 rows in a list; split them over two questions"
    ]


def test_text_over_4096_characters(tmp_path: Path) -> None:
    phase = PHASE.replace("say: ¿Cómo te llamas?", "say: " + "á" * 4097)
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:10:10: error: text message (es) has 4097 characters, over the "
        "WhatsApp limit of 4096; shorten it"
    ]


def test_unreachable_state(tmp_path: Path) -> None:
    phase = (
        PHASE
        + """
  olvidado:
    say: Nadie llega aquí
    next: menu
"""
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:16:3: error: state inicio.olvidado is unreachable: no branch, "
        "command or timeout leads to it; add a `next:` that targets it or remove it"
    ]


def test_state_with_no_way_out(tmp_path: Path) -> None:
    phase = (
        PHASE.replace("    next: menu", "    next: final")
        + """
  final:
    say: Gracias
"""
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:16:3: error: state inicio.final has no way out, add `next:`, "
        "`choices:`, `input:` or `events:`"
    ]


def test_template_slot_that_no_path_sets(tmp_path: Path) -> None:
    phase = PHASE.replace("say: ¿Qué quieres hacer?", "say: Hola {apellido}, ¿qué quieres hacer?")
    problems = load_with(tmp_path, phase)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{tmp_path}/flows/inicio.yaml:4:10: error: template uses slot {{apellido}}, but no path to inicio.menu sets it"
    )


def test_template_slot_set_on_the_path_is_accepted(tmp_path: Path) -> None:
    phase = (
        PHASE.replace("    next: menu", "    next: saludo")
        + """
  saludo:
    say: Hola {nombre}
    next: menu
"""
    )
    load_bot(write_flows(tmp_path / "flows", {"bot.yaml": BOT, "inicio.yaml": phase}))


def test_template_syntax_error_points_at_the_brace(tmp_path: Path) -> None:
    phase = PHASE.replace("say: ¿Cómo te llamas?", "say: ¿Cómo te {llamas?")
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:10:19: error: unmatched '{{' in template, write '{{{{' for a literal brace"
    ]


def test_unknown_formatter(tmp_path: Path) -> None:
    phase = (
        PHASE.replace("    next: menu", "    next: saludo")
        + """
  saludo:
    say: Hola {nombre|dinero}
    next: menu
"""
    )
    problems = load_with(tmp_path, phase)
    assert len(problems) == 1
    assert (
        "unknown formatter 'dinero' in template, use one of: date, datetime, lower, money, time, upper"
        in problems[0]
    )
    assert problems[0].startswith(f"{tmp_path}/flows/inicio.yaml:17:15:")


def test_unconditional_branch_before_others(tmp_path: Path) -> None:
    phase = PHASE.replace(
        "    next: menu", "    next:\n      - to: menu\n      - if: nombre\n        to: pregunta"
    )
    problems = load_with(tmp_path, phase)
    assert problems[0] == (
        f"{tmp_path}/flows/inicio.yaml:16:9: error: this branch can never be taken because an earlier branch "
        "has no `if:`, move the unconditional branch to the end"
    )


def test_last_branch_with_condition(tmp_path: Path) -> None:
    phase = PHASE.replace("    next: menu", "    next:\n      - if: nombre\n        to: menu")
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:15:9: error: the last branch has an `if:`, so no branch may match; "
        "add a final branch with only `to:` for the other cases"
    ]


def test_malformed_condition(tmp_path: Path) -> None:
    phase = PHASE.replace(
        "    next: menu", "    next:\n      - if: nombre = 'x'\n        to: menu\n      - to: menu"
    )
    problems = load_with(tmp_path, phase)
    assert problems[0].startswith(f"{tmp_path}/flows/inicio.yaml:15:13: error: invalid condition")


def test_loop_without_waiting(tmp_path: Path) -> None:
    phase = (
        PHASE.replace("    next: menu", "    next: a")
        + """
  a:
    say: A
    next: b
  b:
    say: B
    next: a
"""
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:16:3: error: states inicio.a -> inicio.b -> inicio.a form a loop that "
        "never waits for the customer, make one of them ask something or end the loop"
    ]


def test_missing_settings_file(tmp_path: Path) -> None:
    directory = write_flows(tmp_path / "flows", {"inicio.yaml": PHASE})
    assert problems_of(directory) == [
        f"{directory}/bot.yaml:1:1: error: bot settings file not found, create bot.yaml with at least "
        "`bot:`, `start:` and `menu:`"
    ]


def test_missing_directory(tmp_path: Path) -> None:
    directory = str(tmp_path / "nowhere")
    assert problems_of(directory) == [
        f"{directory}:1:1: error: flow directory not found, pass the directory that contains bot.yaml"
    ]


def test_yes_and_no_ids_stay_text(tmp_path: Path) -> None:
    # YAML 1.1 reads a bare `no` as false; choice ids must keep the text.
    phase = PHASE.replace("      - id: uno\n", "      - id: no\n")
    bot = load_bot(write_flows(tmp_path / "flows", {"bot.yaml": BOT, "inicio.yaml": phase}))
    assert bot.compiled.states["inicio.menu"].choice_ids == frozenset({"no"})


def test_text_without_default_language(tmp_path: Path) -> None:
    bot_settings = BOT + "languages: [en]\n"
    phase = PHASE.replace("say: ¿Cómo te llamas?", "say:\n      en: What is your name?")
    problems = load_with(tmp_path, phase, bot=bot_settings)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:11:7: error: say has no text in the default language 'es', add it"
    ]


def test_action_outcome_not_handled(tmp_path: Path) -> None:
    actions = ActionRegistry()

    @actions.action(outcomes=["si", "no"])
    async def decidir(context: object) -> str:
        return "si"

    phase = (
        PHASE.replace("    next: menu", "    next: decidiendo")
        + """
  decidiendo:
    action: decidir
    on:
      si: menu
      tal_vez: menu
"""
    )
    problems = load_with(tmp_path, phase, actions=actions)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:17:13: error: state inicio.decidiendo does not say where to go after "
        "action 'decidir', add `on:` branches for no or `next:`",
        f"{tmp_path}/flows/inicio.yaml:20:7: error: action 'decidir' has no outcome 'tal_vez' (its outcomes: no, si); "
        "branch on one of those, or declare the outcome in the action's `outcomes`",
    ]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    phase = PHASE.replace("next: pregunta", "next: nada").replace("type: text", "type: nada")
    problems = load_with(tmp_path, phase)
    assert len(problems) == 2


def test_sections_on_some_options_only(tmp_path: Path) -> None:
    phase = PHASE.replace(
        "        title: Opción uno\n",
        "        title: Opción uno\n        section: Compras\n",
    ).replace(
        "        next: pregunta\n  pregunta:",
        "        next: pregunta\n      - id: dos\n        title: Opción dos\n        next: pregunta\n  pregunta:",
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:10:9: error: option 'dos' has no section while others in state "
        "inicio.menu have one; WhatsApp needs a title on every section, so give every option a `section:` or none"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("15 min", 900),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("10x", None),
        ("1h30", None),
    ],
)
def test_duration_parsing(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


def test_action_with_events_is_rejected(tmp_path: Path) -> None:
    actions = ActionRegistry()

    @actions.action()
    async def avisar(context: object) -> None:
        return None

    phase = (
        PHASE.replace("    next: menu", "    next: esperando")
        + """
  esperando:
    action: avisar
    events:
      listo: menu
"""
    )
    problems = load_with(tmp_path, phase, actions=actions)
    assert problems[0].startswith(
        f"{tmp_path}/flows/inicio.yaml:17:5: error: state inicio.esperando runs an action and also waits"
    )


def test_state_command_override_inherits_words(tmp_path: Path) -> None:
    bot_settings = BOT + "commands:\n  salir:\n    words: [salir]\n    to: inicio.menu\n"
    phase = PHASE.replace(
        "    next: menu", "    next: menu\n    commands:\n      salir:\n        say: Saliste."
    )
    bot = load_bot(
        write_flows(tmp_path / "flows", {"bot.yaml": bot_settings, "inicio.yaml": phase})
    )
    command = bot.compiled.states["inicio.pregunta"].command_words["salir"]
    assert command.exit.target is not None
    assert command.exit.target.state == "inicio.menu"
    assert command.exit.say[0].body is not None


def test_condition_with_decimal_number(tmp_path: Path) -> None:
    phase = PHASE.replace(
        "    next: menu", "    next:\n      - if: nota >= 4.5\n        to: menu\n      - to: menu"
    )
    phase = phase.replace("      slot: nombre", "      slot: nota")
    load_bot(write_flows(tmp_path / "flows", {"bot.yaml": BOT, "inicio.yaml": phase}))


def test_malformed_condition_reported_once(tmp_path: Path) -> None:
    phase = PHASE.replace(
        "    next: menu", "    next:\n      - if: nombre >>> 2\n        to: menu\n      - to: menu"
    )
    problems = load_with(tmp_path, phase)
    assert len(problems) == 1
    assert "in condition 'nombre >>> 2'" in problems[0]


def test_back_only_in_branches(tmp_path: Path) -> None:
    bot_settings = BOT + "commands:\n  salir:\n    words: [salir]\n    to: back\n"
    problems = load_with(tmp_path, PHASE, bot=bot_settings)
    assert problems == [
        f"{tmp_path}/flows/bot.yaml:7:9: error: `back` returns to the state a command left, so it works only "
        "in `next:`, `on:`, `events:` and options; name a state here"
    ]


def test_yaml_colon_in_text_hint(tmp_path: Path) -> None:
    phase = PHASE.replace("say: ¿Cómo te llamas?", "say: Nota: ¿cómo te llamas?")
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:10:14: error: invalid YAML: mapping values are not allowed here, "
        "a text that contains ': ' must be in quotes, as in say: \"Nota: llega temprano\""
    ]


def test_yaml_unclosed_quote_names_its_start(tmp_path: Path) -> None:
    phase = PHASE.replace("say: ¿Cómo te llamas?", 'say: "¿Cómo te llamas?')
    problems = load_with(tmp_path, phase)
    assert len(problems) == 1
    assert "(while scanning a quoted scalar at line 10, column 10), close the quote" in problems[0]


def test_unknown_slot_suggests_a_close_one(tmp_path: Path) -> None:
    phase = (
        PHASE.replace("    next: menu", "    next: saludo")
        + """
  saludo:
    say: Hola {nombr}
    next: menu
"""
    )
    problems = load_with(tmp_path, phase)
    assert problems == [
        f"{tmp_path}/flows/inicio.yaml:17:10: error: template uses slot {{nombr}}, but no path to inicio.saludo "
        "sets it, did you mean 'nombre'?"
    ]


def test_invalid_validator_reported_once(tmp_path: Path) -> None:
    phase = PHASE.replace("      type: text", "      type: correo").replace(
        "    next: menu", "    retry: Otra vez.\n    next: menu"
    )
    problems = load_with(tmp_path, phase)
    assert len(problems) == 1
    assert "unknown validator 'correo'" in problems[0]


def test_settings_check_points_at_the_value(tmp_path: Path) -> None:
    actions = ActionRegistry()

    @actions.settings_check
    def precio_con_punto(settings: dict[str, object]) -> list[SettingsProblem]:
        return [SettingsProblem(("catalogo", 0, "precio"), "write the price with a dot")]

    bot_settings = BOT + "settings:\n  catalogo:\n    - id: x\n      precio: '2,00'\n"
    problems = load_with(tmp_path, PHASE, bot=bot_settings, actions=actions)
    assert problems == [
        f"{tmp_path}/flows/bot.yaml:7:15: error: settings.catalogo.0.precio: write the price with a dot"
    ]


def test_custom_validator_from_actions_module(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "acciones.py").write_text(
        "from engine import ActionRegistry, BUILTIN_VALIDATORS\n"
        "from engine.validators import Invalid, Valid\n"
        "actions = ActionRegistry()\n"
        "validators = BUILTIN_VALIDATORS.copy()\n"
        "validators.register('ruc', lambda text, options, context: "
        "Valid(text) if len(text) == 13 else Invalid('length'), reasons={'length'})\n",
        encoding="utf-8",
    )
    phase = PHASE.replace("      type: text", "      type: ruc").replace(
        "    next: menu", "    retry:\n      length: Son 13 dígitos.\n    next: menu"
    )
    directory = write_flows(
        tmp_path / "flows", {"bot.yaml": BOT + "actions: ./acciones.py\n", "inicio.yaml": phase}
    )
    bot = load_bot(directory)
    assert bot.compiled.states["inicio.pregunta"].spec.input is not None
    assert bot.compiled.states["inicio.pregunta"].spec.input.type == "ruc"
