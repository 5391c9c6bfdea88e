"""The `whatsapp-tickets` command line: chat, check (and, with the server, serve)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib import resources

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
            f"{directory}: bot {spec.name!r}, {len(spec.phases)} phases, {states} states, no errors"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whatsapp-tickets",
        description="WhatsApp chatbot engine and ticket booking bot.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser("chat", help="talk to the bot in this terminal")
    chat.add_argument(
        "--phone", default=DEFAULT_PHONE, help=f"customer phone number (default {DEFAULT_PHONE})"
    )
    chat.add_argument("--db", help=f"SQLite database file (default ${DB_VARIABLE} or {DEFAULT_DB})")
    chat.add_argument(
        "--flows", help="flow directory (default ./flows if present, else the ticket bot)"
    )
    chat.add_argument(
        "--trace", action="store_true", help="print '# state: <phase>.<state>' after each turn"
    )
    chat.set_defaults(handler=_command_chat)

    check = commands.add_parser("check", help="validate flow files")
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
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(arguments.handler(arguments))


if __name__ == "__main__":
    sys.exit(main())
