"""A small, strict CQL2-text parser (OGC API Features Part 3, Basic CQL2) → SQLAlchemy.

Not a user expression language passed to the database (BAD_INPUTS §3.1): the text is parsed
here into comparisons of *published properties* with *literals*; property names are looked
up in the collection's queryables and literals become bound parameters of the right type.
Anything else (functions, unknown names, type mismatches, spatial or temporal operators,
over-long or over-deep filters) is refused with a 400 before any SQL exists.

Supported: ``= <> < > <= >=``, ``AND``/``OR``/``NOT``, parentheses, ``IS [NOT] NULL``,
``TRUE``/``FALSE``, string/number/boolean literals, ``DATE('…')``, ``TIMESTAMP('…')``, and the
common extensions ``[NOT] LIKE``, ``[NOT] BETWEEN … AND …``, ``[NOT] IN (…)``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    false,
    literal,
    not_,
    or_,
    true,
)

from gis_service.errors import BadParameter, FieldProblem

MAX_LENGTH = 4000
MAX_TOKENS = 400
MAX_DEPTH = 24

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<op><>|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<qid>"[^"]{1,64}")
    | (?P<id>[A-Za-z_][A-Za-z0-9_]{0,63})
    )""",
    re.VERBOSE,
)
KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "LIKE", "BETWEEN", "IN", "TRUE", "FALSE"}


def _error(message: str) -> BadParameter:
    return BadParameter(
        detail=f"invalid filter: {message}",
        detail_zh=f"过滤条件无效：{message}",
        fields=[FieldProblem("query.filter", message)],
    )


@dataclass(frozen=True)
class Token:
    """A lexical token: kind (str, num, op, punct, id, kw) and its text."""

    kind: str
    text: str


