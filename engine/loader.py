"""Load a directory of flow files into a `BotSpec`, reporting every problem with its place.

A bot directory contains `bot.yaml` (settings, commands, texts) and one YAML file per
phase. The loader reads them through `engine.source`, builds the spec, resolves the
states each branch names and then runs the whole-bot checks of `engine.checks`.
Nothing is raised until every file has been read, so `FlowError` lists all problems.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from datetime import UTC, timedelta, timezone, tzinfo
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from engine.actions import ActionRegistry
from engine.checks import check_bot
from engine.defaults import DEFAULT_TEXTS
from engine.errors import FlowError
from engine.source import Entry, Mark, Problems, SourceFile, did_you_mean
from engine.spec import (
    BotSpec,
    Branch,
    ChoiceSpec,
    CommandSpec,
    ExitSpec,
    Guard,
    InputSpec,
    MediaSpec,
    MessageSpec,
    PhaseSpec,
    RowsSpec,
    StateSpec,
    Target,
    Text,
    TimeoutSpec,
)
from engine.templates import Template, TemplateSyntaxError
from engine.text import normalize
from engine.validators import BUILTIN_VALIDATORS, OptionKind, ValidatorRegistry

__all__ = ["SETTINGS_FILE", "load_spec"]

SETTINGS_FILE = "bot.yaml"

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_CHOICE_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
# "min" before "m", and no letter after the unit, so "1h30m" reads as 1 h and 30 min.
_DURATION_PART = re.compile(r"(\d+)\s*(min|d|h|m|s)(?![a-z])")
_DURATION = re.compile(r"^\s*(?:\d+\s*(?:min|d|h|m|s)(?![a-z])\s*)+$")
_SLOT_REFERENCE = re.compile(r"^\{([a-z_][a-z0-9_]*)\}$")
_UNITS = {"d": 86400, "h": 3600, "min": 60, "m": 60, "s": 1}
_MESSAGE_KEYS = ("text", "image", "caption", "header", "footer")
_EXIT_KEYS = ("say", "action", "to")
_COMMAND_KEYS = ("words", "say", "action", "to", "help", "clear_slots")
_BOT_KEYS = (
    "bot",
    "language",
    "languages",
    "timezone",
    "start",
    "menu",
    "inactivity_timeout",
    "on_timeout",
    "attempts",
    "actions",
    "notification_template",
    "greetings",
    "commands",
    "texts",
    "settings",
    "slots",
)
_PHASE_KEYS = ("phase", "initial", "timeout", "on_timeout", "commands", "states")
_STATE_KEYS = (
    "say",
    "help",
    "set",
    "action",
    "on",
    "input",
    "media",
    "choices",
    "rows",
    "list_button",
    "retry",
    "attempts",
    "on_exhausted",
    "next",
    "events",
    "timeout",
    "on_timeout",
    "commands",
)
_CHOICE_KEYS = ("id", "title", "description", "section", "aliases", "next", "set")
_ROWS_KEYS = ("action", "slot", "next")
_MEDIA_KEYS = ("kinds", "action", "say", "next")
_MEDIA_KINDS = ("image", "document", "video", "audio", "sticker")
_BRANCH_KEYS = ("if", "to")
_DEFAULT_ATTEMPTS = 3
_DEFAULT_INACTIVITY = 600


def _import_file(path: str) -> ModuleType:
    name = "flow_actions_" + hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no Python module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _node_at(node: yaml.Node, path: tuple[str | int, ...]) -> yaml.Node:
    """Return the node at `path` below `node`, or the deepest one that exists."""
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = next((value for key, value in node.value if key.value == part), None)
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            found = node.value[part]
        else:
            found = None
        if found is None:
            return node
        node = found
    return node


def parse_duration(text: str) -> int | None:
    """Return the seconds in "10m", "1h30m", "90s", "2d" or "15 min", or None if malformed."""
    if not _DURATION.match(text):
        return None
    return sum(int(amount) * _UNITS[unit] for amount, unit in _DURATION_PART.findall(text))


def _resolve_timezone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Ecuador has no daylight saving time, so a fixed offset is exact there even
        # on systems without a time zone database.
        if name == "America/Guayaquil":
            return timezone(timedelta(hours=-5), "ECT")
        return None


class _Loader:
    def __init__(
        self,
        directory: str,
        actions: ActionRegistry | None,
        validators: ValidatorRegistry | None,
    ) -> None:
        self.directory = directory
        self.actions = actions
        # Explicit validators win; otherwise the actions module may provide its own.
        self.validators_given = validators is not None
        self.validators = validators or BUILTIN_VALIDATORS
        self.settings_node: yaml.Node | None = None
        self.settings_source: SourceFile | None = None
        self.problems = Problems()
        self.language = "es"
        self.languages: tuple[str, ...] = ("es",)
        self.digest = hashlib.sha256()
        # Set when a file could not be parsed, so whole-bot checks would mislead.
        self.unreadable = False
        self.bot_commands: dict[str, CommandSpec] = {}
        self.phase_commands: dict[str, dict[str, CommandSpec | None]] = {}

    # --- entry point -----------------------------------------------------------------

    def load(self) -> tuple[BotSpec, ActionRegistry]:
        settings_path = os.path.join(self.directory, SETTINGS_FILE)
        if not os.path.isdir(self.directory):
            self.problems.add(
                Mark(self.directory, 1, 1),
                "flow directory not found, pass the directory that contains bot.yaml",
            )
            raise FlowError(self.problems.items)
        if not os.path.isfile(settings_path):
            self.problems.add(
                Mark(settings_path, 1, 1),
                "bot settings file not found, create bot.yaml with at least `bot:`, `start:` and `menu:`",
            )
            raise FlowError(self.problems.items)

        bot = self._load_settings(settings_path)
        for name in sorted(os.listdir(self.directory)):
            if name == SETTINGS_FILE or not name.endswith((".yaml", ".yml")):
                continue
            self._load_phase(os.path.join(self.directory, name), bot)

        if not bot.phases and not self.problems:
            self.problems.add(
                Mark(settings_path, 1, 1),
                "the bot has no phases, add a phase file such as inicio.yaml beside bot.yaml",
            )
        actions = self.actions or ActionRegistry()
        self._check_settings(actions, bot)
        bot.version = self.digest.hexdigest()[:12]
        if not self.unreadable:
            # With a file unparsed, every target into its phases would be reported as
            # unknown too. The syntax error alone shows what to fix first.
            check_bot(bot, actions, self.problems)
        if self.problems:
            raise FlowError(self.problems.items)
        return bot, actions

    def _check_settings(self, actions: ActionRegistry, bot: BotSpec) -> None:
        """Run the actions module's checks of `settings`, pointing at the value at fault."""
        try:
            problems = actions.check_settings(bot.settings)
        except Exception as error:  # the check is the bot developer's code
            self.problems.add(
                bot.mark,
                f"the settings check failed ({type(error).__name__}: {error}), fix the check",
            )
            return
        for problem in problems:
            mark = bot.mark
            if self.settings_node is not None and self.settings_source is not None:
                node = _node_at(self.settings_node, problem.path)
                mark = self.settings_source.mark(node)
            where = ".".join(str(part) for part in ("settings", *problem.path))
            self.problems.add(mark, f"{where}: {problem.message}")

    def _read(self, path: str) -> tuple[SourceFile, yaml.Node | None]:
        source = SourceFile(path, self.problems)
        before = len(self.problems.items)
        root = source.load()
        if root is None and len(self.problems.items) > before:
            self.unreadable = True
        try:
            with open(path, "rb") as stream:
                self.digest.update(os.path.basename(path).encode() + b"\0" + stream.read())
        except OSError as error:
            self.problems.add(
                Mark(path, 1, 1), f"cannot read the file ({error.strerror}), check its permissions"
            )
        return source, root

    # --- bot.yaml --------------------------------------------------------------------

    def _load_settings(self, path: str) -> BotSpec:
        source, root = self._read(path)
        placeholder = Mark(path, 1, 1)
        entries = source.mapping(root, "the bot settings") if root is not None else None
        known = (
            source.check_keys(
                entries, _BOT_KEYS, "the bot settings", ("bot", "start", "menu"), root
            )
            if entries is not None
            else {}
        )

        self._read_languages(source, known)
        name = self._optional_text(source, known, "bot", "the bot name") or "bot"
        zone = self._read_timezone(source, known)
        start = (
            self._target(source, known["start"].value, "start")
            if "start" in known
            else Target("", placeholder)
        )
        menu = (
            self._target(source, known["menu"].value, "menu")
            if "menu" in known
            else Target("", placeholder)
        )

        inactivity = TimeoutSpec(placeholder, seconds=_DEFAULT_INACTIVITY)
        if "inactivity_timeout" in known:
            inactivity = self._timeout(source, known["inactivity_timeout"].value) or inactivity
        on_timeout = ExitSpec(mark=placeholder)
        if "on_timeout" in known:
            on_timeout = self._exit(source, known["on_timeout"].value, "on_timeout")
        attempts = _DEFAULT_ATTEMPTS
        if "attempts" in known:
            attempts = source.integer(known["attempts"].value, "attempts", minimum=1) or attempts

        notification_template = self._notification_template(
            source, known.get("notification_template")
        )
        actions_module = self._optional_text(source, known, "actions", "actions")
        if actions_module and self.actions is None:
            self.actions = self._import_actions(source, known["actions"].value, actions_module)

        greetings: tuple[str, ...] = ()
        if "greetings" in known:
            greetings = tuple(
                normalize(word)
                for word, _ in source.text_list(known["greetings"].value, "greetings")
            )

        commands: dict[str, CommandSpec] = {}
        if "commands" in known:
            for command_name, command in self._commands(
                source, known["commands"].value, {}
            ).items():
                if command is not None:
                    commands[command_name] = command

        self.bot_commands = commands
        texts = self._texts(source, known.get("texts"), placeholder)
        settings: dict[str, Any] = {}
        if "settings" in known:
            self.settings_node = known["settings"].value
            self.settings_source = source
            value = source.plain(known["settings"].value)
            if isinstance(value, dict):
                settings = value
            else:
                source.error(
                    known["settings"].value,
                    "settings must be a mapping, for example `settings: {banco: ...}`",
                )
        slots: dict[str, Any] = {}
        if "slots" in known:
            value = source.plain(known["slots"].value)
            if isinstance(value, dict):
                slots = value
            else:
                source.error(
                    known["slots"].value, "slots must be a mapping of slot names to initial values"
                )

        return BotSpec(
            name=name,
            mark=source.mark(root) if root is not None else placeholder,
            language=self.language,
            languages=self.languages,
            timezone=zone,
            start=start,
            menu=menu,
            inactivity_timeout=inactivity,
            on_timeout=on_timeout,
            attempts=attempts,
            actions_module=actions_module,
            notification_template=notification_template,
            greetings=greetings,
            commands=commands,
            texts=texts,
            settings=settings,
            slots=slots,
        )

    def _notification_template(
        self, source: SourceFile, entry: Entry | None
    ) -> dict[str, str] | None:
        if entry is None:
            return None
        entries = source.mapping(entry.value, "notification_template") or []
        known = source.check_keys(
            entries, ("name", "language"), "notification_template", ("name",), entry.value
        )
        name = source.text(known["name"].value, "name") if "name" in known else None
        language = (
            source.text(known["language"].value, "language")
            if "language" in known
            else self.language
        )
        if not name or not language:
            return None
        return {"name": name, "language": language}

    def _read_languages(self, source: SourceFile, known: dict[str, Entry]) -> None:
        if "language" in known:
            language = source.text(known["language"].value, "language")
            if language is not None and not _LANGUAGE.match(language):
                source.error(
                    known["language"].value,
                    f"invalid language {language!r}, use a two-letter code such as es",
                )
            elif language is not None:
                self.language = language
        languages = [self.language]
        if "languages" in known:
            for language, node in source.text_list(known["languages"].value, "languages"):
                if not _LANGUAGE.match(language):
                    source.error(
                        node, f"invalid language {language!r}, use a two-letter code such as en"
                    )
                elif language not in languages:
                    languages.append(language)
        self.languages = tuple(languages)

    def _read_timezone(self, source: SourceFile, known: dict[str, Entry]) -> tzinfo:
        name = self._optional_text(source, known, "timezone", "timezone") or "America/Guayaquil"
        zone = _resolve_timezone(name)
        if zone is None:
            source.error(
                known["timezone"].value,
                f"unknown time zone {name!r}, use an IANA name such as America/Guayaquil",
            )
            return UTC
        return zone

    def _import_actions(
        self, source: SourceFile, node: yaml.Node, reference: str
    ) -> ActionRegistry | None:
        """Import the actions module: a dotted module name, or a .py file beside bot.yaml."""
        try:
            if reference.endswith(".py"):
                module = _import_file(os.path.join(self.directory, reference))
            else:
                module = importlib.import_module(reference)
        except Exception as error:  # any import-time failure is the author's to fix
            source.error(
                node,
                f"cannot import the actions module {reference!r} ({type(error).__name__}: {error}), "
                "install it, fix the name or fix the error in the module",
            )
            return None
        validators = getattr(module, "validators", None)
        if isinstance(validators, ValidatorRegistry) and not self.validators_given:
            self.validators = validators
        registry = getattr(module, "actions", None)
        if not isinstance(registry, ActionRegistry):
            source.error(
                node,
                f"module {reference!r} has no `actions` registry, "
                "define `actions = ActionRegistry()` in it and register the actions there",
            )
            return None
        return registry

    def _texts(
        self, source: SourceFile, entry: Entry | None, mark: Mark
    ) -> dict[str, list[MessageSpec]]:
        texts: dict[str, list[MessageSpec]] = {}
        for key, translations in DEFAULT_TEXTS.items():
            templates = {
                language: Template.parse(translations.get(language, translations["en"]))
                for language in self.languages
            }
            texts[key] = [MessageSpec(mark, body=Text(templates, mark))]
        if entry is None:
            return texts
        entries = source.mapping(entry.value, "texts") or []
        for item in source.check_keys(entries, DEFAULT_TEXTS, "texts").values():
            texts[item.key] = self._messages(source, item.value, f"texts.{item.key}")
        return texts

    def _optional_text(
        self, source: SourceFile, known: dict[str, Entry], key: str, what: str
    ) -> str | None:
        if key not in known:
            return None
        return source.text(known[key].value, what)

    # --- phase files -------------------------------------------------------------------

    def _load_phase(self, path: str, bot: BotSpec) -> None:
        source, root = self._read(path)
        if root is None:
            if not self.problems:
                self.problems.add(
                    Mark(path, 1, 1), "the phase file is empty, add `phase:` and `states:`"
                )
            return
        entries = source.mapping(root, "a phase file")
        if entries is None:
            return
        known = source.check_keys(entries, _PHASE_KEYS, "a phase file", ("phase", "states"), root)
        name = self._optional_text(source, known, "phase", "phase")
        if name is None:
            return
        if not _IDENTIFIER.match(name):
            source.error(
                known["phase"].value,
                f"invalid phase name {name!r}, use lower-case letters, digits and underscores",
            )
            return
        if name in bot.phases:
            other = bot.phases[name]
            source.error(
                known["phase"].value,
                f"phase {name!r} is already defined in {other.path}, give each phase file its own name",
            )
            return

        phase = PhaseSpec(name=name, path=path, mark=source.mark(root))
        bot.phases[name] = phase
        if "timeout" in known:
            phase.timeout = self._timeout(source, known["timeout"].value)
        if "on_timeout" in known:
            phase.on_timeout = self._exit(
                source, known["on_timeout"].value, "on_timeout", phase=name
            )
        if "commands" in known:
            phase.commands = self._commands(
                source, known["commands"].value, bot.commands, phase=name
            )
        if "states" in known:
            self._states(source, known["states"].value, phase)
        if "initial" in known:
            initial = source.text(known["initial"].value, "initial")
            phase.initial_mark = source.mark(known["initial"].value)
            if initial is not None and initial not in phase.states:
                source.error(
                    known["initial"].value,
                    f"initial state {initial!r} is not a state of phase {name!r}"
                    f"{did_you_mean(initial, phase.states)}",
                )
            elif initial is not None:
                phase.initial = initial
        elif phase.states:
            phase.initial = next(iter(phase.states))

    def _states(self, source: SourceFile, node: yaml.Node, phase: PhaseSpec) -> None:
        entries = source.mapping(node, "states")
        if entries is None:
            return
        if not entries:
            source.error(node, f"phase {phase.name!r} has no states, add at least one")
        for entry in entries:
            if not _IDENTIFIER.match(entry.key):
                source.error(
                    entry.key_node,
                    f"invalid state name {entry.key!r}, use lower-case letters, digits and underscores",
                )
                continue
            state = StateSpec(
                id=f"{phase.name}.{entry.key}",
                phase=phase.name,
                name=entry.key,
                mark=source.mark(entry.key_node),
            )
            phase.states[entry.key] = state
            self._state(source, entry.value, state)

    def _state(self, source: SourceFile, node: yaml.Node, state: StateSpec) -> None:
        entries = source.mapping(node, f"state {state.id}")
        if entries is None:
            return
        known = source.check_keys(entries, _STATE_KEYS, f"state {state.id}")
        phase = state.phase
        if "say" in known:
            state.say = self._messages(source, known["say"].value, "say")
        if "help" in known:
            state.help = self._messages(source, known["help"].value, "help")

        if "set" in known:
            state.assignments = self._assignments(source, known["set"].value)
        if "action" in known:
            state.action = source.text(known["action"].value, "action")
            state.action_mark = source.mark(known["action"].value)
        if "on" in known:
            self._outcomes(source, known["on"].value, state)

        if "input" in known:
            state.input = self._input(source, known["input"].value)
        if "media" in known:
            state.media = self._media(source, known["media"].value, phase)
        if "choices" in known:
            state.choices = self._choices(source, known["choices"].value, phase)
        if "rows" in known:
            state.rows = self._rows(source, known["rows"].value, phase)
        if "list_button" in known:
            state.list_button = self._text(source, known["list_button"].value, "list_button")
        if "retry" in known:
            self._retry(source, known["retry"].value, state)
        if "attempts" in known:
            state.attempts = source.integer(known["attempts"].value, "attempts", minimum=1)
        if "on_exhausted" in known:
            state.exhausted = self._exit(
                source, known["on_exhausted"].value, "on_exhausted", phase=phase
            )

        if "next" in known:
            state.next = self._branches(source, known["next"].value, phase, "next")
        if "events" in known:
            self._events(source, known["events"].value, state)

        if "timeout" in known:
            state.timeout = self._timeout(source, known["timeout"].value)
        if "on_timeout" in known:
            state.on_timeout = self._exit(
                source, known["on_timeout"].value, "on_timeout", phase=phase
            )
        if "commands" in known:
            state.commands = self._commands(
                source, known["commands"].value, self._inherited_commands(phase), phase=phase
            )

        self._check_state_shape(source, node, state, known)

    def _inherited_commands(self, phase: str) -> dict[str, CommandSpec]:
        """Return the commands a state of `phase` overrides: the bot's, then the phase's."""
        merged: dict[str, CommandSpec | None] = dict(self.bot_commands)
        merged.update(self.phase_commands.get(phase, {}))
        return {name: command for name, command in merged.items() if command is not None}

    def _check_state_shape(
        self, source: SourceFile, node: yaml.Node, state: StateSpec, known: dict[str, Entry]
    ) -> None:
        """Report combinations of keys that cannot work together.

        The checks look at which keys are written, not at what was read from them, so a
        value already reported as invalid does not cause a second, misleading problem.
        """
        asks = "input" in known
        offers = "choices" in known or "rows" in known
        if asks and offers:
            source.error(
                known["input"].key_node,
                f"state {state.id} has both input and choices, split it into two states "
                "or turn the free answer into a choice",
            )
        if "choices" in known and "rows" in known:
            source.error(
                known["rows"].key_node,
                f"state {state.id} has both choices and rows, use one of them",
            )
        if "action" in known and (asks or offers or "events" in known or "media" in known):
            source.error(
                known["action"].key_node,
                f"state {state.id} runs an action and also waits for an answer, move the action "
                "to a state of its own that branches with `on:`",
            )
        if "on" in known and "action" not in known:
            source.error(
                known["on"].key_node,
                "`on:` branches on an action's outcome, add `action:` or use `next:`",
            )
        if "next" in known and offers:
            source.error(
                known["next"].key_node,
                "with choices each option has its own `next:`, move this one into the options",
            )
        for key in ("retry", "attempts", "on_exhausted"):
            if key in known and not (asks or offers):
                source.error(
                    known[key].key_node,
                    f"`{key}:` applies to states with input or choices, remove it",
                )
        if offers and "say" not in known:
            source.error(
                node,
                f"state {state.id} offers choices without a question, add `say:` with the question",
            )
        elif offers and state.say and state.say[-1].body is None:
            source.error(
                node,
                f"the options of state {state.id} are attached to its last message, "
                "which must be a text; add a text message at the end of `say:`",
            )

    # --- messages and texts ------------------------------------------------------------

    def _messages(self, source: SourceFile, node: yaml.Node, what: str) -> list[MessageSpec]:
        if isinstance(node, yaml.SequenceNode):
            if not node.value:
                source.error(node, f"{what} is an empty list, add a message or remove the key")
            return [
                message for item in node.value if (message := self._message(source, item, what))
            ]
        message = self._message(source, node, what)
        return [message] if message else []

    def _message(self, source: SourceFile, node: yaml.Node, what: str) -> MessageSpec | None:
        mark = source.mark(node)
        if not isinstance(node, yaml.MappingNode) or not any(
            isinstance(key, yaml.ScalarNode) and key.value in _MESSAGE_KEYS for key, _ in node.value
        ):
            body = self._text(source, node, what)
            return MessageSpec(mark, body=body) if body else None

        entries = source.mapping(node, f"a message in {what}") or []
        known = source.check_keys(entries, _MESSAGE_KEYS, f"a message in {what}")
        texts = {key: self._text(source, entry.value, key) for key, entry in known.items()}
        if "image" in known:
            if "text" in known:
                source.error(
                    known["text"].key_node,
                    "an image message has a `caption:`, not a `text:`; rename the key",
                )
            if "header" in known or "footer" in known:
                source.error(
                    node, "header and footer apply to text messages with options, not to images"
                )
            return MessageSpec(mark, body=texts.get("caption"), image=texts["image"])
        if "caption" in known:
            source.error(
                known["caption"].key_node, "`caption:` belongs to image messages, use `text:`"
            )
        if "text" not in known:
            source.error(node, f"a message in {what} needs `text:` or `image:`, add one")
            return None
        return MessageSpec(
            mark, body=texts["text"], header=texts.get("header"), footer=texts.get("footer")
        )

    def _text(self, source: SourceFile, node: yaml.Node, what: str) -> Text | None:
        """Read a translatable text: a template, or a mapping of language to template."""
        mark = source.mark(node)
        if isinstance(node, yaml.ScalarNode):
            raw = source.text(node, what)
            template = self._template(source, node, raw) if raw is not None else None
            if template is None:
                return None
            return Text({language: template for language in self.languages[:1]}, mark)

        entries = source.mapping(node, f"{what} (a text per language)")
        if entries is None:
            return None
        templates: dict[str, Template] = {}
        for entry in entries:
            if entry.key not in self.languages:
                hint = did_you_mean(entry.key, self.languages) or (
                    f", declare it in bot.yaml under `languages:` or use one of: {', '.join(self.languages)}"
                )
                source.error(entry.key_node, f"unknown language {entry.key!r} in {what}{hint}")
                continue
            raw = source.text(entry.value, f"{what} in {entry.key}")
            template = self._template(source, entry.value, raw) if raw is not None else None
            if template is not None:
                templates[entry.key] = template
        if self.language not in templates:
            if not self.problems:
                source.error(
                    node, f"{what} has no text in the default language {self.language!r}, add it"
                )
            return None
        return Text(templates, mark)

    def _template(self, source: SourceFile, node: yaml.Node, raw: str) -> Template | None:
        try:
            return Template.parse(raw)
        except TemplateSyntaxError as error:
            mark = source.mark(node)
            same_line = node.start_mark.line == node.end_mark.line
            if same_line and isinstance(node, yaml.ScalarNode) and node.style in (None, "'", '"'):
                quote = 1 if node.style else 0
                mark = Mark(mark.path, mark.line, mark.column + quote + error.offset)
            self.problems.add(mark, str(error))
            return None

    # --- inputs, choices and branches ----------------------------------------------------

    def _input(self, source: SourceFile, node: yaml.Node) -> InputSpec | None:
        entries = source.mapping(node, "input")
        if entries is None:
            return None
        by_key = {entry.key: entry for entry in entries}
        type_name = source.text(by_key["type"].value, "input type") if "type" in by_key else None
        if "type" not in by_key:
            source.error(node, "input is missing `type:`, for example `type: text`")
        validator = self.validators.get(type_name) if type_name else None
        if type_name and validator is None:
            known = ", ".join(self.validators.names())
            source.error(
                by_key["type"].value,
                f"unknown validator {type_name!r}{did_you_mean(type_name, self.validators.names())}"
                f" (known validators: {known})",
            )
        allowed = ["type", "slot", *(validator.options if validator else ())]
        known_entries = source.check_keys(
            entries, allowed if validator else [*by_key], "input", ("slot",), node
        )
        slot = source.text(known_entries["slot"].value, "slot") if "slot" in known_entries else None
        if slot is not None and not _IDENTIFIER.match(slot):
            source.error(
                known_entries["slot"].value,
                f"invalid slot name {slot!r}, use lower-case letters, digits and underscores",
            )
            slot = None
        if validator is None or slot is None:
            return None

        options: dict[str, Any] = {}
        for key, kind in validator.options.items():
            if key in known_entries:
                value = self._option(source, known_entries[key].value, key, kind)
                if value is not None:
                    options[key] = value
        for key in validator.required_options - options.keys():
            source.error(
                node, f"input of type {validator.name!r} needs the option `{key}:`, add it"
            )
        return InputSpec(validator.name, slot, validator, options, source.mark(node))

    def _option(self, source: SourceFile, node: yaml.Node, key: str, kind: OptionKind) -> Any:
        if kind is OptionKind.INTEGER:
            return source.integer(node, key)
        if kind is OptionKind.BOOLEAN:
            return source.boolean(node, key)
        if kind is OptionKind.INTEGER_OR_SLOT:
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
                return source.integer(node, key)
            text = source.text(node, key)
            if text is not None and _SLOT_REFERENCE.match(text):
                return text
            if text is not None:
                source.error(
                    node, f"{key} must be a whole number or a slot reference like {{max_cantidad}}"
                )
            return None
        text = source.text(node, key)
        if text is None:
            return None
        if kind is OptionKind.REGEX:
            try:
                return re.compile(text)
            except re.error as error:
                source.error(
                    node, f"invalid regular expression for {key}: {error}, fix the pattern"
                )
                return None
        return text

    def _choices(self, source: SourceFile, node: yaml.Node, phase: str) -> list[ChoiceSpec]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            source.error(
                node, "choices must be a non-empty list of options with `id`, `title` and `next`"
            )
            return []
        choices: list[ChoiceSpec] = []
        seen: dict[str, ChoiceSpec] = {}
        for item in node.value:
            choice = self._choice(source, item, phase)
            if choice is None:
                continue
            if choice.id in seen:
                first = seen[choice.id].mark
                source.error(
                    item,
                    f"duplicate choice id {choice.id!r} (first at line {first.line}), give each option its own id",
                )
                continue
            seen[choice.id] = choice
            choices.append(choice)
        return choices

    def _choice(self, source: SourceFile, node: yaml.Node, phase: str) -> ChoiceSpec | None:
        entries = source.mapping(node, "an option")
        if entries is None:
            return None
        known = source.check_keys(entries, _CHOICE_KEYS, "an option", ("id", "title", "next"), node)
        if not {"id", "title", "next"} <= known.keys():
            return None
        choice_id = source.text(known["id"].value, "id")
        title = self._text(source, known["title"].value, "title")
        branches = self._branches(source, known["next"].value, phase, "next")
        if choice_id is not None and not _CHOICE_ID.match(choice_id):
            source.error(
                known["id"].value,
                f"invalid choice id {choice_id!r}, use lower-case letters, digits and underscores",
            )
            return None
        if choice_id is None or title is None:
            return None
        choice = ChoiceSpec(choice_id, title, branches, source.mark(node))
        if "description" in known:
            choice.description = self._text(source, known["description"].value, "description")
        if "section" in known:
            choice.section = self._text(source, known["section"].value, "section")
        if "aliases" in known:
            # Kept as written: emoji aliases ("👍") normalise to nothing.
            choice.aliases = tuple(
                word for word, _ in source.text_list(known["aliases"].value, "aliases")
            )
        if "set" in known:
            choice.assignments = self._assignments(source, known["set"].value)
        return choice

    def _media(self, source: SourceFile, node: yaml.Node, phase: str) -> MediaSpec | None:
        entries = source.mapping(node, "media")
        if entries is None:
            return None
        known = source.check_keys(entries, _MEDIA_KEYS, "media", ("next",), node)
        if "next" not in known:
            return None
        kinds = {"image", "document"}
        if "kinds" in known:
            kinds = set()
            for kind, kind_node in source.text_list(known["kinds"].value, "kinds"):
                if kind in _MEDIA_KINDS:
                    kinds.add(kind)
                else:
                    source.error(
                        kind_node,
                        f"unknown media kind {kind!r}, use some of: {', '.join(_MEDIA_KINDS)}",
                    )
        media = MediaSpec(
            frozenset(kinds),
            self._branches(source, known["next"].value, phase, "next"),
            source.mark(node),
        )
        if "action" in known:
            media.action = source.text(known["action"].value, "action")
            media.mark = source.mark(known["action"].value)
        if "say" in known:
            media.say = self._messages(source, known["say"].value, "media.say")
        return media

    def _rows(self, source: SourceFile, node: yaml.Node, phase: str) -> RowsSpec | None:
        entries = source.mapping(node, "rows")
        if entries is None:
            return None
        known = source.check_keys(entries, _ROWS_KEYS, "rows", _ROWS_KEYS, node)
        if set(_ROWS_KEYS) - known.keys():
            return None
        action = source.text(known["action"].value, "action")
        slot = source.text(known["slot"].value, "slot")
        branches = self._branches(source, known["next"].value, phase, "next")
        if action is None or slot is None:
            return None
        return RowsSpec(action, slot, branches, source.mark(known["action"].value))

    def _branches(
        self, source: SourceFile, node: yaml.Node, phase: str | None, what: str
    ) -> list[Branch]:
        """Read `next:`: a state name, or a list of `{if: condition, to: state}` ending unguarded."""
        if isinstance(node, yaml.ScalarNode):
            return [Branch(self._target(source, node, what, phase))]
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            source.error(
                node, f"{what} must be a state name or a list of `- if: ...` / `to: ...` branches"
            )
            return []
        branches = []
        for item in node.value:
            if isinstance(item, yaml.ScalarNode):
                branches.append(Branch(self._target(source, item, what, phase)))
                continue
            entries = source.mapping(item, f"a branch of {what}")
            if entries is None:
                continue
            known = source.check_keys(entries, _BRANCH_KEYS, f"a branch of {what}", ("to",), item)
            if "to" not in known:
                continue
            guard = None
            if "if" in known:
                condition = source.text(known["if"].value, "if")
                try:
                    guard = Guard.parse(condition or "", source.mark(known["if"].value))
                except ValueError as error:
                    source.error(known["if"].value, str(error))
                    # Reported already; the branch order check would only add noise.
                    return []
            branches.append(Branch(self._target(source, known["to"].value, what, phase), guard))
        for index, branch in enumerate(branches):
            if branch.guard is None and index < len(branches) - 1:
                source.error(
                    node.value[index + 1],
                    "this branch can never be taken because an earlier branch has no `if:`, "
                    "move the unconditional branch to the end",
                )
                break
        if branches and branches[-1].guard is not None:
            source.error(
                node.value[-1],
                "the last branch has an `if:`, so no branch may match; add a final branch "
                "with only `to:` for the other cases",
            )
        return branches

    def _target(
        self, source: SourceFile, node: yaml.Node, what: str, phase: str | None = None
    ) -> Target:
        raw = source.text(node, what) or ""
        return Target(raw, source.mark(node), phase=phase)

    def _outcomes(self, source: SourceFile, node: yaml.Node, state: StateSpec) -> None:
        for entry in source.mapping(node, "on") or []:
            state.outcomes[entry.key] = self._branches(
                source, entry.value, state.phase, f"on.{entry.key}"
            )
            state.outcome_marks[entry.key] = source.mark(entry.key_node)

    def _events(self, source: SourceFile, node: yaml.Node, state: StateSpec) -> None:
        for entry in source.mapping(node, "events") or []:
            if not _IDENTIFIER.match(entry.key):
                source.error(
                    entry.key_node,
                    f"invalid event name {entry.key!r}, use lower-case letters, digits and underscores",
                )
                continue
            state.events[entry.key] = self._branches(
                source, entry.value, state.phase, f"events.{entry.key}"
            )

    def _retry(self, source: SourceFile, node: yaml.Node, state: StateSpec) -> None:
        """Read `retry:`: messages for any invalid answer, or messages per reason."""
        is_reason_map = isinstance(node, yaml.MappingNode) and not any(
            isinstance(key, yaml.ScalarNode)
            and (key.value in _MESSAGE_KEYS or key.value in self.languages)
            for key, _ in node.value
        )
        if not is_reason_map:
            state.retry["default"] = self._messages(source, node, "retry")
            state.retry_marks["default"] = source.mark(node)
            return
        for entry in source.mapping(node, "retry") or []:
            state.retry[entry.key] = self._messages(source, entry.value, f"retry.{entry.key}")
            state.retry_marks[entry.key] = source.mark(entry.key_node)

    def _assignments(self, source: SourceFile, node: yaml.Node) -> dict[str, Any]:
        assignments: dict[str, Any] = {}
        for entry in source.mapping(node, "set") or []:
            if not _IDENTIFIER.match(entry.key) and entry.key != "_language":
                source.error(
                    entry.key_node,
                    f"invalid slot name {entry.key!r}, use lower-case letters, digits and underscores",
                )
                continue
            if not isinstance(entry.value, yaml.ScalarNode):
                source.error(entry.value, f"the value of {entry.key!r} must be a single value")
                continue
            assignments[entry.key] = source.plain(entry.value)
        return assignments

    def _timeout(self, source: SourceFile, node: yaml.Node) -> TimeoutSpec | None:
        mark = source.mark(node)
        if isinstance(node, yaml.MappingNode):
            entries = source.mapping(node, "timeout") or []
            known = source.check_keys(entries, ("until",), "timeout", ("until",), node)
            if "until" not in known:
                return None
            slot = source.text(known["until"].value, "until")
            return TimeoutSpec(mark, until_slot=slot) if slot else None
        text = source.text(node, "timeout")
        if text is None:
            return None
        if text.strip().lower() == "none":
            return TimeoutSpec(mark)
        seconds = parse_duration(text)
        if not seconds:
            source.error(
                node,
                f"invalid duration {text!r}, write a number and a unit (s, m, h, d) such as 10m or 1h30m, "
                "`none`, or `{until: slot}`",
            )
            return None
        return TimeoutSpec(mark, seconds=seconds)

    def _exit(
        self, source: SourceFile, node: yaml.Node, what: str, phase: str | None = None
    ) -> ExitSpec:
        entries = source.mapping(node, what)
        if entries is None:
            return ExitSpec(mark=source.mark(node))
        known = source.check_keys(entries, _EXIT_KEYS, what)
        return self._exit_entries(source, known, node, what, phase)

    def _exit_entries(
        self,
        source: SourceFile,
        known: dict[str, Entry],
        node: yaml.Node,
        what: str,
        phase: str | None,
    ) -> ExitSpec:
        exit_spec = ExitSpec(mark=source.mark(node))
        if "say" in known:
            exit_spec.say = self._messages(source, known["say"].value, f"{what}.say")
        if "action" in known:
            exit_spec.action = source.text(known["action"].value, "action")
            exit_spec.mark = source.mark(known["action"].value)
        if "to" in known:
            exit_spec.target = self._target(source, known["to"].value, "to", phase)
        return exit_spec

    def _commands(
        self,
        source: SourceFile,
        node: yaml.Node,
        inherited: dict[str, CommandSpec],
        phase: str | None = None,
    ) -> dict[str, CommandSpec | None]:
        """Read commands; at phase and state level an entry overrides the bot's (null disables it)."""
        commands: dict[str, CommandSpec | None] = {}
        for entry in source.mapping(node, "commands") or []:
            if (
                isinstance(entry.value, yaml.ScalarNode)
                and entry.value.tag == "tag:yaml.org,2002:null"
            ):
                commands[entry.key] = None
                continue
            commands[entry.key] = self._command(source, entry, inherited.get(entry.key), phase)
        return commands

    def _command(
        self, source: SourceFile, entry: Entry, base: CommandSpec | None, phase: str | None
    ) -> CommandSpec | None:
        what = f"command {entry.key!r}"
        entries = source.mapping(entry.value, what)
        if entries is None:
            return None
        known = source.check_keys(entries, _COMMAND_KEYS, what)
        words: tuple[str, ...] = base.words if base else ()
        if "words" in known:
            words = tuple(
                normalize(word) for word, _ in source.text_list(known["words"].value, "words")
            )
        if not words:
            source.error(entry.key_node, f"{what} needs `words:`, the words that trigger it")
        exit_spec = self._exit_entries(source, known, entry.value, what, phase)
        if base is not None:
            exit_spec.say = exit_spec.say if "say" in known else base.exit.say
            exit_spec.action = exit_spec.action if "action" in known else base.exit.action
            exit_spec.target = exit_spec.target if "to" in known else base.exit.target
        help_command = base.help if base else False
        if "help" in known:
            help_command = bool(source.boolean(known["help"].value, "help"))
        clear_slots = base.clear_slots if base else False
        if "clear_slots" in known:
            clear_slots = bool(source.boolean(known["clear_slots"].value, "clear_slots"))
        return CommandSpec(
            entry.key, words, exit_spec, source.mark(entry.key_node), help_command, clear_slots
        )


def load_spec(
    directory: str,
    *,
    actions: ActionRegistry | None = None,
    validators: ValidatorRegistry | None = None,
) -> tuple[BotSpec, ActionRegistry]:
    """Load and check the flow files in `directory`; raise FlowError listing every problem.

    `actions` defaults to the registry named by `actions:` in bot.yaml, imported as a
    Python module. `validators` defaults to that module's `validators` registry if it
    has one, else to the built-in validators.
    """
    loader = _Loader(directory.rstrip("/") or "/", actions, validators)
    return loader.load()
