"""A declarative state-machine chatbot engine for WhatsApp.

Flow files in YAML describe a bot's phases and states; `load_bot` checks them,
compiles them into one `transitions` machine and returns a `Bot` that runs turns:

    bot = load_bot("flows")
    turn = await bot.run_turn(session, TextInput("hola"), phone="593...", now=now)

The engine does no I/O. Storage, HTTP and the console live in other packages.
"""

from __future__ import annotations

from engine.actions import (
    Action,
    ActionContext,
    ActionRegistry,
    HookContext,
    Notification,
    Option,
    SettingsProblem,
)
from engine.compiler import compile_bot
from engine.errors import ActionError, EngineError, FlowError, FlowProblem, FlowRuntimeError
from engine.events import (
    ChoiceReply,
    ExternalEvent,
    InboundEvent,
    LocationMessage,
    MediaMessage,
    TextInput,
    UnsupportedMessage,
)
from engine.loader import load_spec
from engine.messages import (
    Button,
    ButtonsMessage,
    ImageMessage,
    ListMessage,
    OutgoingMessage,
    Row,
    Section,
    TextMessage,
)
from engine.runtime import Bot
from engine.session import Session, Turn
from engine.validators import BUILTIN_VALIDATORS, ValidatorRegistry

__all__ = [
    "BUILTIN_VALIDATORS",
    "Action",
    "ActionContext",
    "ActionError",
    "ActionRegistry",
    "Bot",
    "Button",
    "ButtonsMessage",
    "ChoiceReply",
    "EngineError",
    "ExternalEvent",
    "FlowError",
    "FlowProblem",
    "FlowRuntimeError",
    "HookContext",
    "ImageMessage",
    "InboundEvent",
    "ListMessage",
    "LocationMessage",
    "MediaMessage",
    "Notification",
    "Option",
    "OutgoingMessage",
    "Row",
    "Section",
    "Session",
    "SettingsProblem",
    "TextInput",
    "TextMessage",
    "Turn",
    "UnsupportedMessage",
    "ValidatorRegistry",
    "load_bot",
]


def load_bot(
    directory: str,
    *,
    actions: ActionRegistry | None = None,
    validators: ValidatorRegistry | None = None,
) -> Bot:
    """Load, check and compile the bot in `directory`; raise FlowError listing every problem.

    `actions` defaults to the registry of the module named by `actions:` in bot.yaml.
    """
    spec, registry = load_spec(directory, actions=actions, validators=validators)
    return Bot(compile_bot(spec, registry))
