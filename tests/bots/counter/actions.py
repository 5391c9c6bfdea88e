"""The counter bot's one action: append the message to the `log` slot and say its number."""

from __future__ import annotations

from engine import ActionContext, ActionRegistry, TextMessage

actions = ActionRegistry()


@actions.action(sets=["log"])
async def note_down(context: ActionContext) -> None:
    log = list(context.slots.get("log", []))
    log.append(context.slots["last"])
    context.slots["log"] = log
    context.reply(TextMessage(f"#{len(log)} {context.slots['last']}"))
