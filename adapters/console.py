"""The terminal chat: talk to a bot line by line, with the same runtime and store as the server.

Each line on stdin is one customer message and the replies go to stdout, buttons and
list rows numbered so that typing the number picks them. Lines that start with "/"
simulate what a keyboard cannot send (see CHAT_HELP). With piped stdin there is no
prompt and no colour, so the output can be compared in tests.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TextIO

from adapters.conversation import ConversationService, utc_now
from engine import (
    Bot,
    ButtonsMessage,
    ChoiceReply,
    ExternalEvent,
    ImageMessage,
    InboundEvent,
    ListMessage,
    LocationMessage,
    MediaMessage,
    OutgoingMessage,
    TextInput,
    TextMessage,
    Turn,
    UnsupportedMessage,
)
from storage import Store

__all__ = ["CHAT_HELP", "format_message", "run_chat"]

CHAT_HELP = """\
Type what a customer would type. Lines starting with / simulate other messages:
  /tap ID              tap the button or list row with this id
  /image [CAPTION]     send a photo       /document NAME   send a PDF
  /audio               send a voice note  /sticker         send a sticker
  /location            send a location    /contacts        send a contact card
  /event NAME [k=v...] deliver an external event, such as pago_confirmado
  /wait MINUTES        move the clock forward and run the inactivity timeouts
  /state               print the current state and slots
  /help                show this help     /quit            leave the chat"""


class _Clock:
    """Real time plus the offset that /wait adds, so timeouts can be tried in seconds."""

    def __init__(self, source: Callable[[], datetime] = utc_now) -> None:
        self._source = source
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return self._source() + self.offset


def format_message(message: OutgoingMessage) -> str:
    """Render a message as plain text; options are numbered as the customer would type them."""
    if isinstance(message, TextMessage):
        return message.body
    if isinstance(message, ImageMessage):
        source = message.link or f"media {message.media_id}"
        caption = f" {message.caption}" if message.caption else ""
        return f"[image: {source}]{caption}"
    lines = []
    if message.header:
        lines.append(f"*{message.header}*")
    lines.append(message.body)
    if isinstance(message, ButtonsMessage):
        lines += [f"{number}. {button.title}" for number, button in enumerate(message.buttons, 1)]
    elif isinstance(message, ListMessage):
        lines.append(f"[{message.button}]")
        number = 0
        for section in message.sections:
            if section.title:
                lines.append(f"{section.title}:")
            for row in section.rows:
                number += 1
                description = f" ({row.description})" if row.description else ""
                lines.append(f"{number}. {row.title}{description}")
    if message.footer:
        lines.append(f"_{message.footer}_")
    return "\n".join(lines)


@dataclass
class _ChatOptions:
    phone: str
    trace: bool
    interactive: bool


class _Chat:
    def __init__(
        self, service: ConversationService, clock: _Clock, options: _ChatOptions, output: TextIO
    ) -> None:
        self.service = service
        self.clock = clock
        self.options = options
        self.output = output

    def print(self, text: str = "") -> None:
        self.output.write(text + "\n")
        self.output.flush()

    def error(self, text: str) -> None:
        sys.stderr.write(f"chat: {text}\n")
        sys.stderr.flush()

    def show(self, turn: Turn) -> None:
        self.show_messages(turn.messages)
        if self.options.trace:
            self.print(f"# state: {turn.session.state or 'none'}")

    def show_messages(self, messages: list[OutgoingMessage]) -> None:
        for message in messages:
            body = format_message(message)
            if self.options.interactive:
                body = f"\033[32m{body}\033[0m"
            self.print(body)
            self.print()

    async def say(self, event: InboundEvent) -> None:
        self.show(await self.service.handle(self.options.phone, event))

    async def line(self, line: str) -> bool:
        """Handle one input line; return False to leave the chat."""
        if not line.strip():
            return True
        if not line.startswith("/") or line.startswith("//"):
            await self.say(TextInput(line[1:] if line.startswith("//") else line))
            return True
        return await self.command(line)

    async def command(self, line: str) -> bool:
        try:
            words = shlex.split(line[1:])
        except ValueError as error:
            self.error(f"cannot parse {line!r}: {error}")
            return True
        name, arguments = (words[0], words[1:]) if words else ("help", [])
        if name in ("quit", "exit"):
            return False
        if name == "help":
            self.print(CHAT_HELP)
        elif name == "wait":
            await self.wait(arguments)
        elif name == "state":
            session = await self.service.session(self.options.phone)
            self.print(f"# state: {session.state if session and session.state else 'none'}")
            self.print(f"# slots: {session.slots if session else {}}")
        else:
            event = self.simulated_event(name, arguments)
            if event is not None:
                await self.say(event)
        return True

    def simulated_event(self, name: str, arguments: list[str]) -> InboundEvent | None:
        """Build the event a slash command stands for; report a missing argument."""
        text = " ".join(arguments)
        if name in ("tap", "event") and not arguments:
            example = "/tap comprar" if name == "tap" else "/event pago_confirmado"
            self.error(f"/{name} needs a name, as in {example}")
            return None
        if name == "tap":
            return ChoiceReply(arguments[0], " ".join(arguments[1:]))
        if name == "image":
            return MediaMessage("image", "chat-image", "image/jpeg", caption=text)
        if name == "document":
            return MediaMessage(
                "document", "chat-document", "application/pdf", filename=text or "recibo.pdf"
            )
        if name in ("audio", "sticker", "video"):
            return MediaMessage(name, f"chat-{name}")
        if name == "location":
            return LocationMessage(-0.1807, -78.4678, "Quito", "")
        if name == "contacts":
            return UnsupportedMessage("contacts")
        if name == "event":
            data = dict(argument.split("=", 1) for argument in arguments[1:] if "=" in argument)
            return ExternalEvent(arguments[0], data)
        self.error(f"unknown chat command /{name}; type /help for the list")
        return None

    async def wait(self, arguments: list[str]) -> None:
        try:
            minutes = float(arguments[0]) if arguments else 0.0
        except ValueError:
            minutes = -1
        if minutes <= 0:
            self.error("/wait needs a positive number of minutes, as in /wait 11")
            return
        self.clock.offset += timedelta(minutes=minutes)
        told = await self.service.sweep()
        for phone, messages in told:
            if phone == self.options.phone:
                self.show_messages(messages)
        if self.options.trace:
            session = await self.service.session(self.options.phone)
            self.print(f"# state: {session.state if session and session.state else 'none'}")


async def run_chat(
    bot: Bot,
    db_path: str,
    *,
    phone: str,
    trace: bool,
    input_stream: TextIO,
    output: TextIO,
) -> None:
    """Read customer lines from `input_stream` until it ends, printing the bot's replies."""
    interactive = input_stream.isatty() and output.isatty()
    store = await Store.open(db_path)
    clock = _Clock()
    service = ConversationService(bot, store, clock)
    await service.start()
    chat = _Chat(
        service,
        clock,
        _ChatOptions(phone, trace, interactive),
        output,
    )
    try:
        if interactive:
            chat.print(
                f"Chatting with bot {bot.name!r} as {phone}. Type /help for options, Ctrl-D to leave."
            )
        while True:
            if interactive:
                output.write("> ")
                output.flush()
            line = input_stream.readline()
            if not line:
                break
            if not await chat.line(line.rstrip("\r\n")):
                break
    finally:
        await store.close()
