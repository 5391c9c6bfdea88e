"""Reading flow files through PyYAML's node API, keeping every value's location.

`yaml.safe_load` drops line numbers, silently keeps the last of two duplicate keys
and turns `no` into False. Composing nodes instead keeps each value's file, line and
column for error messages, and lets the loader read scalars as the text the author
wrote. Problems are collected, not raised, so one run reports all of them.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml

from engine.errors import FlowProblem

__all__ = ["Entry", "Mark", "Problems", "SourceFile"]

_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_TRUE_WORDS = frozenset({"true", "yes", "on", "y"})


@dataclass(frozen=True)
class Mark:
    """A 1-based position in a flow file, with the path as the user gave it."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class Problems:
    """Collects flow problems in the order they are found."""

    def __init__(self) -> None:
        self.items: list[FlowProblem] = []

    def add(self, mark: Mark, message: str) -> None:
        self.items.append(FlowProblem(mark.path, mark.line, mark.column, message))

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass(frozen=True)
class Entry:
    """A key of a YAML mapping with its value node."""

    key: str
    key_node: yaml.Node
    value: yaml.Node


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ", did you mean 'x'?" for a close match among `choices`, or ""."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f", did you mean {matches[0]!r}?" if matches else ""


class SourceFile:
    """One flow file: its composed node tree and the problems found while reading it."""

    def __init__(self, path: str, problems: Problems) -> None:
        self.path = path
        self.problems = problems
        self.root: yaml.Node | None = None

    def load(self) -> yaml.Node | None:
        """Compose the file; a syntax error becomes a problem at its position."""
        try:
            with open(self.path, encoding="utf-8") as stream:
                self.root = yaml.compose(stream, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = (
                Mark(self.path, mark.line + 1, mark.column + 1) if mark else Mark(self.path, 1, 1)
            )
            self.problems.add(where, f"invalid YAML: {_describe_syntax_error(error)}")
        except UnicodeDecodeError as error:
            self.problems.add(
                Mark(self.path, 1, 1), f"file is not UTF-8 ({error.reason}), save it as UTF-8"
            )
        except yaml.YAMLError as error:
            self.problems.add(Mark(self.path, 1, 1), f"invalid YAML: {error}, fix the syntax")
        return self.root

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    # --- positions and problems ----------------------------------------------------

    def mark(self, node: yaml.Node) -> Mark:
        return Mark(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: yaml.Node, message: str) -> None:
        self.problems.add(self.mark(node), message)

    # --- typed readers -------------------------------------------------------------

    def mapping(self, node: yaml.Node, what: str) -> list[Entry] | None:
        """Return the entries of a mapping node, reporting non-text and duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping of keys to values, found {_kind(node)}")
            return None
        entries: list[Entry] = []
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _NULL_TAG:
                self.error(key_node, f"keys in {what} must be plain text, found {_kind(key_node)}")
                continue
            key = str(key_node.value)
            if key in seen:
                first = self.mark(seen[key])
                self.error(
                    key_node,
                    f"duplicate key {key!r} in {what} (first at line {first.line}), "
                    "remove or rename one of them",
                )
                continue
            seen[key] = key_node
            entries.append(Entry(key, key_node, value_node))
        return entries

    def check_keys(
        self,
        entries: Sequence[Entry],
        allowed: Iterable[str],
        what: str,
        required: Iterable[str] = (),
        parent: yaml.Node | None = None,
    ) -> dict[str, Entry]:
        """Report unknown and missing keys; return the known entries by key."""
        allowed = list(allowed)
        known: dict[str, Entry] = {}
        for entry in entries:
            if entry.key in allowed:
                known[entry.key] = entry
                continue
            hint = did_you_mean(entry.key, allowed)
            if not hint:
                hint = f", use one of: {', '.join(allowed)}"
            self.error(entry.key_node, f"unknown key {entry.key!r} in {what}{hint}")
        for key in required:
            if key not in known and parent is not None:
                self.error(parent, f"{what} is missing the required key {key!r}, add it")
        return known

    def text(self, node: yaml.Node, what: str) -> str | None:
        """Return a scalar as the text the author wrote (`no` stays "no")."""
        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
            return str(node.value)
        found = "an empty value" if isinstance(node, yaml.ScalarNode) else _kind(node)
        self.error(node, f"{what} must be a text, found {found}")
        return None

    def integer(self, node: yaml.Node, what: str, minimum: int | None = None) -> int | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG:
            try:
                value = int(str(node.value).replace("_", ""), 0)
            except ValueError:
                value = None
            if value is not None:
                if minimum is not None and value < minimum:
                    self.error(node, f"{what} must be at least {minimum}, found {value}")
                    return None
                return value
        self.error(node, f"{what} must be a whole number, found {_describe(node)}")
        return None

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
            return str(node.value).lower() in _TRUE_WORDS
        self.error(node, f"{what} must be true or false, found {_describe(node)}")
        return None

    def text_list(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        """Return a sequence of texts; a single text counts as a list of one."""
        if isinstance(node, yaml.ScalarNode):
            value = self.text(node, what)
            return [] if value is None else [(value, node)]
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a text or a list of texts, found {_kind(node)}")
            return []
        result = []
        for item in node.value:
            value = self.text(item, f"each item of {what}")
            if value is not None:
                result.append((value, item))
        return result

    def plain(self, node: yaml.Node) -> object:
        """Construct a plain Python value (for free-form settings)."""
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_document(node)
        finally:
            loader.dispose()


# Fixes for the syntax errors flow authors meet most, keyed by PyYAML's problem text.
_SYNTAX_HINTS = {
    "mapping values are not allowed here": (
        "a text that contains ': ' must be in quotes, as in say: \"Nota: llega temprano\""
    ),
    "found character '\\t' that cannot start any token": "indent with spaces, not tabs",
    "found unexpected end of stream": "close the quote or bracket that is still open",
    "could not find expected ':'": "check the indentation and that each key ends with ':'",
    "did not find expected key": "check the indentation: keys of one mapping start in the same column",
    "did not find expected '-' indicator": "check the indentation of the list items",
}


def _describe_syntax_error(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or "invalid syntax"
    text = problem
    context_mark = error.context_mark
    problem_mark = error.problem_mark
    if (
        error.context
        and context_mark is not None
        and (problem_mark is None or context_mark.line != problem_mark.line)
    ):
        text += (
            f" ({error.context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        )
    hint = next((fix for key, fix in _SYNTAX_HINTS.items() if problem.startswith(key)), None)
    return f"{text}, {hint or 'fix the syntax at this position'}"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "an empty value"
    return "a single value"


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
        return repr(str(node.value))
    return _kind(node)