def tokenize(source: str) -> list[Token]:
    """Split CQL2 text into tokens; anything unrecognised is an error."""
    if len(source) > MAX_LENGTH:
        raise _error(f"longer than {MAX_LENGTH} characters")
    if "\x00" in source:
        raise _error("NUL characters are not allowed")
    out: list[Token] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            raise _error(f"unexpected character at position {pos + 1}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "id" and value.upper() in KEYWORDS:
            out.append(Token("kw", value.upper()))
        elif kind == "qid":
            out.append(Token("id", value[1:-1]))
        else:
            out.append(Token(kind, value))
        pos = m.end()
        if len(out) > MAX_TOKENS:
            raise _error(f"more than {MAX_TOKENS} tokens")
    if not out:
        raise _error("empty")
    return out


#: What a queryable resolves to: its SQL column and its JSON type (string, integer, …).
Resolver = Callable[[str], tuple[ColumnElement[Any], str]]


@dataclass
class _Operand:
    expr: ColumnElement[Any]
    type: str  # string, integer, number, boolean, date, datetime, or "literal:<type>"
    is_property: bool


def _compatible(a: str, b: str) -> bool:
    numeric = {"integer", "number"}
    return a == b or (a in numeric and b in numeric) or (a == "datetime" and b == "date")


class _Parser:
    def __init__(self, tokens: list[Token], resolve: Resolver) -> None:
        self.tokens = tokens
        self.i = 0
        self.resolve = resolve
        self.depth = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise _error("unexpected end")
        self.i += 1
        return tok

    def expect(self, kind: str, text: str | None = None) -> Token:
        tok = self.take()
        if tok.kind != kind or (text is not None and tok.text != text):
            raise _error(f"expected {text or kind} but found {tok.text[:20]!r}")
        return tok

    def at_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "kw" and tok.text in words

    def parse(self) -> ColumnElement[bool]:
        expr = self.or_expr()
        if self.peek() is not None:
            raise _error(f"unexpected {self.take().text[:20]!r}")
        return expr

    def or_expr(self) -> ColumnElement[bool]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"nested deeper than {MAX_DEPTH}")
        terms = [self.and_expr()]
        while self.at_kw("OR"):
            self.take()
            terms.append(self.and_expr())
        self.depth -= 1
        return terms[0] if len(terms) == 1 else or_(*terms)

    def and_expr(self) -> ColumnElement[bool]:
        terms = [self.not_expr()]
        while self.at_kw("AND"):
            self.take()
            terms.append(self.not_expr())
        return terms[0] if len(terms) == 1 else and_(*terms)

    def not_expr(self) -> ColumnElement[bool]:
        if self.at_kw("NOT"):
            self.take()
            return not_(self.not_expr())
        return self.primary()

    def primary(self) -> ColumnElement[bool]:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == "(":
            self.take()
            inner = self.or_expr()
            self.expect("punct", ")")
            return inner
        if (
            tok is not None
            and tok.kind == "kw"
            and tok.text in ("TRUE", "FALSE")
            and not self._comparison_follows()
        ):
            self.take()
            return true() if tok.text == "TRUE" else false()
        return self.predicate()

    def _comparison_follows(self) -> bool:
        nxt = self.peek(1)
        return nxt is not None and (
            nxt.kind == "op" or (nxt.kind == "kw" and nxt.text in ("IS", "LIKE", "BETWEEN", "IN"))
        )

    def scalar(self) -> _Operand:
        tok = self.take()
        if tok.kind == "id":
            if tok.text.upper() in ("DATE", "TIMESTAMP") and self.peek() == Token("punct", "("):
                return self._temporal(tok.text.upper())
            col, kind = self.resolve(tok.text)
            return _Operand(col, kind, True)
        if tok.kind == "str":
            return _Operand(literal(tok.text[1:-1].replace("''", "'")), "string", False)
        if tok.kind == "num":
            value: float | int = float(tok.text)
            if re.fullmatch(r"[+-]?\d+", tok.text):
                value = int(tok.text)
                if abs(value) > 2**62:
                    raise _error("integer out of range")
                return _Operand(literal(value), "integer", False)
            if not math.isfinite(value):
                raise _error("numbers must be finite")
            return _Operand(literal(value), "number", False)
        if tok.kind == "kw" and tok.text in ("TRUE", "FALSE"):
            return _Operand(literal(tok.text == "TRUE"), "boolean", False)
        raise _error(f"expected a property or a literal, found {tok.text[:20]!r}")

    def _temporal(self, kind: str) -> _Operand:
        self.expect("punct", "(")
        text = self.expect("str").text[1:-1]
        self.expect("punct", ")")
        try:
            if kind == "DATE":
                return _Operand(literal(dt.date.fromisoformat(text)), "date", False)
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _error(f"invalid {kind} literal") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        return _Operand(literal(stamp), "datetime", False)

    def _check(self, a: _Operand, b: _Operand) -> None:
        if not (a.is_property or b.is_property):
            raise _error("a comparison needs at least one property")
        if not (_compatible(a.type, b.type) or _compatible(b.type, a.type)):
            raise _error(f"cannot compare {a.type} with {b.type}")

    def predicate(self) -> ColumnElement[bool]:
        left = self.scalar()
        negate = False
        if self.at_kw("IS"):
            self.take()
            if self.at_kw("NOT"):
                self.take()
                negate = True
            self.expect("kw", "NULL")
            if not left.is_property:
                raise _error("IS NULL applies to a property")
            return left.expr.is_not(None) if negate else left.expr.is_(None)
        if self.at_kw("NOT"):
            self.take()
            negate = True
        if self.at_kw("LIKE"):
            self.take()
            pattern = self.scalar()
            self._check(left, pattern)
            if left.type != "string" or pattern.is_property:
                raise _error("LIKE compares a string property with a string literal")
            expr: ColumnElement[bool] = left.expr.like(pattern.expr)
        elif self.at_kw("BETWEEN"):
            self.take()
            low = self.scalar()
            self.expect("kw", "AND")
            high = self.scalar()
            self._check(left, low)
            self._check(left, high)
            expr = left.expr.between(low.expr, high.expr)
        elif self.at_kw("IN"):
            self.take()
            self.expect("punct", "(")
            items = [self.scalar()]
            while self.peek() == Token("punct", ","):
                self.take()
                items.append(self.scalar())
            self.expect("punct", ")")
            for item in items:
                self._check(left, item)
            expr = left.expr.in_([item.expr for item in items])
        else:
            if negate:
                raise _error("NOT must precede LIKE, BETWEEN or IN here")
            op = self.expect("op").text
            right = self.scalar()
            self._check(left, right)
            expr = _compare(left.expr, op, right.expr)
        return not_(expr) if negate else expr


def _compare(a: ColumnElement[Any], op: str, b: ColumnElement[Any]) -> ColumnElement[bool]:
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b


def parse(source: str, resolve: Resolver) -> ColumnElement[bool]:
    """Parse CQL2 text into a SQLAlchemy boolean expression over resolved properties.

    Args:
        source: the ``filter`` parameter.
        resolve: maps a property name to (column, JSON type); raises for unknown names.

    Raises:
        BadParameter: the filter is malformed, too large, or names what is not queryable.
    """
    return _Parser(tokenize(source), resolve).parse()
