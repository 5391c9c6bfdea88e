from __future__ import annotations

from typing import Any

import pytest

from engine import (
    ActionContext,
    ActionError,
    ActionRegistry,
    Bot,
    ButtonsMessage,
    ChoiceReply,
    ExternalEvent,
    FlowRuntimeError,
    ListMessage,
    LocationMessage,
    MediaMessage,
    Option,
    TextMessage,
    UnsupportedMessage,
    load_bot,
)
from engine.testing import Conversation, message_text, option_ids
from tests.helpers import joined, write_flows

BOT = """
bot: cafe
language: es
languages: [es, en]
start: inicio.bienvenida
menu: inicio.menu
inactivity_timeout: 10m
attempts: 2
greetings: [hola, buenas]
commands:
  menu:
    words: [menu, menú]
    to: inicio.menu
  cancelar:
    words: [cancelar]
    action: liberar
    say: Cancelado.
    to: inicio.menu
    clear_slots: true
  ayuda:
    words: [ayuda]
    help: true
  olvidar:
    words: [olvidame]
    to: inicio.confirmando_olvido
on_timeout:
  action: liberar
"""

INICIO = """
phase: inicio
states:
  bienvenida:
    say: Bienvenido al café.
    next: menu
  menu:
    say:
      es: ¿Qué quieres hacer?
      en: What would you like to do?
    help: Elige una opción del menú.
    choices:
      - id: pedir
        title:
          es: Pedir café
          en: Order coffee
        next: pedido
      - id: idioma
        title: English
        set:
          _language: en
        next: menu
      - id: estado
        title: Estado ☕
        aliases: [mi pedido]
        next: consultando
  consultando:
    action: consultar
    on:
      listo: listo
      pendiente: esperando
  listo:
    say: Tu café está listo.
    next: menu
  esperando:
    say: Te aviso cuando esté listo.
    events:
      cafe_listo: listo
  confirmando_olvido:
    say: ¿Seguro?
    choices:
      - id: si
        title: Sí
        aliases: ["👍"]
        next: menu
      - id: no
        title: No
        next: back
"""

PEDIDO = """
phase: pedido
states:
  tipo:
    say: ¿Qué café quieres?
    rows:
      action: cafes
      slot: cafe
      next: cantidad
  cantidad:
    set:
      maximo: 5
    say: ¿Cuántos {cafe}?
    input:
      type: integer
      slot: cantidad
      min: 1
      max: "{maximo}"
    retry:
      too_large: Máximo {maximo} cafés.
      default: Escribe un número, por ejemplo 2.
    help: Escribe cuántos cafés quieres, del 1 al {maximo}.
    next:
      - if: cantidad > 3
        to: muchos
      - to: confirmar
  muchos:
    say: ¡Son muchos cafés!
    next: confirmar
  confirmar:
    say: ¿Confirmas {cantidad} {cafe}?
    choices:
      - id: si
        title: Sí
        next: guardando
      - id: no
        title: No
        next: cantidad
  guardando:
    action: guardar
    next: inicio.menu
"""


class Kitchen:
    """What the test bot's actions touch; stands in for a database."""

    def __init__(self) -> None:
        self.released = 0
        self.saved: list[dict[str, Any]] = []
        self.ready = False
        self.fail = False
        self.bad_outcome: str | None = None


def build_actions() -> ActionRegistry:
    actions = ActionRegistry()

    @actions.action()
    async def liberar(context: ActionContext) -> None:
        context.services.released += 1

    @actions.action(outcomes=["listo", "pendiente"])
    async def consultar(context: ActionContext) -> str:
        kitchen: Kitchen = context.services
        if kitchen.bad_outcome:
            return kitchen.bad_outcome
        return "listo" if kitchen.ready else "pendiente"

    @actions.rows(sets=[])
    async def cafes(context: ActionContext) -> list[Option]:
        return [
            Option("cafe_americano", "Americano", "Negro", value="americano"),
            Option("cafe_latte", "Latte", "Con leche", value="latte"),
        ]

    @actions.action()
    async def guardar(context: ActionContext) -> None:
        kitchen: Kitchen = context.services
        if kitchen.fail:
            raise RuntimeError("kitchen is closed")
        kitchen.saved.append(dict(context.slots))
        context.reply(TextMessage(f"Pedido de {context.slots['cantidad']} guardado."))

    return actions


