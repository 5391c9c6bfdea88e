"""Whole-bot checks that need every flow file: targets, actions, limits, slots, graph.

Each check adds problems with the place in the YAML that causes them and the fix.
They run after every file has been read, in `load_spec`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from engine.actions import ActionRegistry
from engine.messages import LIMITS
from engine.reserved import BACK, RESERVED_SLOTS
from engine.source import Mark, Problems, did_you_mean
from engine.spec import (
    BotSpec,
    Branch,
    ChoiceSpec,
    CommandSpec,
    ExitSpec,
    MessageSpec,
    StateSpec,
    Target,
    Text,
)

__all__ = ["check_bot", "effective_commands", "uses_buttons"]


def uses_buttons(state: StateSpec) -> bool:
    """Return True when a state's options show as reply buttons rather than as a list.

    Up to three options without descriptions or sections fit in buttons. Anything
    else, and every dynamic row list, shows as a list message.
    """
    if state.rows or not state.choices:
        return False
    plain = all(choice.description is None and choice.section is None for choice in state.choices)
    return plain and len(state.choices) <= LIMITS.buttons


def effective_commands(bot: BotSpec, state: StateSpec) -> dict[str, CommandSpec]:
    """Return the commands available in `state`: the bot's, then the phase's, then the state's."""
    merged: dict[str, CommandSpec | None] = dict(bot.commands)
    merged.update(bot.phases[state.phase].commands)
    merged.update(state.commands)
    return {name: command for name, command in merged.items() if command is not None}


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    writes: frozenset[str] = frozenset()


