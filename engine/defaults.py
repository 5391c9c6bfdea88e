"""Texts the engine sends when a bot does not define its own, in English and Spanish.

A bot overrides any of them under `texts:` in its settings file. Keys:

- invalid_choice: the answer matched no option of the current question.
- invalid_input: the answer was not valid and the state has no re-prompt of its own.
- attempts_exhausted: too many invalid answers in a row; the bot goes elsewhere.
- unsupported_message: a photo, audio, sticker or location where text is expected.
- resume: a greeting in the middle of a flow, before the question is asked again.
- no_help: `ayuda` in a state that has no help text of its own.
- timeout: the conversation was closed for inactivity.
- flow_updated: the bot changed and the customer's step no longer exists.
- list_button: label of the button that opens a list of options.
- technical_error: an action failed; nothing of the turn was kept.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TEXTS"]

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "invalid_choice": {
        "es": "No reconocí esa opción. Toca uno de los botones o escribe el número de la opción.",
        "en": "I did not recognise that option. Tap one of the buttons or type the option's number.",
    },
    "invalid_input": {
        "es": "No pude entender tu respuesta. Inténtalo de nuevo, por favor.",
        "en": "I could not understand your answer. Please try again.",
    },
    "attempts_exhausted": {
        "es": "Parece que no nos estamos entendiendo. Volvamos al inicio; escribe *ayuda* si necesitas una mano.",
        "en": "We don't seem to understand each other. Let's start over; type *help* if you need a hand.",
    },
    "unsupported_message": {
        "es": "Por ahora solo puedo leer texto y botones. Respóndeme con un mensaje escrito, por favor.",
        "en": "For now I can only read text and buttons. Please answer with a written message.",
    },
    "resume": {
        "es": "¡Hola de nuevo! Sigamos donde nos quedamos.",
        "en": "Hello again! Let's continue where we left off.",
    },
    "no_help": {
        "es": "Responde la pregunta de abajo. Escribe *menu* para volver al inicio.",
        "en": "Answer the question below. Type *menu* to go back to the start.",
    },
    "timeout": {
        "es": "Cerré nuestra conversación por inactividad. Escríbeme cuando quieras para empezar de nuevo.",
        "en": "I closed our conversation after a period of inactivity. Write any time to start again.",
    },
    "flow_updated": {
        "es": "Actualizamos el bot y tuvimos que empezar de nuevo. Disculpa las molestias.",
        "en": "The bot was updated and we had to start over. Sorry for the inconvenience.",
    },
    "list_button": {
        "es": "Ver opciones",
        "en": "See options",
    },
    "technical_error": {
        "es": "Tuvimos un problema técnico y no pude procesar tu mensaje. Inténtalo de nuevo en un momento.",
        "en": "We had a technical problem and could not process your message. Please try again shortly.",
    },
}