@pytest.fixture(scope="module")
def cafe_bot(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    directory = write_flows(
        tmp_path_factory.mktemp("cafe"),
        {"bot.yaml": BOT, "inicio.yaml": INICIO, "pedido.yaml": PEDIDO},
    )
    return load_bot(directory, actions=build_actions())


@pytest.fixture
def kitchen() -> Kitchen:
    return Kitchen()


@pytest.fixture
def chat(cafe_bot: Bot, kitchen: Kitchen) -> Conversation:
    return Conversation(cafe_bot, services=kitchen)


async def test_first_message_greets_and_shows_menu(chat: Conversation) -> None:
    replies = await chat.send("quiero un café")
    assert chat.state == "inicio.menu"
    assert message_text(replies[0]) == "Bienvenido al café."
    assert isinstance(replies[1], ButtonsMessage)
    assert option_ids(replies[1]) == ["pedir", "idioma", "estado"]


@pytest.mark.parametrize(
    "answer", ["1", "pedir", "PEDIR CAFÉ", "  pedir cafe ☕ ", "Pedir café!", "\u200fpedir\u200e"]
)
async def test_choice_matches_typed_answers(chat: Conversation, answer: str) -> None:
    await chat.send("hola")
    await chat.send(answer)
    assert chat.state == "pedido.tipo"


async def test_choice_matches_alias_and_emoji_title(chat: Conversation) -> None:
    await chat.send("hola")
    await chat.send("Mi pedido")
    assert chat.state == "inicio.esperando"


async def test_choice_tap_by_id(chat: Conversation) -> None:
    await chat.send("hola")
    await chat.tap("pedir", "Pedir café")
    assert chat.state == "pedido.tipo"


async def test_stale_tap_is_read_as_its_title(chat: Conversation) -> None:
    await chat.send("hola")
    await chat.send("1")
    await chat.send("1")
    await chat.send("2")
    assert chat.state == "pedido.confirmar"
    # A tap on the old menu's button: its id is unknown here, its title is a command.
    await chat.tap("old_menu_button", "Menú")
    assert chat.state == "inicio.menu"


async def test_invalid_choice_reprompts_then_gives_up(chat: Conversation) -> None:
    await chat.send("hola")
    replies = await chat.send("pizza")
    assert chat.state == "inicio.menu"
    assert "No reconocí esa opción" in joined(replies)
    assert isinstance(replies[-1], ButtonsMessage)
    replies = await chat.send("pizza otra vez")
    assert "no nos estamos entendiendo" in joined(replies)
    assert chat.state == "inicio.menu"
    assert chat.session is not None and chat.session.attempts == 0


async def test_dynamic_rows_by_number_title_and_tap(chat: Conversation) -> None:
    await chat.send("hola")
    replies = await chat.send("pedir")
    assert isinstance(replies[-1], ListMessage)
    assert option_ids(replies[-1]) == ["cafe_americano", "cafe_latte"]
    await chat.send("latte")
    assert chat.slots["cafe"] == "latte"
    await chat.send("menu")
    await chat.send("pedir")
    await chat.tap("cafe_americano", "Americano")
    assert chat.slots["cafe"] == "americano"
    assert chat.state == "pedido.cantidad"


async def test_input_retry_per_reason_with_slots(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    replies = await chat.send("9")
    assert joined(replies) == "Máximo 5 cafés."
    assert chat.state == "pedido.cantidad"
    replies = await chat.send("muchos")
    assert chat.state == "inicio.menu"
    assert "no nos estamos entendiendo" in joined(replies)


async def test_input_default_retry(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    replies = await chat.send("no sé")
    assert joined(replies) == "Escribe un número, por ejemplo 2."


async def test_guards_pick_the_branch(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    replies = await chat.send("4")
    assert chat.state == "pedido.confirmar"
    assert chat.turns[-1].states == ["pedido.muchos", "pedido.confirmar"]
    assert "¡Son muchos cafés!" in joined(replies)
    await chat.send("no")
    await chat.send("2")
    assert chat.turns[-1].states == ["pedido.confirmar"]


async def test_action_replies_and_cross_phase_move(chat: Conversation, kitchen: Kitchen) -> None:
    await chat.send_all("hola", "pedir", "1", "2")
    replies = await chat.send("si")
    assert chat.state == "inicio.menu"
    assert kitchen.saved[0]["cantidad"] == 2
    assert joined(replies).startswith("Pedido de 2 guardado.")


async def test_menu_command_from_any_state(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    await chat.send("MENÚ")
    assert chat.state == "inicio.menu"


async def test_cancel_runs_action_and_clears_slots(chat: Conversation, kitchen: Kitchen) -> None:
    await chat.send_all("hola", "pedir", "1", "2")
    replies = await chat.send("cancelar")
    assert chat.state == "inicio.menu"
    assert kitchen.released == 1
    assert "cafe" not in chat.slots
    assert message_text(replies[0]) == "Cancelado."


async def test_help_explains_and_asks_again(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    replies = await chat.send("ayuda")
    assert chat.state == "pedido.cantidad"
    assert [message_text(reply) for reply in replies] == [
        "Escribe cuántos cafés quieres, del 1 al 5.",
        "¿Cuántos americano?",
    ]


async def test_help_keeps_attempts(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1", "x")
    await chat.send("ayuda")
    await chat.send("y")
    assert chat.state == "inicio.menu"


async def test_greeting_mid_flow_repeats_the_question(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    replies = await chat.send("Buenas!")
    assert chat.state == "pedido.cantidad"
    assert [message_text(reply) for reply in replies] == [
        "¡Hola de nuevo! Sigamos donde nos quedamos.",
        "¿Cuántos americano?",
    ]


async def test_language_choice_changes_messages(chat: Conversation) -> None:
    await chat.send("hola")
    replies = await chat.send("english")
    assert message_text(replies[-1]).startswith("What would you like to do?")
    assert "Order coffee" in message_text(replies[-1])
    await chat.send("order coffee")
    assert chat.state == "pedido.tipo"


async def test_external_event_moves_waiting_state(chat: Conversation, kitchen: Kitchen) -> None:
    await chat.send_all("hola", "estado")
    assert chat.state == "inicio.esperando"
    assert chat.session is not None and chat.session.deadline is None
    replies = await chat.send(ExternalEvent("cafe_listo"))
    assert chat.state == "inicio.menu"
    assert message_text(replies[0]) == "Tu café está listo."


async def test_external_event_ignored_elsewhere(chat: Conversation) -> None:
    await chat.send("hola")
    replies = await chat.send(ExternalEvent("cafe_listo"))
    assert replies == []
    assert chat.turns[-1].handled is False
    assert chat.state == "inicio.menu"


async def test_text_in_waiting_state_repeats_its_message(chat: Conversation) -> None:
    await chat.send_all("hola", "estado")
    replies = await chat.send("¿ya está?")
    assert [message_text(reply) for reply in replies] == ["Te aviso cuando esté listo."]


async def test_inactivity_timeout_runs_compensation(chat: Conversation, kitchen: Kitchen) -> None:
    await chat.send_all("hola", "pedir", "1")
    assert chat.session is not None and chat.session.deadline == chat.now.replace(minute=10)
    chat.advance(minutes=9)
    assert await chat.expire() == []
    chat.advance(minutes=2)
    replies = await chat.expire()
    assert "Cerré nuestra conversación por inactividad" in joined(replies)
    assert chat.state is None
    assert kitchen.released == 1
    assert "cafe" not in chat.slots


async def test_late_message_times_out_then_starts_over(
    chat: Conversation, kitchen: Kitchen
) -> None:
    await chat.send_all("hola", "pedir", "1")
    chat.advance(minutes=30)
    replies = await chat.send("2")
    assert kitchen.released == 1
    assert "inactividad" in message_text(replies[0])
    assert message_text(replies[1]) == "Bienvenido al café."
    assert chat.state == "inicio.menu"


@pytest.mark.parametrize(
    "event",
    [
        MediaMessage("image", "123", "image/jpeg"),
        MediaMessage("audio", "124", "audio/ogg"),
        MediaMessage("sticker", "125", "image/webp"),
        LocationMessage(-0.18, -78.46),
        UnsupportedMessage("contacts"),
    ],
)
async def test_non_text_messages_get_a_reprompt(chat: Conversation, event: Any) -> None:
    await chat.send_all("hola", "pedir", "1")
    replies = await chat.send(event)
    assert "solo puedo leer texto" in message_text(replies[0])
    assert message_text(replies[1]) == "¿Cuántos americano?"
    assert chat.state == "pedido.cantidad"
    assert chat.session is not None and chat.session.attempts == 0


async def test_photo_caption_is_read_as_text(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    await chat.send(MediaMessage("image", "123", "image/jpeg", caption="2"))
    assert chat.state == "pedido.confirmar"


async def test_failed_action_raises_action_error(chat: Conversation, kitchen: Kitchen) -> None:
    await chat.send_all("hola", "pedir", "1", "2")
    kitchen.fail = True
    with pytest.raises(ActionError, match=r"action .guardar. failed in state pedido\.guardando"):
        await chat.send("si")
    assert chat.state == "pedido.confirmar"


async def test_undeclared_outcome_is_a_runtime_error(chat: Conversation, kitchen: Kitchen) -> None:
    await chat.send("hola")
    kitchen.bad_outcome = "quemado"
    with pytest.raises(
        FlowRuntimeError, match="returned outcome 'quemado', which it does not declare"
    ):
        await chat.send("estado")


async def test_turn_does_not_change_the_session_passed_in(cafe_bot: Bot, kitchen: Kitchen) -> None:
    chat = Conversation(cafe_bot, services=kitchen)
    await chat.send_all("hola", "pedir")
    before = chat.session
    assert before is not None
    turn = await cafe_bot.run_turn(
        before, ChoiceReply("cafe_latte"), now=chat.now, services=kitchen
    )
    assert before.state == "pedido.tipo"
    assert "cafe" not in before.slots
    assert turn.session.state == "pedido.cantidad"


async def test_stored_state_missing_after_flow_change(cafe_bot: Bot, kitchen: Kitchen) -> None:
    chat = Conversation(cafe_bot, services=kitchen)
    await chat.send("hola")
    assert chat.session is not None
    chat.session.state = "pedido.borrado"
    replies = await chat.send("hola")
    assert "Actualizamos el bot" in message_text(replies[0])
    assert chat.state == "inicio.menu"


async def test_one_machine_and_pooled_models(cafe_bot: Bot, kitchen: Kitchen) -> None:
    machine = cafe_bot.machine
    for number in range(20):
        chat = Conversation(cafe_bot, phone=f"59399000{number:04d}", services=kitchen)
        await chat.send_all("hola", "pedir", "1", "2", "menu")
    assert cafe_bot.machine is machine
    # Turns run one after another here, so one pooled model serves them all.
    assert len(machine.models) == 1


async def test_first_message_command_is_not_lost(chat: Conversation) -> None:
    replies = await chat.send("olvidame")
    assert chat.state == "inicio.confirmando_olvido"
    assert message_text(replies[0]) == "Bienvenido al café."
    assert message_text(replies[-1]).startswith("¿Seguro?")


async def test_first_message_option_is_followed(chat: Conversation) -> None:
    await chat.send("Pedir café")
    assert chat.state == "pedido.tipo"


@pytest.mark.parametrize("first", ["hola", "1", "pedr cafe", "ayuda", "👍"])
async def test_first_message_otherwise_only_greets(chat: Conversation, first: str) -> None:
    await chat.send(first)
    assert chat.state == "inicio.menu"


async def test_back_returns_to_the_state_a_command_left(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir", "1")
    await chat.send("olvidame")
    assert chat.state == "inicio.confirmando_olvido"
    replies = await chat.send("no")
    assert chat.state == "pedido.cantidad"
    assert message_text(replies[-1]) == "¿Cuántos americano?"


async def test_back_without_a_command_goes_to_menu(chat: Conversation) -> None:
    await chat.send("olvidame")
    assert chat.session is not None
    chat.session.slots.pop("_return_state")
    await chat.send("no")
    assert chat.state == "inicio.menu"


@pytest.mark.parametrize(
    "answer",
    [
        "opción 1",
        "la primera",
        "uno",
        "pedir café por favor",
        "porfa pedir cafe",
        "pedr cafe",
        "Pedir cafee",
    ],
)
async def test_choice_matches_positions_courtesy_and_typos(chat: Conversation, answer: str) -> None:
    await chat.send("hola")
    await chat.send(answer)
    assert chat.state == "pedido.tipo"


@pytest.mark.parametrize("answer", ["pedir te", "cafe", "opcion 9"])
async def test_choice_rejects_distant_answers(chat: Conversation, answer: str) -> None:
    await chat.send("hola")
    await chat.send(answer)
    assert chat.state == "inicio.menu"
    assert chat.session is not None and chat.session.attempts == 1


async def test_row_matches_position_and_typo(chat: Conversation) -> None:
    await chat.send_all("hola", "pedir")
    await chat.send("la segunda")
    assert chat.slots["cafe"] == "latte"
    await chat.send("menu")
    await chat.send("pedir")
    await chat.send("amerricano")
    assert chat.slots["cafe"] == "americano"


async def test_emoji_alias_matches_with_skin_tone(chat: Conversation) -> None:
    await chat.send_all("hola", "olvidame")
    await chat.send("👍🏽")
    assert chat.state == "inicio.menu"


async def test_event_data_cannot_set_reserved_slots(chat: Conversation) -> None:
    await chat.send_all("hola", "estado")
    await chat.send(ExternalEvent("cafe_listo", {"_language": "en", "mesa": 4}))
    assert chat.slots["mesa"] == 4
    assert "_language" not in chat.slots


async def test_event_without_conversation_changes_nothing(cafe_bot: Bot, kitchen: Kitchen) -> None:
    # A pooled model that served another conversation must not leak its state here.
    other = Conversation(cafe_bot, phone="593990000009", services=kitchen)
    await other.send_all("hola", "pedir")
    chat = Conversation(cafe_bot, services=kitchen)
    replies = await chat.send(ExternalEvent("cafe_listo"))
    assert replies == []
    assert chat.state is None
    assert chat.session is not None and chat.session.deadline is None


async def test_first_message_option_skips_the_menu(chat: Conversation) -> None:
    replies = await chat.send("Pedir café")
    assert message_text(replies[0]) == "Bienvenido al café."
    assert not any(option_ids(reply) == ["pedir", "idioma", "estado"] for reply in replies)
    assert option_ids(replies[-1]) == ["cafe_americano", "cafe_latte"]