class _Checker:
    def __init__(self, bot: BotSpec, actions: ActionRegistry, problems: Problems) -> None:
        self.bot = bot
        self.actions = actions
        self.problems = problems
        self.states = bot.states

    def run(self) -> None:
        reading_failed = bool(self.problems)
        self.check_phases()
        self.resolve_targets()
        if self.problems or reading_failed:
            # The graph checks below would only repeat unresolved targets.
            return
        self.check_actions()
        self.check_inputs()
        self.check_limits()
        self.check_ways_out()
        self.check_automatic_loops()
        edges = self.edges()
        self.check_reachable(edges)
        self.check_slots(edges)

    # --- targets ---------------------------------------------------------------------

    def check_phases(self) -> None:
        for phase in self.bot.phases.values():
            if not phase.initial and phase.states:
                self.problems.add(
                    phase.mark, f"phase {phase.name!r} has no initial state, add `initial:`"
                )

    def all_targets(self) -> Iterator[Target]:
        yield self.bot.start
        yield self.bot.menu
        yield from self._exit_targets(self.bot.on_timeout)
        for command in self.bot.commands.values():
            yield from self._exit_targets(command.exit)
        for phase in self.bot.phases.values():
            for phase_command in phase.commands.values():
                if phase_command is not None:
                    yield from self._exit_targets(phase_command.exit)
            if phase.on_timeout:
                yield from self._exit_targets(phase.on_timeout)
            for state in phase.states.values():
                for branch in state.branches():
                    yield branch.target
                for state_command in state.commands.values():
                    if state_command is not None:
                        yield from self._exit_targets(state_command.exit)

    @staticmethod
    def _exit_targets(exit_spec: ExitSpec) -> Iterator[Target]:
        if exit_spec.target is not None:
            yield exit_spec.target

    def resolve_targets(self) -> None:
        branch_targets = {
            id(branch.target)
            for state in self.states.values()
            for branch in state.decision_branches()
        }
        for target in self.all_targets():
            if target.state:
                continue
            if target.raw.strip() == "back":
                if id(target) in branch_targets:
                    target.state = BACK
                else:
                    self.problems.add(
                        target.mark,
                        "`back` returns to the state a command left, so it works only in `next:`, "
                        "`on:`, `events:` and options; name a state here",
                    )
                continue
            self.resolve(target)

    def resolve(self, target: Target) -> None:
        raw = target.raw.strip()
        phases = self.bot.phases
        if not raw:
            return  # The reader already reported the empty value.
        if "." in raw:
            phase_name, _, state_name = raw.partition(".")
            phase = phases.get(phase_name)
            if phase is None:
                self.problems.add(
                    target.mark,
                    f"unknown target state {raw!r}: there is no phase {phase_name!r}"
                    f"{did_you_mean(phase_name, phases) or ', known phases: ' + ', '.join(phases)}",
                )
            elif state_name not in phase.states:
                self.problems.add(
                    target.mark,
                    f"unknown target state {raw!r}: phase {phase_name!r} has no state {state_name!r}"
                    f"{did_you_mean(state_name, phase.states)}",
                )
            else:
                target.state = raw
            return
        if target.phase and raw in phases[target.phase].states:
            target.state = f"{target.phase}.{raw}"
        elif raw in phases and phases[raw].initial:
            target.state = f"{raw}.{phases[raw].initial}"
        else:
            candidates = list(phases)
            if target.phase:
                candidates += list(phases[target.phase].states)
            hint = (
                did_you_mean(raw, candidates)
                or ", write `phase.state` or the name of a state of this phase"
            )
            self.problems.add(target.mark, f"unknown target state {raw!r}{hint}")

    # --- actions and inputs ------------------------------------------------------------

    def check_action_name(self, name: str, mark: Mark, rows: bool = False) -> None:
        action = self.actions.get(name)
        if action is None:
            names = self.actions.names()
            if not names:
                hint = ", and the bot has no actions: set `actions:` in bot.yaml to the module that registers them"
            else:
                hint = did_you_mean(name, names) or f", known actions: {', '.join(names)}"
            self.problems.add(mark, f"unknown action {name!r}{hint}")
        elif rows and not action.provides_rows:
            self.problems.add(
                mark, f"action {name!r} does not provide rows, register it with `@actions.rows`"
            )
        elif not rows and action.provides_rows:
            self.problems.add(
                mark, f"action {name!r} provides rows, use it under `rows:` and not as `action:`"
            )

    def check_actions(self) -> None:
        for state in self.states.values():
            if state.action and state.action_mark:
                self.check_action_name(state.action, state.action_mark)
                self.check_outcomes(state)
            if state.rows:
                self.check_action_name(state.rows.action, state.rows.mark, rows=True)
            if state.media and state.media.action:
                self.check_action_name(state.media.action, state.media.mark)
            for exit_spec in self.exits_of(state):
                if exit_spec.action and exit_spec.mark:
                    self.check_action_name(exit_spec.action, exit_spec.mark)
        for exit_spec in self.bot_exits():
            if exit_spec.action and exit_spec.mark:
                self.check_action_name(exit_spec.action, exit_spec.mark)

    def check_outcomes(self, state: StateSpec) -> None:
        assert state.action is not None and state.action_mark is not None
        action = self.actions.get(state.action)
        if action is None or action.provides_rows:
            return
        for outcome, mark in state.outcome_marks.items():
            if outcome not in action.outcomes:
                declared = ", ".join(sorted(action.outcomes)) or "none"
                self.problems.add(
                    mark,
                    f"action {action.name!r} has no outcome {outcome!r}"
                    f"{did_you_mean(outcome, action.outcomes)} (its outcomes: {declared}); "
                    "branch on one of those, or declare the outcome in the action's `outcomes`",
                )
        unhandled = sorted(action.outcomes - state.outcomes.keys())
        if not state.next and (unhandled or not action.outcomes):
            missing = ", ".join(unhandled)
            fix = f"add `on:` branches for {missing} or" if unhandled else "add"
            self.problems.add(
                state.action_mark,
                f"state {state.id} does not say where to go after action {action.name!r}, {fix} `next:`",
            )

    def exits_of(self, state: StateSpec) -> list[ExitSpec]:
        exits = [spec for spec in (state.exhausted, state.on_timeout) if spec is not None]
        exits += [command.exit for command in state.commands.values() if command is not None]
        phase = self.bot.phases[state.phase]
        if phase.on_timeout:
            exits.append(phase.on_timeout)
        exits += [command.exit for command in phase.commands.values() if command is not None]
        return exits

    def bot_exits(self) -> list[ExitSpec]:
        return [self.bot.on_timeout, *(command.exit for command in self.bot.commands.values())]

    def check_inputs(self) -> None:
        for state in self.states.values():
            reasons = {"default"}
            if state.input:
                reasons |= state.input.validator.reasons
            for reason, mark in state.retry_marks.items():
                if reason not in reasons:
                    self.problems.add(
                        mark,
                        f"unknown reason {reason!r} in retry"
                        f"{did_you_mean(reason, reasons) or ', use one of: ' + ', '.join(sorted(reasons))}",
                    )
            for slot, value in state.assignments.items():
                if slot == "_language" and value not in self.bot.languages:
                    self.problems.add(
                        state.mark,
                        f"_language is set to {value!r}, which is not one of the bot's languages "
                        f"({', '.join(self.bot.languages)})",
                    )

    # --- WhatsApp limits -------------------------------------------------------------------

    def over_limit(self, text: Text | None, limit: int, what: str) -> None:
        if text is None:
            return
        for language, template in text.templates.items():
            length = len(template.static_text)
            if length > limit:
                fields = " without its {fields}" if template.fields else ""
                self.problems.add(
                    text.mark,
                    f"{what} ({language}) has {length} characters{fields}, over the WhatsApp limit "
                    f"of {limit}; shorten it",
                )

    def check_message(self, message: MessageSpec, interactive: bool) -> None:
        if message.image is not None:
            self.over_limit(message.body, LIMITS.caption, "image caption")
            return
        self.over_limit(
            message.body,
            LIMITS.interactive_body if interactive else LIMITS.text,
            "message body with options" if interactive else "text message",
        )
        if not interactive and (message.header or message.footer):
            self.problems.add(
                message.mark,
                "header and footer show only on messages with options (buttons or a list), "
                "remove them or add choices to the state",
            )
        self.over_limit(message.header, LIMITS.header, "header")
        self.over_limit(message.footer, LIMITS.footer, "footer")

    def check_messages(
        self, messages: Iterable[MessageSpec], last_interactive: bool = False
    ) -> None:
        messages = list(messages)
        for index, message in enumerate(messages):
            self.check_message(message, last_interactive and index == len(messages) - 1)

    def check_limits(self) -> None:
        for state in self.states.values():
            offers_options = bool(state.choices or state.rows)
            self.check_messages(state.say, offers_options)
            for messages in state.retry.values():
                self.check_messages(messages, offers_options)
            self.check_messages(state.help)
            if state.media:
                self.check_messages(state.media.say)
            for exit_spec in self.exits_of(state):
                self.check_messages(exit_spec.say)
            self.check_choices(state)
        for exit_spec in self.bot_exits():
            self.check_messages(exit_spec.say)
        for messages in self.bot.texts.values():
            self.check_messages(messages)

    def check_choices(self, state: StateSpec) -> None:
        if not state.choices:
            if state.rows:
                self.over_limit(state.list_button, LIMITS.list_button, "list button label")
            return
        if uses_buttons(state):
            for choice in state.choices:
                self.over_limit(choice.title, LIMITS.button_title, "button title")
            return
        if len(state.choices) > LIMITS.rows:
            self.problems.add(
                state.choices[LIMITS.rows].mark,
                f"state {state.id} has {len(state.choices)} options, over the WhatsApp limit of "
                f"{LIMITS.rows} rows in a list; split them over two questions",
            )
        self.over_limit(state.list_button, LIMITS.list_button, "list button label")
        with_section = [choice for choice in state.choices if choice.section is not None]
        if with_section and len(with_section) < len(state.choices):
            missing = next(choice for choice in state.choices if choice.section is None)
            self.problems.add(
                missing.mark,
                f"option {missing.id!r} has no section while others in state {state.id} have one; "
                "WhatsApp needs a title on every section, so give every option a `section:` or none",
            )
        for choice in state.choices:
            self.over_limit(choice.title, LIMITS.row_title, "row title")
            self.over_limit(choice.description, LIMITS.row_description, "row description")
            self.over_limit(choice.section, LIMITS.section_title, "section title")

    # --- graph -------------------------------------------------------------------------------

    def check_ways_out(self) -> None:
        for state in self.states.values():
            if state.input and not state.next:
                self.problems.add(
                    state.input.mark,
                    f"state {state.id} stores the answer in {state.input.slot!r} but does not say "
                    "where to go next, add `next:`",
                )
            elif not state.branches() and not state.events and not state.action:
                self.problems.add(
                    state.mark,
                    f"state {state.id} has no way out, add `next:`, `choices:`, `input:` or `events:`",
                )

    def automatic_targets(self, state: StateSpec) -> list[str]:
        if state.waits:
            return []
        branches: list[Branch] = list(state.next)
        for outcome_branches in state.outcomes.values():
            branches.extend(outcome_branches)
        return [
            branch.target.state
            for branch in branches
            if branch.target.state and branch.target.state != BACK
        ]

    def check_automatic_loops(self) -> None:
        """Report loops of states that move on without waiting, which would never end."""
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(state_id: str, path: list[str]) -> None:
            if state_id in done:
                return
            if state_id in visiting:
                loop = [*path[path.index(state_id) :], state_id]
                self.problems.add(
                    self.states[state_id].mark,
                    f"states {' -> '.join(loop)} form a loop that never waits for the customer, "
                    "make one of them ask something or end the loop",
                )
                return
            visiting.add(state_id)
            for target in self.automatic_targets(self.states[state_id]):
                visit(target, [*path, state_id])
            visiting.discard(state_id)
            done.add(state_id)

        for state_id in self.states:
            visit(state_id, [])

    def edges(self) -> list[_Edge]:
        edges: list[_Edge] = []
        for state in self.states.values():
            writes = self.writes(state)
            for choice in state.choices:
                edges += [
                    _Edge(state.id, branch.target.state, writes | choice.assignments.keys())
                    for branch in choice.branches
                ]
            for branch in state.branches():
                edges.append(_Edge(state.id, branch.target.state, writes))
            for command in effective_commands(self.bot, state).values():
                target = command.exit.target.state if command.exit.target else state.id
                edges.append(
                    _Edge(state.id, target, writes | self.action_sets(command.exit.action))
                )
            if state.input or state.choices or state.rows:
                exhausted = state.exhausted.target if state.exhausted else None
                edges.append(_Edge(state.id, (exhausted or self.bot.menu).state, writes))
            phase_timeout = self.bot.phases[state.phase].on_timeout
            if phase_timeout and phase_timeout.target:
                edges.append(_Edge(state.id, phase_timeout.target.state, writes))
        # `back` leads to a state the conversation was already in, so it adds nothing here.
        return [edge for edge in edges if edge.target and edge.target != BACK]

    def check_reachable(self, edges: list[_Edge]) -> None:
        roots = {self.bot.start.state, self.bot.menu.state}
        if self.bot.on_timeout.target:
            roots.add(self.bot.on_timeout.target.state)
        reached = set()
        pending = [root for root in roots if root]
        outgoing: dict[str, list[str]] = {}
        for edge in edges:
            outgoing.setdefault(edge.source, []).append(edge.target)
        while pending:
            state_id = pending.pop()
            if state_id in reached:
                continue
            reached.add(state_id)
            pending.extend(outgoing.get(state_id, []))
        for state_id, state in self.states.items():
            if state_id not in reached:
                self.problems.add(
                    state.mark,
                    f"state {state_id} is unreachable: no branch, command or timeout leads to it; "
                    "add a `next:` that targets it or remove it",
                )

    # --- slots ---------------------------------------------------------------------------------

    def action_sets(self, name: str | None) -> frozenset[str]:
        action = self.actions.get(name) if name else None
        return action.sets if action else frozenset()

    def writes_before_messages(self, state: StateSpec) -> frozenset[str]:
        """Slots a state writes before its messages are rendered."""
        written = set(state.assignments) | self.action_sets(state.action)
        if state.rows:
            written |= self.action_sets(state.rows.action)
        return frozenset(written)

    def writes(self, state: StateSpec) -> frozenset[str]:
        written = set(self.writes_before_messages(state))
        if state.input:
            written.add(state.input.slot)
        if state.rows:
            written.add(state.rows.slot)
        if state.media:
            written |= self.action_sets(state.media.action)
        return frozenset(written)

    def check_slots(self, edges: list[_Edge]) -> None:
        """Report template fields and conditions that use a slot no path to them sets.

        Forward data flow: a slot is available in a state when some path from the start
        (or through a command or timeout) writes it before arriving.
        """
        universal = frozenset(self.bot.slots) | RESERVED_SLOTS
        available: dict[str, set[str]] = {state_id: set() for state_id in self.states}
        for root in (self.bot.start.state, self.bot.menu.state):
            if root:
                available[root] |= universal
        changed = True
        while changed:
            changed = False
            for edge in edges:
                incoming = available[edge.source] | edge.writes | universal
                if not incoming <= available[edge.target]:
                    available[edge.target] |= incoming
                    changed = True

        for state in self.states.values():
            before = available[state.id] | self.writes_before_messages(state) | universal
            after = before | self.writes(state)
            self.check_fields(self.state_texts(state), before, state)
            for exit_spec in self.exits_of(state):
                extra = self.action_sets(exit_spec.action)
                self.check_fields(self.message_texts(exit_spec.say), after | extra, state)
            if state.media:
                self.check_fields(self.message_texts(state.media.say), after, state)
            for guard_branch in self.guarded(state):
                assert guard_branch.guard is not None
                if guard_branch.guard.slot not in after:
                    self.problems.add(
                        guard_branch.guard.mark,
                        f"condition uses slot {guard_branch.guard.slot!r}, which no path to {state.id} "
                        "sets; set it with an input, `set:` or an action that declares it in `sets`",
                    )
            if state.input:
                for value in state.input.options.values():
                    if (
                        isinstance(value, str)
                        and value.startswith("{")
                        and value[1:-1] not in before
                    ):
                        self.problems.add(
                            state.input.mark,
                            f"input option uses slot {value!r}, which no path to {state.id} sets",
                        )
        for command in self.bot.commands.values():
            extra = self.action_sets(command.exit.action)
            self.check_fields(self.message_texts(command.exit.say), universal | extra, None)
        for messages in self.bot.texts.values():
            self.check_fields(self.message_texts(messages), universal, None)

    def guarded(self, state: StateSpec) -> list[Branch]:
        return [branch for branch in state.branches() if branch.guard is not None] + [
            branch
            for choice in state.choices
            for branch in choice.branches
            if branch.guard is not None
        ]

    @staticmethod
    def message_texts(messages: Iterable[MessageSpec]) -> list[Text]:
        return [text for message in messages for text in message.texts()]

    def state_texts(self, state: StateSpec) -> list[Text]:
        texts = self.message_texts(state.say) + self.message_texts(state.help)
        for messages in state.retry.values():
            texts += self.message_texts(messages)
        for choice in state.choices:
            texts += [text for text in self.choice_texts(choice) if text]
        return texts

    @staticmethod
    def choice_texts(choice: ChoiceSpec) -> list[Text | None]:
        return [choice.title, choice.description, choice.section]

    def check_fields(
        self, texts: Iterable[Text], available: Iterable[str], state: StateSpec | None
    ) -> None:
        available = set(available)
        for text in texts:
            for template in text.all_templates():
                for field in template.fields:
                    if field.slot in available:
                        continue
                    where = (
                        f"no path to {state.id} sets it"
                        if state
                        else "it is not set in every state"
                    )
                    hint = did_you_mean(field.slot, sorted(available - RESERVED_SLOTS))
                    if not hint:
                        hint = (
                            "; set it with an input, `set:`, an action that declares it in `sets`, "
                            "or `slots:` in bot.yaml"
                        )
                    self.problems.add(
                        text.mark, f"template uses slot {{{field.slot}}}, but {where}{hint}"
                    )


def check_bot(bot: BotSpec, actions: ActionRegistry, problems: Problems) -> None:
    """Run the whole-bot checks, adding what they find to `problems`."""
    _Checker(bot, actions, problems).run()
