"""Running turns: (session, inbound event, clock, services) -> (new session, replies).

The runtime does no I/O of its own. Actions are async functions handed in with the
bot, and the runtime awaits them between machine triggers inside the caller's
transaction. So the same inputs and action outcomes always give the same turn.

A turn classifies the inbound event (command, greeting, option, answer, external
event), fires one trigger on the shared machine, then settles: it enters each new
state, runs its action and sends its messages, and keeps moving through states that
do not wait until it reaches one that waits for the customer or for an event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from transitions import MachineError

from engine.actions import ActionContext, HookContext, Notification, Option
from engine.compiler import CompiledBot, CompiledState, SessionModel
from engine.errors import ActionError, FlowRuntimeError
from engine.events import (
    ChoiceReply,
    ExternalEvent,
    InboundEvent,
    LocationMessage,
    MediaMessage,
    TextInput,
    UnsupportedMessage,
)
from engine.matching import emoji_key, match_option
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
from engine.reserved import EMOJI_PREFIX, LANGUAGE_SLOT, RETURN_SLOT, ROWS_SLOT
from engine.session import Session, Turn
from engine.spec import CommandSpec, ExitSpec, MessageSpec
from engine.text import clean_input, normalize
from engine.validators import Invalid, ValidationContext

__all__ = ["Bot"]

logger = logging.getLogger(__name__)

# Moves through states that do not wait, within one turn. The loader rejects loops of
# such states, so reaching this means an action kept choosing outcomes in a cycle.
MAX_AUTOMATIC_STEPS = 50


class _ModelPool:
    """Models kept attached to the machine, reused turn after turn.

    `add_model` is linear in the number of attached models and resets the state, so
    models are added once and each turn restores its state with `set_state`.
    """

    def __init__(self, bot: CompiledBot) -> None:
        self._bot = bot
        self._free: list[SessionModel] = []

    @contextmanager
    def model(self) -> Iterator[SessionModel]:
        model = self._free.pop() if self._free else self._create()
        try:
            yield model
        finally:
            model.slots = {}
            self._free.append(model)

    def _create(self) -> SessionModel:
        model = SessionModel()
        self._bot.machine.add_model(model, initial=self._bot.spec.start.state)
        return model


class _TurnRun:
    """The mutable work of one turn; discarded when the turn ends."""

    def __init__(
        self,
        bot: Bot,
        model: SessionModel,
        session: Session,
        event: InboundEvent | None,
        now: datetime,
        services: Any,
    ) -> None:
        self.bot = bot
        self.compiled = bot.compiled
        self.spec = bot.compiled.spec
        self.machine = bot.compiled.machine
        self.model = model
        self.session = session
        self.event = event
        self.now = now
        self.services = services
        self.messages: list[OutgoingMessage] = []
        self.states: list[str] = []
        self.attempts = session.attempts
        self.question_start = 0
        model.slots = session.slots
        # Whether the model has this conversation's state; a pooled model keeps the
        # state of its previous turn until `set_state`.
        self.open = session.state is not None and session.state in self.compiled.states
        if session.state is not None and self.open:
            self.machine.set_state(session.state, model=model)

    # --- properties ----------------------------------------------------------------------

    @property
    def slots(self) -> dict[str, Any]:
        return self.model.slots

    @property
    def state(self) -> CompiledState:
        return self.compiled.states[self.model.state]

    @property
    def language(self) -> str:
        language = self.slots.get(LANGUAGE_SLOT)
        return language if language in self.spec.languages else self.spec.language

    def result(self, *, handled: bool = True) -> Turn:
        session = self.session
        open_conversation = self.open
        session.state = self.model.state if open_conversation else None
        session.slots = self.slots
        session.attempts = self.attempts if open_conversation else 0
        session.deadline = self.deadline() if open_conversation else None
        session.flow_version = self.spec.version
        session.updated_at = self.now
        return Turn(session, self.messages, self.states, handled)

    def deadline(self) -> datetime | None:
        timeout = self.state.timeout
        if timeout.seconds is not None:
            return self.now + timedelta(seconds=timeout.seconds)
        if timeout.until_slot is not None:
            value = self.slots.get(timeout.until_slot)
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                return moment
            seconds = self.spec.inactivity_timeout.seconds
            logger.warning(
                "timeout slot %s has no valid time; using the bot's inactivity timeout",
                timeout.until_slot,
            )
            return self.now + timedelta(seconds=seconds) if seconds else None
        return None

    # --- machine -------------------------------------------------------------------------

    def fire(self, trigger: str) -> None:
        """Fire `trigger` on the machine and settle in the state it leads to."""
        source = self.model.state
        try:
            moved = self.machine.trigger_event(self.model, trigger)
        except (MachineError, AttributeError) as error:
            raise FlowRuntimeError(f"trigger {trigger!r} is not valid in state {source}") from error
        if not moved:
            raise FlowRuntimeError(f"no branch of {trigger!r} matched in state {source}")
        logger.debug("%s --%s--> %s", source, trigger, self.model.state)

    async def move(self, trigger: str) -> None:
        self.fire(trigger)
        await self.settle()

    async def enter(self, state_id: str) -> None:
        """Set the state directly (new conversations) and settle there."""
        self.machine.set_state(state_id, model=self.model)
        self.open = True
        await self.settle()

    async def settle(self) -> None:
        """Enter the current state and keep moving until a state waits."""
        for _ in range(MAX_AUTOMATIC_STEPS):
            state = self.state
            spec = state.spec
            self.states.append(spec.id)
            self.attempts = 0
            self.slots.update(spec.assignments)
            if spec.rows:
                await self.load_rows(spec.rows.action)
            outcome = await self.call_action(spec.action) if spec.action else None
            # Where the question of the state that ends up waiting begins.
            self.question_start = len(self.messages)
            self.send(spec.say, state)
            if spec.action:
                self.fire(f"outcome_{outcome}" if outcome else "proceed")
            elif spec.next and not spec.waits:
                self.fire("proceed")
            else:
                return
        raise FlowRuntimeError(
            f"more than {MAX_AUTOMATIC_STEPS} automatic moves in one turn, last state {self.model.state}"
        )

    # --- actions -------------------------------------------------------------------------

    def action_context(self) -> ActionContext:
        return ActionContext(
            phone=self.session.phone,
            state=self.model.state,
            slots=self.slots,
            now=self.now,
            event=self.event,
            services=self.services,
            settings=self.spec.settings,
            language=self.language,
        )

    async def call_action(self, name: str) -> str | None:
        action = self.compiled.actions.get(name)
        if action is None or action.provides_rows:
            raise FlowRuntimeError(f"action {name!r} is not registered")
        context = self.action_context()
        try:
            outcome = await action.function(context)
        except Exception as error:
            raise ActionError(name, self.model.state) from error
        self.messages.extend(context.replies)
        if outcome is not None and not isinstance(outcome, str):
            raise FlowRuntimeError(
                f"action {name!r} returned {outcome!r}, expected an outcome name or None"
            )
        if outcome is not None and outcome not in action.outcomes:
            raise FlowRuntimeError(
                f"action {name!r} returned outcome {outcome!r}, which it does not declare"
            )
        if outcome is None and action.outcomes:
            raise FlowRuntimeError(
                f"action {name!r} returned no outcome; it declares {sorted(action.outcomes)}"
            )
        return outcome

    async def load_rows(self, name: str) -> None:
        action = self.compiled.actions.get(name)
        if action is None or not action.provides_rows:
            raise FlowRuntimeError(f"row provider {name!r} is not registered")
        context = self.action_context()
        try:
            options = await action.function(context)
        except Exception as error:
            raise ActionError(name, self.model.state) from error
        self.messages.extend(context.replies)
        if not isinstance(options, list) or not all(
            isinstance(option, Option) for option in options
        ):
            raise FlowRuntimeError(f"row provider {name!r} must return a list of Option")
        self.slots[ROWS_SLOT] = [
            {
                "id": option.id,
                "title": option.title,
                "description": option.description,
                "value": option.id if option.value is None else option.value,
                "section": option.section,
            }
            for option in options
        ]

    # --- rendering -------------------------------------------------------------------------

    def render(self, text: Any) -> str:
        return str(text.render(self.language, self.spec.language, self.slots, self.spec.timezone))

    def send(self, messages: list[MessageSpec], options_of: CompiledState | None = None) -> None:
        """Render `messages`; the last one carries the options of `options_of`, if any."""
        for index, message in enumerate(messages):
            last = index == len(messages) - 1
            if (
                last
                and options_of is not None
                and (options_of.spec.choices or options_of.spec.rows)
            ):
                self.messages.append(self.with_options(message, options_of))
            elif message.image is not None:
                caption = self.render(message.body) if message.body else None
                self.messages.append(ImageMessage(link=self.render(message.image), caption=caption))
            elif message.body is not None:
                self.messages.append(TextMessage(self.render(message.body)))

    def with_options(self, message: MessageSpec, state: CompiledState) -> OutgoingMessage:
        body = self.render(message.body) if message.body else ""
        header = self.render(message.header) if message.header else None
        footer = self.render(message.footer) if message.footer else None
        spec = state.spec
        if state.buttons:
            buttons = tuple(Button(choice.id, self.render(choice.title)) for choice in spec.choices)
            return ButtonsMessage(body, buttons, header, footer)
        label_text = spec.list_button or self.spec.texts["list_button"][0].body
        label = self.render(label_text)
        return ListMessage(body, label, self.sections(state), header, footer)

    def sections(self, state: CompiledState) -> tuple[Section, ...]:
        grouped: dict[str | None, list[Row]] = {}
        if state.spec.rows:
            for row in self.slots.get(ROWS_SLOT, []):
                grouped.setdefault(row.get("section"), []).append(
                    Row(str(row["id"]), str(row["title"]), row.get("description"))
                )
        for choice in state.spec.choices:
            section = self.render(choice.section) if choice.section else None
            description = self.render(choice.description) if choice.description else None
            grouped.setdefault(section, []).append(
                Row(choice.id, self.render(choice.title), description)
            )
        return tuple(Section(title, tuple(rows)) for title, rows in grouped.items())

    def ask_again(self) -> None:
        """Send the current state's question again, without running its action.

        A state whose question came from the state before it (it has no `say`) sends
        its help instead, so the customer is not left without an answer.
        """
        spec = self.state.spec
        self.send(spec.say if spec.say else spec.help, self.state)

    def send_text(self, key: str) -> None:
        self.send(self.spec.texts[key])

    # --- dispatch ------------------------------------------------------------------------------

    async def dispatch(self, event: InboundEvent) -> bool:
        """Handle `event` in the current state; return False when it meant nothing here."""
        if isinstance(event, ExternalEvent):
            return await self.on_external(event)
        if isinstance(event, ChoiceReply):
            return await self.on_choice_reply(event)
        if isinstance(event, TextInput):
            await self.on_text(clean_input(event.text))
            return True
        await self.on_other(event)
        return True

    async def on_external(self, event: ExternalEvent) -> bool:
        if event.name not in self.state.spec.events:
            logger.info("event %s ignored in state %s", event.name, self.model.state)
            return False
        for key, value in event.data.items():
            if key.startswith("_"):
                logger.warning(
                    "event %s: data key %s is reserved for the engine; ignored", event.name, key
                )
            else:
                self.slots[key] = value
        await self.move(f"event_{event.name}")
        return True

    async def on_choice_reply(self, event: ChoiceReply) -> bool:
        spec = self.state.spec
        if event.id in self.state.choice_ids:
            await self.choose(event.id)
            return True
        if spec.rows and self.find_row(event.id) is not None:
            await self.choose_row(event.id)
            return True
        # A tap on an option of an earlier message: read it as the words it shows.
        await self.on_text(clean_input(event.title or event.id))
        return True

    async def on_text(self, text: str) -> None:
        key = normalize(text)
        state = self.state
        command = state.command_words.get(key)
        if command is not None:
            await self.run_command(command)
            return
        if key and key in self.spec.greetings:
            self.send_text("resume")
            self.ask_again()
            return
        spec = state.spec
        if spec.choices or spec.rows:
            choice_id = self.match_choice(key, text)
            if choice_id is not None:
                await self.choose(choice_id)
                return
            row = self.match_row(key)
            if row is not None:
                await self.choose_row(str(row["id"]))
                return
            await self.invalid_answer("default")
            return
        if spec.input:
            await self.validate(text)
            return
        # A state that only waits for an external event: remind the customer.
        self.ask_again()

    async def on_other(self, event: InboundEvent) -> None:
        """Photos, audio, stickers, locations and unknown types where text is expected."""
        kind = getattr(
            event, "kind", "location" if isinstance(event, LocationMessage) else "unknown"
        )
        media = self.state.spec.media
        if isinstance(event, MediaMessage) and media is not None and event.kind in media.kinds:
            logger.info("%s accepted in state %s", event.kind, self.model.state)
            if media.action:
                await self.call_action(media.action)
            self.send(media.say)
            await self.move("media_received")
            return
        if isinstance(event, MediaMessage) and event.caption and self.state.spec.input:
            # A caption is text the customer wrote, so it is handled like a typed message.
            await self.on_text(clean_input(event.caption))
            return
        logger.info("%s message in state %s answered with a re-prompt", kind, self.model.state)
        assert isinstance(event, MediaMessage | LocationMessage | UnsupportedMessage)
        self.send_text("unsupported_message")
        self.ask_again()

    async def follow_first_message(self, event: InboundEvent) -> None:
        """Act on the message that opened the conversation when it already asks for something.

        Every new conversation starts with the greeting, but "asesor", "borrar mis datos"
        or "quiero comprar" as a first message should not be lost. Commands and exact
        option names count; greetings, numbers, typos and help do not. When the message
        is acted on, the question it answers (the menu) is not sent: the customer sees
        the greeting, then the answer to what they asked.
        """
        if isinstance(event, ChoiceReply) and event.id in self.state.choice_ids:
            del self.messages[self.question_start :]
            await self.choose(event.id)
            return
        if isinstance(event, TextInput):
            text = clean_input(event.text)
        elif isinstance(event, ChoiceReply):
            text = clean_input(event.title or event.id)
        else:
            return
        key = normalize(text)
        command = self.state.command_words.get(key)
        if command is not None and not command.help:
            del self.messages[self.question_start :]
            await self.run_command(command)
            return
        choice_id = self.state.choice_keys.get(self.language, {}).get(key)
        if key and not key.isdigit() and key not in self.spec.greetings and choice_id is not None:
            del self.messages[self.question_start :]
            await self.choose(choice_id)

    # --- moves ---------------------------------------------------------------------------------

    async def choose(self, choice_id: str) -> None:
        choice = next(choice for choice in self.state.spec.choices if choice.id == choice_id)
        self.slots.update(choice.assignments)
        await self.move(f"choose_{choice_id}")

    def find_row(self, row_id: str) -> dict[str, Any] | None:
        for row in self.slots.get(ROWS_SLOT, []):
            if str(row["id"]) == row_id:
                return dict(row)
        return None

    def match_choice(self, key: str, text: str) -> str | None:
        keys = self.state.choice_keys.get(self.language, {})
        if not key:
            return keys.get(EMOJI_PREFIX + emoji_key(text))
        return match_option(key, keys)

    def match_row(self, key: str) -> dict[str, Any] | None:
        rows = self.slots.get(ROWS_SLOT, []) if self.state.spec.rows else []
        keys: dict[str, str] = {}
        for number, row in enumerate(rows, start=1):
            for candidate in (str(number), normalize(str(row["id"])), normalize(str(row["title"]))):
                keys.setdefault(candidate, str(row["id"]))
        row_id = match_option(key, keys) if key else None
        return self.find_row(row_id) if row_id is not None else None

    async def choose_row(self, row_id: str) -> None:
        rows_spec = self.state.spec.rows
        row = self.find_row(row_id)
        assert rows_spec is not None and row is not None
        self.slots[rows_spec.slot] = row["value"]
        await self.move("row_chosen")

    async def validate(self, text: str) -> None:
        input_spec = self.state.spec.input
        assert input_spec is not None
        options = {key: self.resolve_option(value) for key, value in input_spec.options.items()}
        context = ValidationContext(self.now, self.spec.timezone)
        result = input_spec.validator(text, options, context)
        if isinstance(result, Invalid):
            await self.invalid_answer(result.reason)
            return
        self.slots[input_spec.slot] = result.value
        await self.move("input_valid")

    def resolve_option(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return self.slots.get(value[1:-1], 0)
        return value

    async def invalid_answer(self, reason: str) -> None:
        state = self.state
        self.attempts += 1
        if self.attempts >= state.max_attempts:
            logger.info("attempts exhausted in state %s", self.model.state)
            await self.run_exit(state.exhausted, "input_exhausted")
            return
        spec = state.spec
        retry = spec.retry.get(reason) or spec.retry.get("default")
        if retry is None:
            key = "invalid_choice" if (spec.choices or spec.rows) else "invalid_input"
            retry = self.spec.texts[key]
            if spec.choices or spec.rows:
                self.send(retry)
                self.ask_again()
                return
        self.send(retry, state)

    async def run_exit(self, exit_spec: ExitSpec, trigger: str) -> None:
        if exit_spec.action:
            await self.call_action(exit_spec.action)
        self.send(exit_spec.say)
        if exit_spec.target is not None:
            await self.move(trigger)

    async def run_command(self, command: CommandSpec) -> None:
        logger.info("command %s in state %s", command.name, self.model.state)
        if command.exit.action:
            await self.call_action(command.exit.action)
        if command.help:
            self.send(self.state.spec.help or self.spec.texts["no_help"])
        # Rendered before the slots are cleared, so the message can use what the action set.
        self.send(command.exit.say)
        if command.clear_slots:
            self.bot.reset_slots(self.slots)
        if command.exit.target is not None:
            self.slots[RETURN_SLOT] = self.model.state
        self.fire(f"command_{command.name}")
        if command.exit.target is None:
            self.ask_again()
        else:
            await self.settle()


class Bot:
    """A loaded bot: its compiled machine, its actions and a pool of models.

    Create it with `engine.load_bot`. One Bot serves every conversation; methods that
    take a session return a new `Turn` and never change the session passed in.
    """

    def __init__(self, compiled: CompiledBot) -> None:
        self.compiled = compiled
        self._pool = _ModelPool(compiled)

    @property
    def name(self) -> str:
        return self.compiled.spec.name

    @property
    def version(self) -> str:
        """Hash of the flow files; stored with each session."""
        return self.compiled.spec.version

    @property
    def machine(self) -> Any:
        return self.compiled.machine

    @property
    def settings(self) -> dict[str, Any]:
        return self.compiled.spec.settings

    async def start(self, *, now: datetime, services: Any = None) -> None:
        """Run the actions module's startup hooks, such as loading a catalogue into storage."""
        context = HookContext(services, self.settings, now)
        for hook in self.compiled.actions.startup_hooks:
            await hook(context)

    async def run_periodic(self, *, now: datetime, services: Any = None) -> list[Notification]:
        """Run the actions module's periodic hooks; return the notifications they produce."""
        context = HookContext(services, self.settings, now)
        notifications: list[Notification] = []
        for hook in self.compiled.actions.periodic_hooks:
            notifications.extend(await hook(context))
        return notifications

    @property
    def notification_template(self) -> dict[str, str] | None:
        return self.compiled.spec.notification_template

    def reset_slots(self, slots: dict[str, Any]) -> None:
        """Clear `slots` back to the bot's initial slots, keeping the customer's language."""
        language = slots.get(LANGUAGE_SLOT)
        slots.clear()
        slots.update(self.compiled.spec.slots)
        if language is not None:
            slots[LANGUAGE_SLOT] = language

    def render_text(
        self, key: str, session: Session | None, now: datetime
    ) -> list[OutgoingMessage]:
        """Render one of the bot's texts (see engine.defaults) in the session's language."""
        with self._pool.model() as model:
            run = _TurnRun(self, model, (session or self.new_session("")).copy(), None, now, None)
            run.send_text(key)
            return run.messages

    def new_session(self, phone: str) -> Session:
        return Session(phone, slots=dict(self.compiled.spec.slots), flow_version=self.version)

    def is_expired(self, session: Session, now: datetime) -> bool:
        return (
            session.state is not None and session.deadline is not None and now >= session.deadline
        )

    async def run_turn(
        self,
        session: Session | None,
        event: InboundEvent,
        *,
        phone: str | None = None,
        now: datetime,
        services: Any = None,
    ) -> Turn:
        """Run one turn for `event`; `session` is None for a number never seen before.

        `now` must be timezone-aware. An expired session is timed out first (its
        compensating actions run and the notice is sent), then `event` starts a new
        conversation. Raises ActionError when an action fails, so the caller can roll
        back everything the turn did.
        """
        if session is None:
            if phone is None:
                raise ValueError("run_turn needs `phone` when there is no session")
            session = self.new_session(phone)
        with self._pool.model() as model:
            run = _TurnRun(self, model, session.copy(), event, now, services)
            handled = await self._run(run, event)
            return run.result(handled=handled)

    async def _run(self, run: _TurnRun, event: InboundEvent) -> bool:
        state = run.session.state
        if state is not None and state not in self.compiled.states:
            logger.warning("stored state %s no longer exists; restarting the conversation", state)
            if not isinstance(event, ExternalEvent):
                run.send_text("flow_updated")
            self.reset_slots(run.slots)
            state = None
        elif state is not None and self.is_expired(run.session, run.now):
            state = await self._time_out(run)
        if state is None:
            if isinstance(event, ExternalEvent):
                return False
            await run.enter(self.compiled.spec.start.state)
            await run.follow_first_message(event)
            return True
        return await run.dispatch(event)

    async def _time_out(self, run: _TurnRun) -> str | None:
        """Apply the current state's timeout; return the new state, None when closed."""
        handler = run.state.on_timeout
        logger.info("session in state %s timed out", run.model.state)
        if handler.action:
            await run.call_action(handler.action)
        run.send(handler.say)
        if handler.target is None:
            self.reset_slots(run.slots)
            run.open = False
            return None
        await run.move("timeout")
        return str(run.model.state)

    async def expire(self, session: Session, *, now: datetime, services: Any = None) -> Turn:
        """Time out `session`: run its compensating action, send the notice, close or move it."""
        with self._pool.model() as model:
            run = _TurnRun(self, model, session.copy(), None, now, services)
            if not run.open:
                return run.result(handled=False)
            await self._time_out(run)
            return run.result()

    async def send_event(
        self,
        session: Session,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        now: datetime,
        services: Any = None,
    ) -> Turn:
        """Deliver an external event (such as `pago_confirmado`) to a conversation."""
        return await self.run_turn(
            session, ExternalEvent(name, data or {}), now=now, services=services
        )
