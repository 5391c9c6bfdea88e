"""Actions of the barbershop example: the next open days, computed from the clock."""

from __future__ import annotations

from datetime import timedelta

from engine import ActionContext, ActionRegistry, Option

actions = ActionRegistry()

DAY_NAMES = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "es": ["Lunes", "Martes", "Miércoles", "Jueves", "Viernes", "Sábado", "Domingo"],
}


@actions.rows()
async def open_days(context: ActionContext) -> list[Option]:
    """Offer the next five days except Sundays, when the shop is closed."""
    today = (context.now - timedelta(hours=5)).date()
    options: list[Option] = []
    day = today + timedelta(days=1)
    while len(options) < 5:
        if day.weekday() != 6:
            name = DAY_NAMES[context.language][day.weekday()]
            options.append(
                Option(
                    id=f"day_{day.isoformat()}", title=f"{name} {day:%d/%m}", value=day.isoformat()
                )
            )
        day += timedelta(days=1)
    return options
