"""The `whatsapp-tickets` command line: chat, serve and check."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib import resources

from adapters.config import LOG_FORMAT
from engine import Bot, FlowError, load_bot
from storage import StoreError

__all__ = ["main"]

DEFAULT_PHONE = "593000000000"
DEFAULT_DB = "whatsapp-tickets.db"
DB_VARIABLE = "WHATSAPP_TICKETS_DB"


def packaged_flows() -> str:
    """Return the directory of the ticket bot's flow files installed with the package."""
    return str(resources.files("flows"))


def default_flows() -> str:
    """Return `flows` when the working directory has one, else the installed ticket bot."""
    return "flows" if os.path.isfile(os.path.join("flows", "bot.yaml")) else packaged_flows()


def _load(directory: str) -> Bot | None:
    try:
        return load_bot(directory)
    except FlowError as error:
        for problem in error.problems:
            sys.stderr.write(f"{problem}\n")
        sys.stderr.write(f"{len(error.problems)} error(s) in {directory}; fix them and try again\n")
        return None


def _command_check(arguments: argparse.Namespace) -> int:
    directory = arguments.directory or default_flows()
    try:
        bot = load_bot(directory)
    except FlowError as error:
        if arguments.format == "json":
            problems = [
                {"path": p.path, "line": p.line, "column": p.column, "message": p.message}
                for p in error.problems
            ]
            print(json.dumps({"ok": False, "problems": problems}, ensure_ascii=False, indent=2))
        else:
            for problem in error.problems:
                sys.stderr.write(f"{problem}\n")
            sys.stderr.write(f"{len(error.problems)} error(s) in {directory}\n")
        return 1
    spec = bot.compiled.spec
    states = len(bot.compiled.states)
    if arguments.format == "json":
        summary = {
            "bot": spec.name,
            "phases": len(spec.phases),
            "states": states,
            "version": bot.version,
        }
        print(json.dumps({"ok": True, "problems": [], "summary": summary}, indent=2))
    else:
        print(
            f"{directory}: bot {spec.name!r}, {_plural(len(spec.phases), 'phase')}, "
            f"{_plural(states, 'state')}, no errors"
        )
    return 0


def _command_chat(arguments: argparse.Namespace) -> int:
    from adapters.console import run_chat

    bot = _load(arguments.flows or default_flows())
    if bot is None:
        return 1
    db_path = arguments.db or os.environ.get(DB_VARIABLE) or DEFAULT_DB
    try:
        asyncio.run(
            run_chat(
                bot,
                db_path,
                phone=arguments.phone,
                trace=arguments.trace,
                input_stream=sys.stdin,
                output=sys.stdout,
            )
        )
    except StoreError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _command_serve(arguments: argparse.Namespace) -> int:
    import uvicorn

    from adapters.config import ServerConfig

    flows = os.path.abspath(arguments.flows or default_flows())
    config = ServerConfig.from_environment(db_path=arguments.db, flows=flows, dev=arguments.dev)
    missing = config.missing_secrets()
    if missing:
        sys.stderr.write(
            f"error: missing environment variable(s): {', '.join(missing)}; "
            "set them to serve WhatsApp, or add --dev to try the server locally without them\n"
        )
        return 2
    if _load(flows) is None:
        return 1
    host = arguments.host
    if arguments.dev and host not in _LOOPBACK:
        sys.stderr.write(f"warning: --dev listens on 127.0.0.1 only, not on {host}\n")
        host = "127.0.0.1"
    # The uvicorn factory reads these in every worker process.
    os.environ["WHATSAPP_TICKETS_FLOWS"] = flows
    os.environ["WHATSAPP_TICKETS_DB"] = os.path.abspath(config.db_path)
    os.environ["WHATSAPP_TICKETS_DEV"] = "1" if arguments.dev else "0"
    os.environ["WHATSAPP_TICKETS_LOG_LEVEL"] = (
        "DEBUG" if getattr(arguments, "verbose", False) else "INFO"
    )
    uvicorn.run(
        "adapters.server:app_from_environment",
        factory=True,
        host=host,
        port=arguments.port,
        workers=arguments.workers,
        # The access log would print query strings, and GET /webhook carries the verify token.
        access_log=False,
        log_level="info",
    )
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _phone_number(text: str) -> str:
    digits = text.strip().lstrip("+")
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise argparse.ArgumentTypeError(
            f"invalid phone number {text!r}, write the international number in digits, as in 593991234567"
        )
    return digits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whatsapp-tickets",
        description="WhatsApp chatbot engine and ticket booking bot.",
    )
    # -v works before or after the command name.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log at INFO level on stderr",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser("chat", parents=[verbose], help="talk to the bot in this terminal")
    chat.add_argument(
        "--phone",
        type=_phone_number,
        default=DEFAULT_PHONE,
        help=f"customer phone number in international form, digits only (default {DEFAULT_PHONE})",
    )
    chat.add_argument("--db", help=f"SQLite database file (default ${DB_VARIABLE} or {DEFAULT_DB})")
    chat.add_argument(
        "--flows", help="flow directory (default ./flows if present, else the ticket bot)"
    )
    chat.add_argument(
        "--trace", action="store_true", help="print '# state: <phase>.<state>' after each turn"
    )
    chat.set_defaults(handler=_command_chat)

    serve = commands.add_parser("serve", parents=[verbose], help="run the WhatsApp webhook server")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the database (default 1)"
    )
    serve.add_argument(
        "--db", help=f"SQLite database file (default ${DB_VARIABLE} or {DEFAULT_DB})"
    )
    serve.add_argument(
        "--flows", help="flow directory (default ./flows if present, else the ticket bot)"
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: listen on 127.0.0.1 only, skip signature checks, log replies instead of sending",
    )
    serve.set_defaults(handler=_command_serve)

    check = commands.add_parser("check", parents=[verbose], help="validate flow files")
    check.add_argument(
        "directory",
        nargs="?",
        help="flow directory (default ./flows if present, else the ticket bot)",
    )
    check.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    check.set_defaults(handler=_command_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(arguments, "verbose", False) else logging.WARNING,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    # transitions logs every trigger at INFO, which would drown the chat's output.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    return int(arguments.handler(arguments))


if __name__ == "__main__":
    sys.exit(main())
