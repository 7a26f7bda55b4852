"""A small JQL parser for the Jira simulator: the subset poam-sync and people at a prompt send.

Grammar (keywords case-insensitive)::

    query   := [or] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    or      := and {OR and}
    and     := not {AND not}
    not     := NOT not | "(" or ")" | clause
    clause  := field op value
    op      := = | != | ~ | !~ | > | >= | < | <= | IN | NOT IN | IS | IS NOT
             | WAS | WAS NOT | WAS IN | WAS NOT IN
    value   := string | word | EMPTY | NULL | word "(" ")" | "(" value {, value} ")"

The parser builds a tree of :class:`Clause`, :class:`BoolOp` and :class:`Not`; the simulator
evaluates it against its issues (it knows the fields, users and time zones).

What it does not support is refused as Jira refuses a query it cannot run: a
:class:`JqlError`, answered 400 with Jira's error body (``{"errorMessages": [...], "errors":
{}}``, the ``ErrorCollection`` of Atlassian's OpenAPI file), never a 500. That covers
functions with arguments, the history predicates of ``WAS`` (``BEFORE``, ``AFTER``, ``ON``,
``DURING``, ``BY``) and ``CHANGED``, which real Jira supports
(support.atlassian.com/jira-software-cloud/docs/jql-operators/) and this simulator does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>!=|!~|>=|<=|=|~|>|<)
    | (?P<punct>[(),])
    | (?P<word>[^\s(),"'=!~<>]+(?:\[[0-9]+\])?)
    )""",
    re.VERBOSE,
)


_WAS_PREDICATES = ("BEFORE", "AFTER", "ON", "DURING", "BY", "FROM", "TO")
_UNSUPPORTED = "Error in the JQL Query: {0} is not supported by this Jira simulator."


class JqlError(ValueError):
    """A query Jira would reject (400 with this message)."""


@dataclass(frozen=True)
class Token:
    kind: str  # str, op, punct, word
    text: str

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


@dataclass(frozen=True)
class Value:
    text: str | None  # None for EMPTY / NULL
    function: bool = False


@dataclass(frozen=True)
class Clause:
    field: str
    # "=", "!=", "~", "!~", ">", ">=", "<", "<=", "in", "not in", "is", "is not", "was",
    # "was not", "was in", "was not in"
    op: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" / "or"
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Clause | BoolOp | Not


@dataclass(frozen=True)
class Query:
    where: Node | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(jql):
        if jql[pos:].strip() == "":
            break
        m = _TOKEN.match(jql, pos)
        if not m or m.end() == pos:
            raise JqlError(f"Error in the JQL Query: unexpected character at position {pos}.")
        kind = m.lastgroup or "word"
        tokens.append(Token(kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        self.i += 1
        return tok

    def query(self) -> Query:
        where: Node | None = None
        tok = self.peek()
        if tok is not None and not tok.is_word("ORDER"):
            where = self.or_()
        order: list[tuple[str, bool]] = []
        tok = self.peek()
        if tok is not None and tok.is_word("ORDER"):
            self.take()
            if not self.take().is_word("BY"):
                raise JqlError("Error in the JQL Query: expected 'BY' after 'ORDER'.")
            while True:
                field = self.field_name()
                desc = False
                nxt = self.peek()
                if nxt is not None and nxt.is_word("ASC", "DESC"):
                    desc = self.take().text.upper() == "DESC"
                order.append((field, desc))
                nxt = self.peek()
                if nxt is not None and nxt.kind == "punct" and nxt.text == ",":
                    self.take()
                    continue
                break
        if self.peek() is not None:
            raise JqlError(
                f"Error in the JQL Query: unexpected '{self.take().text}' at the end of the query."
            )
        return Query(where, tuple(order))

    def or_(self) -> Node:
        parts = [self.and_()]
        while (tok := self.peek()) is not None and tok.is_word("OR"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_(self) -> Node:
        parts = [self.not_()]
        while (tok := self.peek()) is not None and tok.is_word("AND"):
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def not_(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.is_word("NOT"):
            self.take()
            return Not(self.not_())
        if tok is not None and tok.kind == "punct" and tok.text == "(":
            self.take()
            inner = self.or_()
            close = self.take()
            if close.text != ")":
                raise JqlError("Error in the JQL Query: expected ')'.")
            return inner
        return self.clause()

    def field_name(self) -> str:
        tok = self.take()
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind != "word":
            raise JqlError(f"Error in the JQL Query: expected a field name, found '{tok.text}'.")
        return tok.text

    def clause(self) -> Clause:
        field = self.field_name()
        tok = self.take()
        if tok.kind == "op":
            op = tok.text
        elif tok.is_word("IN"):
            op = "in"
        elif tok.is_word("NOT"):
            if not self.take().is_word("IN"):
                raise JqlError("Error in the JQL Query: expected 'IN' after 'NOT'.")
            op = "not in"
        elif tok.is_word("IS"):
            op = "is"
            nxt = self.peek()
            if nxt is not None and nxt.is_word("NOT"):
                self.take()
                op = "is not"
        elif tok.is_word("WAS"):
            op = self.was_op()
        elif tok.is_word("CHANGED"):
            raise JqlError(_UNSUPPORTED.format("the operator 'CHANGED'"))
        else:
            raise JqlError(
                f"Error in the JQL Query: expecting an operator after '{field}', "
                f"found '{tok.text}'."
            )
        nxt = self.peek()
        if op in ("in", "not in", "was in", "was not in") and nxt is not None and nxt.text != "(":
            listed = self.value()  # only a list function may stand here: in openSprints()
            if not listed.function:
                raise JqlError(f"Error in the JQL Query: expected '(' after '{op.upper()}'.")
            clause = Clause(field, op, (listed,))
        elif op in ("in", "not in", "was in", "was not in"):
            opening = self.take()
            if opening.text != "(":
                raise JqlError(f"Error in the JQL Query: expected '(' after '{op.upper()}'.")
            values = [self.value()]
            while (sep := self.take()).text == ",":
                values.append(self.value())
            if sep.text != ")":
                raise JqlError("Error in the JQL Query: expected ')' to close the list.")
            clause = Clause(field, op, tuple(values))
        else:
            clause = Clause(field, op, (self.value(),))
        nxt = self.peek()
        if op.startswith("was") and nxt is not None and nxt.is_word(*_WAS_PREDICATES):
            raise JqlError(_UNSUPPORTED.format(f"the WAS predicate '{nxt.text.upper()}'"))
        return clause

    def was_op(self) -> str:
        """After ``WAS``: ``NOT``, ``IN``, ``NOT IN`` or nothing."""
        op = "was"
        nxt = self.peek()
        if nxt is not None and nxt.is_word("NOT"):
            self.take()
            op = "was not"
            nxt = self.peek()
        if nxt is not None and nxt.is_word("IN"):
            self.take()
            op += " in"
        return op

    def value(self) -> Value:
        tok = self.take()
        if tok.kind == "str":
            return Value(_unquote(tok.text))
        if tok.kind != "word":
            raise JqlError(f"Error in the JQL Query: expected a value, found '{tok.text}'.")
        if tok.is_word("EMPTY", "NULL"):
            return Value(None)
        nxt = self.peek()
        if nxt is not None and nxt.text == "(":
            self.take()
            if self.take().text != ")":
                raise JqlError(_UNSUPPORTED.format(f"the function '{tok.text}' with arguments"))
            return Value(tok.text, function=True)
        return Value(tok.text)


def parse(jql: str) -> Query:
    """Parse ``jql``; :class:`JqlError` with Jira's kind of message when it is not valid."""
    return _Parser(tokenize(jql)).query()
