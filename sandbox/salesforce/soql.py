"""The SOQL subset of the Salesforce emulator: parse, compile to SQLite, shape REST records.

Pipeline::

    parse_soql(text) -> SoqlQuery                 syntax only, no schema
    compile_query(query, include_deleted=...)     names and types resolved against schema.SCHEMA
        -> CompiledQuery                          SQL + parameters + per-column row shapers

Every literal reaches SQLite as a parameter; SQL text only ever contains identifiers from the
schema and fixed keywords. Compile once per query; the emulator keeps the ``CompiledQuery``
for ``nextRecordsUrl`` paging and reads windows with :meth:`CompiledQuery.page` (or iterates
``sql`` with a cursor).

Salesforce behaviour reproduced here (SOQL and REST docs, facts doc A4), where it differs
from plain SQL:

* keywords, object and field names are case-insensitive; output uses the schema's API casing;
* text comparisons (``=``, ``!=``, ``<``…, ``IN``, ``LIKE``, ``ORDER BY``) ignore case — ASCII
  only, through SQLite ``NOCASE``;
* two-valued null logic: ``Industry != 'x'``, ``NOT IN`` and ``NOT (…)`` match rows where the
  field is null, ``<``/``>``/``LIKE`` never do; ``= ''`` means ``= null`` for text and ids;
* booleans are never null: ``= null`` means ``= false``, also across an empty lookup;
* ``AND`` and ``OR`` cannot be mixed without parentheses, and ``NOT`` may only open a
  condition list (``a AND NOT b`` is ``unexpected token: 'NOT'``);
* a date literal against a dateTime field (and any other literal of the wrong type) is
  ``INVALID_FIELD`` "value of filter criterion for field … must be of type …";
* dateTime literals need ``Z`` or ``±hh:mm`` (optional ``.SSS``) and are compared in UTC;
* 15-character ids in filters are converted to their 18-character form;
* long text areas cannot be filtered or sorted; ``OFFSET`` above 2,000 is rejected;
* results are ordered by the ``ORDER BY`` terms, then by ``Id`` so pages are stable.

Error messages copy Salesforce's shape: positional errors start with the offending line, a
caret and ``ERROR at Row:r:Column:c``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from sandbox.salesforce.schema import (
    NUMBER_TYPES,
    SCHEMA,
    TEXT_TYPES,
    FieldDef,
    SObjectDef,
    get_sobject,
    quote_ident,
)

__all__ = [
    "MAX_OFFSET",
    "Aggregate",
    "BoolOp",
    "Comparison",
    "CompiledQuery",
    "Condition",
    "CountAll",
    "FieldRef",
    "Not",
    "OrderItem",
    "SoqlError",
    "SoqlLiteral",
    "SoqlQuery",
    "compile_query",
    "id15_to_id18",
    "parse_soql",
]

MAX_OFFSET = 2000  # https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_offset.htm


class SoqlError(Exception):
    """A query Salesforce would refuse with HTTP 400 ``[{"message", "errorCode"}]``."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message

    def to_body(self) -> list[dict[str, str]]:
        """The REST error body for this error."""
        return [{"message": self.message, "errorCode": self.error_code}]


def _positional(text: str, pos: int, detail: str) -> str:
    """Salesforce's positional message: the line, a caret, ``ERROR at Row:r:Column:c``, detail."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    row = text.count("\n", 0, pos) + 1
    offset = pos - line_start
    start = 0
    if len(line) > 120:
        # Long lines are cut to a window around the error, like Salesforce does.
        start = max(0, offset - 60)
        line = line[start : offset + 40]
    return f"\n{line}\n{' ' * (offset - start)}^\nERROR at Row:{row}:Column:{offset + 1}\n{detail}"


# =========================================================================== syntax tree


@dataclass(frozen=True)
class FieldRef:
    """A field path as written, e.g. ``("Owner", "Name")``; ``pos`` is its offset in the text."""

    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True)
class CountAll:
    """``COUNT()``: the query returns only ``totalSize``."""

    pos: int


@dataclass(frozen=True)
class Aggregate:
    """``COUNT(Id)``, ``MAX(Amount) alias`` …: one column of an ``AggregateResult`` record."""

    function: str
    field: FieldRef
    alias: str | None
    pos: int


SelectItem: TypeAlias = FieldRef | CountAll | Aggregate

LiteralKind = Literal["string", "number", "boolean", "null", "date", "datetime", "relative"]


@dataclass(frozen=True)
class SoqlLiteral:
    """A literal value.

    ``value`` by kind: ``string`` the raw text between the quotes (escapes are decoded at
    compile time, because ``\\%`` means something only in LIKE); ``number`` int or float;
    ``boolean`` bool; ``null`` None; ``date`` ``YYYY-MM-DD``; ``datetime`` the UTC storage form
    ``YYYY-MM-DDTHH:MM:SS.fffZ``; ``relative`` ``(name, n or None)`` such as ``("LAST_N_DAYS", 7)``.
    """

    kind: LiteralKind
    value: Any
    text: str
    pos: int


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``op`` is one of ``= != < <= > >= LIKE IN NOT IN``."""

    field: FieldRef
    op: str
    value: SoqlLiteral | tuple[SoqlLiteral, ...]
    pos: int


@dataclass(frozen=True)
class BoolOp:
    """Two or more conditions joined by one operator, ``AND`` or ``OR``."""

    op: Literal["AND", "OR"]
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """``NOT condition``."""

    operand: Condition


Condition: TypeAlias = Comparison | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    """One ``ORDER BY`` term; ``nulls_first`` None means Salesforce's default for the direction."""

    field: FieldRef
    descending: bool
    nulls_first: bool | None


@dataclass(frozen=True)
class SoqlQuery:
    """A parsed query (syntax only: names are not checked against the schema yet)."""

    text: str
    select: tuple[SelectItem, ...]
    sobject: str
    sobject_pos: int
    alias: str | None
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None
    offset_pos: int


# =========================================================================== tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # ident string number date datetime op punct eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


_TOKEN_RE = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),.:+\-])
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            char = text[pos]
            detail = (
                "unterminated string literal"
                if char == "'"
                else f"no viable alternative at character '{char}'"
            )
            raise SoqlError("MALFORMED_QUERY", _positional(text, pos, detail))
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Token("eof", "<EOF>", len(text)))
    return tokens


# Words that cannot start a field path or serve as an alias.
_RESERVED = frozenset(
    """SELECT FROM WHERE AND OR NOT IN LIKE ORDER BY LIMIT OFFSET ASC DESC NULLS NULL TRUE FALSE
    GROUP HAVING WITH FOR USING INCLUDES EXCLUDES TYPEOF END UPDATE VIEW REFERENCE""".split()
)
_UNSUPPORTED_CLAUSES = frozenset({"GROUP", "HAVING", "WITH", "USING", "FOR", "TYPEOF"})
_AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "MIN", "MAX", "SUM", "AVG"})
_RELATIVE_PLAIN = frozenset(
    {
        "TODAY",
        "YESTERDAY",
        "TOMORROW",
        "LAST_WEEK",
        "THIS_WEEK",
        "NEXT_WEEK",
        "LAST_MONTH",
        "THIS_MONTH",
        "NEXT_MONTH",
        "LAST_90_DAYS",
        "NEXT_90_DAYS",
        "LAST_YEAR",
        "THIS_YEAR",
        "NEXT_YEAR",
    }
)
_RELATIVE_N = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO"})
_COMPARISON_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ESCAPES = {
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:\d{2})"
)


# =========================================================================== parser


def parse_soql(text: str) -> SoqlQuery:
    """Parse one SOQL query. Raises :class:`SoqlError` ``MALFORMED_QUERY`` on bad syntax."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- token helpers

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> _Token:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def at(self, *words: str) -> bool:
        return self.peek().upper in words

    def at_punct(self, char: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "punct" and tok.text == char

    def error(self, tok: _Token, note: str = "") -> SoqlError:
        shown = tok.text if tok.kind != "eof" else "<EOF>"
        detail = f"unexpected token: '{shown}'" + (f" ({note})" if note else "")
        return SoqlError("MALFORMED_QUERY", _positional(self.text, tok.pos, detail))

    def expect_keyword(self, word: str) -> _Token:
        tok = self.next()
        if tok.upper != word:
            raise self.error(tok)
        return tok

    def expect_punct(self, char: str) -> _Token:
        tok = self.next()
        if not (tok.kind == "punct" and tok.text == char):
            raise self.error(tok)
        return tok

    def integer(self) -> int:
        tok = self.next()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error(tok)
        return int(tok.text)

    # -- grammar

    def parse(self) -> SoqlQuery:
        self.expect_keyword("SELECT")
        select = self.select_list()
        self.expect_keyword("FROM")
        obj = self.next()
        if obj.kind != "ident" or obj.upper in _RESERVED:
            raise self.error(obj)
        alias = None
        if self.peek().kind == "ident" and self.peek().upper not in _RESERVED:
            alias = self.next().text
        where = None
        if self.at("WHERE"):
            self.next()
            where = self.condition()
        self.refuse_unsupported()
        order_by: tuple[OrderItem, ...] = ()
        if self.at("ORDER"):
            self.next()
            self.expect_keyword("BY")
            order_by = self.order_list()
        limit = offset = None
        if self.at("LIMIT"):
            self.next()
            limit = self.integer()
        offset_pos = self.peek().pos
        if self.at("OFFSET"):
            self.next()
            offset_pos = self.peek().pos
            offset = self.integer()
        self.refuse_unsupported()
        if self.peek().kind != "eof":
            raise self.error(self.peek())
        return SoqlQuery(
            text=self.text,
            select=select,
            sobject=obj.text,
            sobject_pos=obj.pos,
            alias=alias,
            where=where,
            order_by=order_by,
            limit=limit,
            offset=offset,
            offset_pos=offset_pos,
        )

    def refuse_unsupported(self) -> None:
        if self.at(*_UNSUPPORTED_CLAUSES):
            raise self.error(self.peek(), "not supported by the Salesforce emulator")

    def select_list(self) -> tuple[SelectItem, ...]:
        items = [self.select_item()]
        while self.at_punct(","):
            self.next()
            items.append(self.select_item())
        return tuple(items)

    def select_item(self) -> SelectItem:
        tok = self.peek()
        if tok.kind == "ident" and self.at_punct("(", 1):
            if tok.upper == "COUNT" and self.at_punct(")", 2):
                self.i += 3
                return CountAll(tok.pos)
            if tok.upper in _AGGREGATES:
                self.i += 2
                ref = self.field_ref()
                self.expect_punct(")")
                alias = None
                if self.peek().kind == "ident" and self.peek().upper not in _RESERVED:
                    alias = self.next().text
                return Aggregate(tok.upper, ref, alias, tok.pos)
            raise self.error(self.peek(1), f"{tok.text}() is not supported by the emulator")
        if self.at_punct("("):
            raise self.error(tok, "subqueries are not supported by the Salesforce emulator")
        return self.field_ref()

    def field_ref(self) -> FieldRef:
        tok = self.next()
        if tok.kind != "ident" or tok.upper in _RESERVED:
            raise self.error(tok)
        parts = [tok.text]
        while self.at_punct("."):
            self.next()
            part = self.next()
            if part.kind != "ident":
                raise self.error(part)
            parts.append(part.text)
        return FieldRef(tuple(parts), tok.pos)

    def condition(self) -> Condition:
        terms = [self.term(first=True)]
        op: str | None = None
        while self.at("AND", "OR"):
            tok = self.peek()
            if op is None:
                op = tok.upper
            elif tok.upper != op:
                # Salesforce refuses to guess precedence: mixing needs parentheses.
                raise self.error(tok)
            self.next()
            terms.append(self.term(first=False))
        if op is None:
            return terms[0]
        return BoolOp("AND" if op == "AND" else "OR", tuple(terms))

    def term(self, *, first: bool) -> Condition:
        if self.at("NOT"):
            if not first:
                raise self.error(self.peek())
            self.next()
            return Not(self.primary())
        return self.primary()

    def primary(self) -> Condition:
        if self.at_punct("("):
            self.next()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        ref = self.field_ref()
        tok = self.next()
        if tok.kind == "op":
            return Comparison(ref, _COMPARISON_OPS[tok.text], self.literal(), tok.pos)
        if tok.upper == "LIKE":
            return Comparison(ref, "LIKE", self.literal(), tok.pos)
        if tok.upper == "IN":
            return Comparison(ref, "IN", self.literal_list(), tok.pos)
        if tok.upper == "NOT" and self.at("IN"):
            self.next()
            return Comparison(ref, "NOT IN", self.literal_list(), tok.pos)
        if tok.upper in ("INCLUDES", "EXCLUDES"):
            raise self.error(tok, "not supported by the Salesforce emulator")
        raise self.error(tok)

    def literal_list(self) -> tuple[SoqlLiteral, ...]:
        self.expect_punct("(")
        if self.at("SELECT"):
            raise self.error(self.peek(), "semi-joins are not supported by the Salesforce emulator")
        values = [self.literal()]
        while self.at_punct(","):
            self.next()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def order_list(self) -> tuple[OrderItem, ...]:
        items = []
        while True:
            ref = self.field_ref()
            descending = False
            if self.at("ASC", "DESC"):
                descending = self.next().upper == "DESC"
            nulls_first = None
            if self.at("NULLS"):
                self.next()
                tok = self.next()
                if tok.upper not in ("FIRST", "LAST"):
                    raise self.error(tok)
                nulls_first = tok.upper == "FIRST"
            items.append(OrderItem(ref, descending, nulls_first))
            if not self.at_punct(","):
                return tuple(items)
            self.next()

    def literal(self) -> SoqlLiteral:
        tok = self.next()
        if tok.kind == "string":
            raw = tok.text[1:-1]
            self.check_escapes(raw, tok.pos + 1)
            return SoqlLiteral("string", raw, tok.text, tok.pos)
        if tok.kind == "punct" and tok.text in "+-":
            number = self.next()
            if number.kind != "number":
                raise self.error(number)
            lit = self.number(number)
            value = -lit.value if tok.text == "-" else lit.value
            return SoqlLiteral("number", value, tok.text + number.text, tok.pos)
        if tok.kind == "number":
            return self.number(tok)
        if tok.kind == "date":
            return SoqlLiteral("date", self.date_value(tok), tok.text, tok.pos)
        if tok.kind == "datetime":
            return SoqlLiteral("datetime", self.datetime_value(tok), tok.text, tok.pos)
        if tok.kind == "ident":
            word = tok.upper
            if word in ("TRUE", "FALSE"):
                return SoqlLiteral("boolean", word == "TRUE", tok.text, tok.pos)
            if word == "NULL":
                return SoqlLiteral("null", None, tok.text, tok.pos)
            if word in _RELATIVE_PLAIN:
                return SoqlLiteral("relative", (word, None), tok.text, tok.pos)
            if word in _RELATIVE_N:
                self.expect_punct(":")
                n = self.integer()
                return SoqlLiteral("relative", (word, n), f"{tok.text}:{n}", tok.pos)
        raise self.error(tok)

    def number(self, tok: _Token) -> SoqlLiteral:
        if "e" in tok.text.lower():
            raise self.error(tok)  # SOQL has no exponent notation
        value: int | float = float(tok.text) if "." in tok.text else int(tok.text)
        return SoqlLiteral("number", value, tok.text, tok.pos)

    def date_value(self, tok: _Token) -> str:
        try:
            dt.date.fromisoformat(tok.text)
        except ValueError:
            raise SoqlError(
                "MALFORMED_QUERY", _positional(self.text, tok.pos, f"Invalid date: {tok.text}")
            ) from None
        return tok.text

    def datetime_value(self, tok: _Token) -> str:
        invalid = SoqlError(
            "MALFORMED_QUERY", _positional(self.text, tok.pos, f"Invalid datetime: {tok.text}")
        )
        m = _DATETIME_RE.fullmatch(tok.text)
        if m is None:
            raise invalid
        year, month, day, hour, minute, second, frac, zone = m.groups()
        try:
            tz = dt.UTC
            if zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                hours, minutes = int(zone[1:3]), int(zone[4:6])
                tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
            value = dt.datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                int((frac or "0").ljust(3, "0")) * 1000,
                tzinfo=tz,
            )
        except ValueError:
            raise invalid from None
        return _format_datetime_storage(value)

    def check_escapes(self, raw: str, pos: int) -> None:
        i = 0
        while i < len(raw):
            if raw[i] == "\\":
                nxt = raw[i + 1 : i + 2]
                ok = nxt in _ESCAPES or nxt in ("%", "_")
                width = 2
                if nxt == "u":
                    ok = re.fullmatch(r"[0-9A-Fa-f]{4}", raw[i + 2 : i + 6]) is not None
                    width = 6
                if not ok:
                    seq = raw[i : i + 2]
                    raise SoqlError(
                        "MALFORMED_QUERY",
                        _positional(
                            self.text,
                            pos + i,
                            f"Invalid string literal '{raw}'. "
                            f"Illegal character sequence '{seq}' in string literal.",
                        ),
                    )
                i += width
            else:
                i += 1


def _format_datetime_storage(value: dt.datetime) -> str:
    """A timezone-aware datetime in the storage form ``YYYY-MM-DDTHH:MM:SS.fffZ`` (UTC)."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _decode_string(raw: str, *, like: bool) -> str | None:
    """Decode SOQL escapes. For LIKE, return an SQLite pattern for ``ESCAPE '\\'``.

    Returns None when the text holds ``\\%`` or ``\\_`` outside LIKE (an error in SOQL).
    """
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\":
            nxt = raw[i + 1]
            if nxt in ("%", "_"):
                if not like:
                    return None
                out.append("\\" + nxt)
                i += 2
                continue
            if nxt == "u":
                char = chr(int(raw[i + 2 : i + 6], 16))
                i += 6
            else:
                char = _ESCAPES[nxt]
                i += 2
            # A decoded character is literal text, even in LIKE.
            out.append("\\" + char if like and char in "%_\\" else char)
            continue
        out.append(char)
        i += 1
    return "".join(out)


# =========================================================================== ids

_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def id15_to_id18(id15: str) -> str:
    """The 18-character form of a 15-character Salesforce id (case-encoding suffix added)."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for j, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << j
        suffix += _ID_SUFFIX[bits]
    return id15 + suffix


def _canonical_id(text: str) -> str | None:
    """The 18-character id ``text`` names (15 or 18 characters, any case), None if invalid.

    18-character ids are case-insensitive: the suffix encodes which of the first 15
    characters are upper case, so the original casing can be restored.
    """
    if _ID_RE.fullmatch(text) is None:
        return None
    if len(text) == 15:
        return id15_to_id18(text)
    restored = []
    for chunk, code in enumerate(text[15:].upper()):
        bits = _ID_SUFFIX.find(code)
        if bits < 0:
            return None
        for position, char in enumerate(text[chunk * 5 : chunk * 5 + 5]):
            upper = bool(bits & (1 << position))
            if char.isdigit():
                if upper:
                    return None
                restored.append(char)
            else:
                restored.append(char.upper() if upper else char.lower())
    return id15_to_id18("".join(restored))


# =========================================================================== compiled form

Row: TypeAlias = Sequence[Any]
SqlParam: TypeAlias = str | int | float | None
_Getter: TypeAlias = Callable[[Row, str], Any]


@dataclass(frozen=True)
class CompiledQuery:
    """A query ready to run on the emulator's SQLite connection.

    ``kind``:

    * ``records`` — run ``sql``/``params`` (or windows from :meth:`page`) and turn each row
      into a REST record with :meth:`shape_row`; ``totalSize`` comes from ``count_sql``;
    * ``count`` — ``SELECT COUNT() …``: ``count_sql`` gives ``totalSize``; there are no records;
    * ``aggregate`` — one ``AggregateResult`` row (``expr0`` …) from ``sql``, via :meth:`shape_row`.

    Rows are plain tuples (the default ``sqlite3`` row factory).
    """

    sobject: str
    kind: Literal["records", "count", "aggregate"]
    sql: str
    params: tuple[SqlParam, ...]
    count_sql: str
    count_params: tuple[SqlParam, ...]
    field_paths: tuple[str, ...]
    limit: int | None
    offset: int
    base_sql: str = field(repr=False)
    base_params: tuple[SqlParam, ...] = field(repr=False)
    _shape: _Getter = field(repr=False)
    _flatten: Callable[[Row], tuple[Any, ...]] = field(repr=False)

    def shape_row(self, row: Row, api_version: str) -> dict[str, Any]:
        """The REST record for one row, e.g. ``{"attributes": {...}, "Id": ..., "Owner": {...}}``.

        ``api_version`` is the version of the request path without ``v`` (``"59.0"``).
        """
        record: dict[str, Any] = self._shape(row, f"/services/data/v{api_version}/sobjects/")
        return record

    def flatten_row(self, row: Row) -> tuple[Any, ...]:
        """The selected values in ``field_paths`` order, rendered as in :meth:`shape_row`.

        A field reached through an empty lookup is None (for Bulk API CSV results).
        """
        return self._flatten(row)

    def page(self, start: int, size: int) -> tuple[str, tuple[SqlParam, ...]]:
        """SQL and parameters for rows ``start`` … ``start + size - 1`` of the full result.

        Honours the query's own ``LIMIT``/``OFFSET``; the ordering always ends with ``Id``, so
        consecutive windows neither skip nor repeat rows while the data is unchanged. Each
        window re-runs the query and skips ``start`` rows, so for large results prefer a
        snapshot: ``CREATE TEMP TABLE … AS`` + ``sql`` (columns are named ``c0``, ``c1`` …, in
        the order :meth:`shape_row` expects), then read it by ``rowid``.
        """
        if self.kind == "count":
            raise ValueError("COUNT() queries have no rows to page through")
        size = max(0, size)
        if self.limit is not None:
            size = max(0, min(size, self.limit - start))
        return self.base_sql + " LIMIT ? OFFSET ?", (*self.base_params, size, self.offset + start)


# =========================================================================== formatters


def _fmt_datetime(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) == 24 and text[-1] == "Z":  # the storage form: the fast path
        return text[:23] + "+0000"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return _format_datetime_storage(parsed)[:23] + "+0000"


def _fmt_bool(value: Any) -> bool:
    return bool(value)  # never null in Salesforce; a null column renders false


def _fmt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _fmt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _fmt_date(value: Any) -> str | None:
    return None if value is None else str(value)[:10]


_FORMATTERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _fmt_datetime,
    "date": _fmt_date,
    "boolean": _fmt_bool,
    "currency": _fmt_float,
    "double": _fmt_float,
    "percent": _fmt_float,
    "int": _fmt_int,
}


def _leaf_getter(index: int, fmt: Callable[[Any], Any] | None) -> _Getter:
    if fmt is None:
        return lambda row, _prefix: row[index]
    return lambda row, _prefix: fmt(row[index])


def _record_getter(
    id_index: int,
    type_name: str | None,
    type_index: int,
    items: list[tuple[str, _Getter]],
    *,
    nullable: bool,
) -> _Getter:
    def shape(row: Row, prefix: str) -> dict[str, Any] | None:
        record_id = row[id_index]
        if record_id is None and nullable:
            return None
        sobject = type_name if type_name is not None else row[type_index]
        record: dict[str, Any] = {
            "attributes": {"type": sobject, "url": f"{prefix}{sobject}/{record_id}"}
        }
        for key, get in items:
            record[key] = get(row, prefix)
        return record

    return shape


# =========================================================================== compiler

_INVALID_FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom "
    "field name. Please reference your WSDL or the describe call for the appropriate names."
)
_INVALID_RELATIONSHIP_HINT = (
    "If you are attempting to use a custom relationship, be sure to append the '__r' after the "
    "custom relationship name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)
_INVALID_TYPE_HINT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the entity "
    "name. Please reference your WSDL or the describe call for the appropriate names."
)
# What a polymorphic lookup (Task.What) exposes without TYPEOF: the "Name" pseudo-object.
_POLYMORPHIC_FIELDS = {
    "id": FieldDef("Id", "id", length=18),
    "name": FieldDef("Name", "string", length=255),
    "type": FieldDef("Type", "picklist", length=40),
}


@dataclass
class _Join:
    key: tuple[str, ...]  # lower-cased relationship path
    relationship: str  # API casing, e.g. "Owner"
    targets: list[tuple[SObjectDef, str]]  # (sObject, SQL alias)
    chain: tuple[_Join, ...]  # joins from the root down to and including this one

    @property
    def polymorphic(self) -> bool:
        return len(self.targets) > 1

    @property
    def id_expr(self) -> str:
        ids = [f'{alias}."Id"' for _, alias in self.targets]
        return ids[0] if len(ids) == 1 else f"COALESCE({', '.join(ids)})"

    @property
    def type_expr(self) -> str:
        # Type names are schema constants, not user input.
        whens = " ".join(f"WHEN {a}.\"Id\" IS NOT NULL THEN '{o.name}'" for o, a in self.targets)
        return f"CASE {whens} END"


@dataclass
class _Resolved:
    expr: str
    field: FieldDef
    chain: tuple[_Join, ...]
    path: str  # API casing, e.g. "Owner.Name"


@dataclass
class _RenderNode:
    join: _Join | None
    children: dict[str, _RenderNode | tuple[str, int, Callable[[Any], Any] | None]] = field(
        default_factory=dict
    )


class _Compiler:
    def __init__(self, query: SoqlQuery, obj: SObjectDef, now: dt.datetime) -> None:
        self.query = query
        self.obj = obj
        self.today = now.astimezone(dt.UTC).date()
        self.joins: dict[tuple[str, ...], _Join] = {}
        self.join_sql: list[tuple[tuple[str, ...], str]] = []
        self.where_joins: set[tuple[str, ...]] = set()
        self.params: list[SqlParam] = []
        self.columns: list[str] = []
        self.column_index: dict[str, int] = {}

    # -- errors

    def fail(self, code: str, pos: int, detail: str) -> SoqlError:
        return SoqlError(code, _positional(self.query.text, pos, detail))

    # -- names

    def resolve(self, ref: FieldRef) -> _Resolved:
        parts = list(ref.path)
        alias = self.query.alias
        if alias and len(parts) > 1 and parts[0].lower() == alias.lower():
            parts = parts[1:]
        obj: SObjectDef | None = self.obj
        table_alias = "t0"
        join: _Join | None = None
        api_path: list[str] = []
        for depth, name in enumerate(parts[:-1]):
            reference = obj.relationship(name) if obj is not None else None
            targets = (
                [SCHEMA[t] for t in reference.reference_to if t in SCHEMA] if reference else []
            )
            if reference is None or not targets:
                raise self.fail(
                    "INVALID_FIELD",
                    ref.pos,
                    f"Didn't understand relationship '{name}' in field path. "
                    + _INVALID_RELATIONSHIP_HINT,
                )
            key = tuple(p.lower() for p in parts[: depth + 1])
            join = self.joins.get(key) or self.add_join(
                key, reference, targets, f"{table_alias}.{quote_ident(reference.name)}", join
            )
            api_path.append(join.relationship)
            if join.polymorphic:
                obj = None  # only the Name pseudo-object's fields are reachable
            else:
                obj, table_alias = join.targets[0]
        final = parts[-1]
        chain = join.chain if join else ()
        if join is not None and join.polymorphic:
            fdef = _POLYMORPHIC_FIELDS.get(final.lower())
            if fdef is None:
                raise self.fail("INVALID_FIELD", ref.pos, self.no_such_column(final, "Name"))
            if fdef.name == "Id":
                expr = join.id_expr
            elif fdef.name == "Type":
                expr = join.type_expr
            else:
                names = [f'{a}."Name"' for o, a in join.targets if o.field("Name")]
                expr = f"COALESCE({', '.join(names)})"
            return _Resolved(expr, fdef, chain, ".".join([*api_path, fdef.name]))
        assert obj is not None
        found = obj.field(final)
        if found is None:
            raise self.fail("INVALID_FIELD", ref.pos, self.no_such_column(final, obj.name))
        expr = f"{table_alias}.{quote_ident(found.name)}"
        return _Resolved(expr, found, chain, ".".join([*api_path, found.name]))

    @staticmethod
    def no_such_column(name: str, entity: str) -> str:
        return f"No such column '{name}' on entity '{entity}'. " + _INVALID_FIELD_HINT

    def add_join(
        self,
        key: tuple[str, ...],
        reference: FieldDef,
        targets: list[SObjectDef],
        parent_column: str,
        parent: _Join | None,
    ) -> _Join:
        aliased = []
        for target in targets:
            alias = f"t{len(self.join_sql) + 1}"
            aliased.append((target, alias))
            self.join_sql.append(
                (
                    key,
                    f"LEFT JOIN {quote_ident(target.name)} AS {alias} "
                    f'ON {alias}."Id" = {parent_column}',
                )
            )
        assert reference.relationship_name is not None
        join = _Join(key, reference.relationship_name, aliased, ())
        join.chain = (*(parent.chain if parent else ()), join)
        self.joins[key] = join
        return join

    def column(self, expr: str) -> int:
        index = self.column_index.get(expr)
        if index is None:
            index = self.column_index[expr] = len(self.columns)
            self.columns.append(expr)
        return index

    # -- SELECT

    def compile_records(
        self, refs: Sequence[FieldRef]
    ) -> tuple[_Getter, Callable[[Row], tuple[Any, ...]], tuple[str, ...]]:
        root = _RenderNode(None)
        root_id = self.column('t0."Id"')
        seen: set[str] = set()
        flat: list[tuple[int, Callable[[Any], Any] | None, tuple[int, ...]]] = []
        paths: list[str] = []
        for ref in refs:
            resolved = self.resolve(ref)
            if resolved.path.lower() in seen:
                raise SoqlError("INVALID_FIELD", f"duplicate field selected: {resolved.path}")
            seen.add(resolved.path.lower())
            node = root
            guards = []
            for join in resolved.chain:
                guards.append(self.column(join.id_expr))
                child = node.children.get("." + join.relationship)
                if not isinstance(child, _RenderNode):
                    child = node.children["." + join.relationship] = _RenderNode(join)
                node = child
            index = self.column(resolved.expr)
            fmt = _FORMATTERS.get(resolved.field.type)
            node.children[resolved.field.name] = (resolved.field.name, index, fmt)
            flat.append((index, fmt, tuple(guards)))
            paths.append(resolved.path)
        shape = self.build_getter(root, root_id)

        def flatten(row: Row) -> tuple[Any, ...]:
            values: list[Any] = []
            for index, fmt, guards in flat:
                if any(row[g] is None for g in guards):
                    values.append(None)
                else:
                    values.append(row[index] if fmt is None else fmt(row[index]))
            return tuple(values)

        return shape, flatten, tuple(paths)

    def build_getter(self, node: _RenderNode, id_index: int | None = None) -> _Getter:
        items: list[tuple[str, _Getter]] = []
        for child in node.children.values():
            if isinstance(child, _RenderNode):
                assert child.join is not None
                items.append((child.join.relationship, self.build_getter(child)))
            else:
                name, index, fmt = child
                items.append((name, _leaf_getter(index, fmt)))
        if node.join is None:
            assert id_index is not None
            return _record_getter(id_index, self.obj.name, 0, items, nullable=False)
        join = node.join
        id_col = self.column(join.id_expr)
        if join.polymorphic:
            return _record_getter(id_col, None, self.column(join.type_expr), items, nullable=True)
        return _record_getter(id_col, join.targets[0][0].name, 0, items, nullable=True)

    def compile_aggregates(self, items: Sequence[Aggregate]) -> tuple[_Getter, tuple[str, ...]]:
        getters: list[tuple[str, _Getter]] = []
        unnamed = 0
        for item in items:
            resolved = self.resolve(item.field)
            ftype = resolved.field.type
            numeric = ftype in NUMBER_TYPES
            if item.function in ("SUM", "AVG") and not numeric:
                raise self.fail(
                    "MALFORMED_QUERY",
                    item.field.pos,
                    f"field {resolved.path} does not support aggregate operator {item.function}",
                )
            if item.function in ("MIN", "MAX") and ftype in ("boolean", "textarea"):
                raise self.fail(
                    "MALFORMED_QUERY",
                    item.field.pos,
                    f"field {resolved.path} does not support aggregate operator {item.function}",
                )
            fmt: Callable[[Any], Any]
            if item.function == "COUNT":
                sql, fmt = f"COUNT({resolved.expr})", _fmt_int
            elif item.function == "COUNT_DISTINCT":
                sql, fmt = f"COUNT(DISTINCT {resolved.expr})", _fmt_int
            elif item.function in ("SUM", "AVG"):
                sql, fmt = f"{item.function}({resolved.expr})", _fmt_float
            else:
                sql = f"{item.function}({resolved.expr})"
                fmt = _FORMATTERS.get(ftype) or (lambda v: v)
            if item.alias is None:
                key = f"expr{unnamed}"
                unnamed += 1
            else:
                key = item.alias
            getters.append((key, _leaf_getter(self.column(sql), fmt)))

        def shape(row: Row, _prefix: str) -> dict[str, Any]:
            record: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for key, get in getters:
                record[key] = get(row, _prefix)
            return record

        return shape, tuple(key for key, _ in getters)

    # -- WHERE

    def condition(self, cond: Condition, negate: bool) -> str:
        if isinstance(cond, Not):
            return self.condition(cond.operand, not negate)
        if isinstance(cond, BoolOp):
            # De Morgan: push NOT down to the comparisons, which know how nulls behave.
            op = cond.op if not negate else ("OR" if cond.op == "AND" else "AND")
            parts = [self.condition(c, negate) for c in cond.operands]
            return "(" + f" {op} ".join(parts) + ")"
        return self.comparison(cond, negate)

    def comparison(self, cmp: Comparison, negate: bool) -> str:
        resolved = self.resolve(cmp.field)
        for join in resolved.chain:
            self.where_joins.add(join.key)
        fdef = resolved.field
        if not fdef.filterable:
            raise self.fail(
                "INVALID_FIELD",
                cmp.field.pos,
                f"field '{fdef.name}' can not be filtered in a query call",
            )
        expr = resolved.expr
        if fdef.type == "boolean":
            # Booleans are never null; an empty lookup's boolean reads as false.
            expr = f"COALESCE({expr}, 0)"
        op = cmp.op
        if op in ("IN", "NOT IN"):
            assert isinstance(cmp.value, tuple)
            return self.in_list(resolved, expr, cmp.value, negate=negate != (op == "NOT IN"))
        assert isinstance(cmp.value, SoqlLiteral)
        lit = cmp.value
        if op == "!=":
            op, negate = "=", not negate
        if op == "LIKE":
            return self.like(resolved, expr, lit, negate)
        if lit.kind == "relative":
            return self.relative(resolved, expr, op, lit, negate)
        value = self.value(resolved, lit)
        if fdef.type == "boolean":
            bool_value = 1 if value else 0  # "= null" means "= false"
            if op == "=":
                self.params.append(bool_value)
                return f"{expr} {'!=' if negate else '='} ?"
            value = bool_value
        if value is None:
            if op == "=":
                return f"{expr} {'IS NOT' if negate else 'IS'} NULL"
            return "0" if not negate else "1"  # ordering against null matches nothing
        self.params.append(value)
        collate = " COLLATE NOCASE" if fdef.type in TEXT_TYPES else ""
        return self.negatable(f"{expr}{collate} {op} ?", expr, negate)

    @staticmethod
    def negatable(predicate: str, expr: str, negate: bool, *, matches_null: bool = False) -> str:
        """``predicate`` or its two-valued negation (a null field satisfies exactly one)."""
        if not negate:
            return predicate
        if matches_null:
            return f"NOT ({predicate})"
        return f"(NOT ({predicate}) OR {expr} IS NULL)"

    def in_list(
        self,
        resolved: _Resolved,
        expr: str,
        literals: Sequence[SoqlLiteral],
        *,
        negate: bool,
    ) -> str:
        values: list[SqlParam] = []
        has_null = False
        for lit in literals:
            if lit.kind == "relative":
                raise self.fail("MALFORMED_QUERY", lit.pos, f"unexpected token: '{lit.text}'")
            value = self.value(resolved, lit)
            if resolved.field.type == "boolean":
                value = 1 if value else 0
            if value is None:
                has_null = True
            else:
                values.append(value)
        if not values:
            return f"{expr} {'IS NOT' if negate else 'IS'} NULL"
        self.params.extend(values)
        collate = " COLLATE NOCASE" if resolved.field.type in TEXT_TYPES else ""
        predicate = f"{expr}{collate} IN ({', '.join('?' * len(values))})"
        if has_null:
            predicate = f"({predicate} OR {expr} IS NULL)"
        return self.negatable(predicate, expr, negate, matches_null=has_null)

    def like(self, resolved: _Resolved, expr: str, lit: SoqlLiteral, negate: bool) -> str:
        fdef = resolved.field
        if fdef.type not in TEXT_TYPES:
            raise self.fail(
                "INVALID_FIELD",
                lit.pos,
                f"invalid operator on field '{fdef.name}': LIKE applies to text fields only",
            )
        if lit.kind != "string":
            raise self.type_mismatch(fdef, lit)
        pattern = _decode_string(lit.value, like=True)
        assert pattern is not None
        self.params.append(pattern)
        return self.negatable(f"{expr} LIKE ? ESCAPE '\\'", expr, negate)

    def relative(
        self, resolved: _Resolved, expr: str, op: str, lit: SoqlLiteral, negate: bool
    ) -> str:
        fdef = resolved.field
        if fdef.type not in ("date", "datetime"):
            raise self.type_mismatch(fdef, lit)
        first, after = _relative_range(lit.value[0], lit.value[1], self.today)
        start, end = (
            (first.isoformat(), after.isoformat())
            if fdef.type == "date"
            else (f"{first.isoformat()}T00:00:00.000Z", f"{after.isoformat()}T00:00:00.000Z")
        )
        if op == "=":
            self.params.extend((start, end))
            predicate = f"({expr} >= ? AND {expr} < ?)"
        else:
            bound = {"<": start, "<=": end, ">": end, ">=": start}[op]
            sql_op = {"<": "<", "<=": "<", ">": ">=", ">=": ">="}[op]
            self.params.append(bound)
            predicate = f"{expr} {sql_op} ?"
        return self.negatable(predicate, expr, negate)

    def type_mismatch(self, fdef: FieldDef, lit: SoqlLiteral) -> SoqlError:
        if fdef.type in TEXT_TYPES or fdef.type in ("id", "reference"):
            wanted, quoted = "string", True
        elif fdef.type == "datetime":
            wanted, quoted = "dateTime", False
        elif fdef.type == "int":
            wanted, quoted = "integer", False
        elif fdef.type in NUMBER_TYPES:
            wanted, quoted = "double", False
        else:
            wanted, quoted = fdef.type, False
        return self.fail(
            "INVALID_FIELD",
            lit.pos,
            f"value of filter criterion for field '{fdef.name}' must be of type {wanted} "
            f"and should {'' if quoted else 'not '}be enclosed in quotes",
        )

    def value(self, resolved: _Resolved, lit: SoqlLiteral) -> SqlParam:
        """The SQL parameter for ``lit`` compared with the field, checking the literal's type."""
        fdef = resolved.field
        ftype = fdef.type
        if lit.kind == "null":
            return None
        if ftype in TEXT_TYPES or ftype in ("id", "reference"):
            if lit.kind != "string":
                raise self.type_mismatch(fdef, lit)
            text = _decode_string(lit.value, like=False)
            if text is None:
                raise self.fail(
                    "MALFORMED_QUERY",
                    lit.pos,
                    f"Invalid string literal {lit.text}. "
                    "Illegal character sequence in string literal outside LIKE.",
                )
            if text == "":
                return None  # Salesforce stores empty text as null
            if ftype in ("id", "reference"):
                canonical = _canonical_id(text)
                if canonical is None:
                    raise self.fail(
                        "INVALID_QUERY_FILTER_OPERATOR", lit.pos, f"invalid ID field: {text}"
                    )
                return canonical
            return text
        expected = {
            "boolean": "boolean",
            "date": "date",
            "datetime": "datetime",
        }.get(ftype, "number")
        if lit.kind != expected:
            raise self.type_mismatch(fdef, lit)
        if ftype == "boolean":
            return 1 if lit.value else 0
        value: SqlParam = lit.value
        return value

    # -- ORDER BY

    def order_by(self) -> str:
        terms = []
        by_id = False
        for item in self.query.order_by:
            resolved = self.resolve(item.field)
            if not resolved.field.sortable:
                raise self.fail(
                    "INVALID_FIELD",
                    item.field.pos,
                    f"field '{resolved.field.name}' can not be sorted in a query call",
                )
            by_id = by_id or resolved.expr == 't0."Id"'
            collate = " COLLATE NOCASE" if resolved.field.type in TEXT_TYPES else ""
            nulls_first = item.nulls_first if item.nulls_first is not None else not item.descending
            direction = "DESC" if item.descending else "ASC"
            terms.append(
                f"{resolved.expr}{collate} {direction} NULLS {'FIRST' if nulls_first else 'LAST'}"
            )
        if not by_id:
            terms.append('t0."Id" ASC')  # a total order, so OFFSET pages are stable
        return ", ".join(terms)

    def from_clause(self, *, where_only: bool) -> str:
        joins = [sql for key, sql in self.join_sql if not where_only or key in self.where_joins]
        return " ".join([f"{quote_ident(self.obj.name)} AS t0", *joins])


def _relative_range(name: str, n: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The ``[first day, day after last)`` range of a relative date literal, in UTC days."""
    day = dt.timedelta(days=1)
    week_start = today - dt.timedelta(days=(today.weekday() + 1) % 7)  # Sunday, as en_US

    def month(offset: int) -> tuple[dt.date, dt.date]:
        index = today.year * 12 + today.month - 1 + offset
        first = dt.date(index // 12, index % 12 + 1, 1)
        nxt = index + 1
        return first, dt.date(nxt // 12, nxt % 12 + 1, 1)

    def year(offset: int) -> tuple[dt.date, dt.date]:
        return dt.date(today.year + offset, 1, 1), dt.date(today.year + offset + 1, 1, 1)

    count = n or 0
    ranges: dict[str, Callable[[], tuple[dt.date, dt.date]]] = {
        "TODAY": lambda: (today, today + day),
        "YESTERDAY": lambda: (today - day, today),
        "TOMORROW": lambda: (today + day, today + 2 * day),
        "LAST_WEEK": lambda: (week_start - 7 * day, week_start),
        "THIS_WEEK": lambda: (week_start, week_start + 7 * day),
        "NEXT_WEEK": lambda: (week_start + 7 * day, week_start + 14 * day),
        "LAST_MONTH": lambda: month(-1),
        "THIS_MONTH": lambda: month(0),
        "NEXT_MONTH": lambda: month(1),
        "LAST_YEAR": lambda: year(-1),
        "THIS_YEAR": lambda: year(0),
        "NEXT_YEAR": lambda: year(1),
        # LAST_N_DAYS includes today; NEXT_N_DAYS starts tomorrow.
        "LAST_90_DAYS": lambda: (today - 90 * day, today + day),
        "NEXT_90_DAYS": lambda: (today + day, today + 91 * day),
        "LAST_N_DAYS": lambda: (today - count * day, today + day),
        "NEXT_N_DAYS": lambda: (today + day, today + (count + 1) * day),
        "N_DAYS_AGO": lambda: (today - count * day, today - (count - 1) * day),
    }
    return ranges[name]()


def compile_query(
    query: SoqlQuery, *, include_deleted: bool, now: dt.datetime | None = None
) -> CompiledQuery:
    """Resolve ``query`` against the schema and build its SQL and row shapers.

    ``include_deleted`` is True for ``queryAll`` (rows with ``IsDeleted = 1`` are kept).
    ``now`` (timezone-aware, default the current time) anchors relative date literals such as
    ``TODAY`` and ``LAST_N_DAYS:7``, computed in UTC.

    Raises :class:`SoqlError`: ``INVALID_TYPE`` (unknown object), ``INVALID_FIELD`` (unknown
    field or relationship, literal of the wrong type, duplicate field),
    ``INVALID_QUERY_FILTER_OPERATOR`` (malformed id literal), ``NUMBER_OUTSIDE_VALID_RANGE``
    (``OFFSET`` above 2,000) and ``MALFORMED_QUERY``.
    """
    obj = get_sobject(query.sobject)
    if obj is None:
        raise SoqlError(
            "INVALID_TYPE",
            _positional(
                query.text,
                query.sobject_pos,
                f"sObject type '{query.sobject}' is not supported. " + _INVALID_TYPE_HINT,
            ),
        )
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"Maximum SOQL offset allowed for apiName {obj.name} is {MAX_OFFSET}",
        )
    compiler = _Compiler(query, obj, now or dt.datetime.now(dt.UTC))

    counts = [item for item in query.select if isinstance(item, CountAll)]
    aggregates = [item for item in query.select if isinstance(item, Aggregate)]
    refs = [item for item in query.select if isinstance(item, FieldRef)]
    kind: Literal["records", "count", "aggregate"] = "records"
    if counts:
        if len(query.select) > 1:
            other = next(i for i in query.select if i is not counts[0])
            raise compiler.fail("MALFORMED_QUERY", _item_pos(other), "unexpected token: ','")
        kind = "count"
    elif aggregates:
        if refs:
            raise compiler.fail(
                "MALFORMED_QUERY",
                refs[0].pos,
                f"Field must be grouped or aggregated: {'.'.join(refs[0].path)}",
            )
        if query.order_by:
            first = query.order_by[0].field
            raise compiler.fail(
                "MALFORMED_QUERY",
                first.pos,
                f"Ordered field must be grouped or aggregated: {'.'.join(first.path)}",
            )
        kind = "aggregate"

    # SELECT first, so its errors win over WHERE's (Salesforce reports the first in the text).
    shape: _Getter = _no_records
    flatten: Callable[[Row], tuple[Any, ...]] = _no_records
    paths: tuple[str, ...] = ()
    if kind == "records":
        shape, flatten, paths = compiler.compile_records(refs)
    elif kind == "aggregate":
        shape, paths = compiler.compile_aggregates(aggregates)
        flatten = _aggregate_flattener(shape)

    filters = [] if include_deleted else ['t0."IsDeleted" = 0']
    if query.where is not None:
        filters.append(compiler.condition(query.where, negate=False))
    where_sql = f" WHERE {' AND '.join(filters)}" if filters else ""
    where_params = tuple(compiler.params)
    order_sql = f" ORDER BY {compiler.order_by()}" if kind == "records" else ""

    offset = query.offset or 0
    window = " LIMIT ? OFFSET ?" if query.limit is not None or offset else ""
    window_params: tuple[SqlParam, ...] = (
        (query.limit if query.limit is not None else -1, offset) if window else ()
    )
    count_from = compiler.from_clause(where_only=True)
    if window:
        count_sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {count_from}{where_sql}{window})"
    else:
        count_sql = f"SELECT COUNT(*) FROM {count_from}{where_sql}"
    count_params = where_params + window_params

    if kind == "count":
        base_sql, sql = count_sql, count_sql
    else:
        # Named columns, so the emulator can snapshot the result with CREATE TABLE … AS.
        columns = ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(compiler.columns))
        base_sql = f"SELECT {columns} FROM {compiler.from_clause(where_only=False)}{where_sql}"
        base_sql += order_sql
        sql = base_sql + window
        if kind == "aggregate":
            count_sql = f"SELECT COUNT(*) FROM ({sql})"
    return CompiledQuery(
        sobject=obj.name,
        kind=kind,
        sql=sql,
        params=where_params + window_params,
        count_sql=count_sql,
        count_params=count_params,
        field_paths=paths,
        limit=query.limit,
        offset=offset,
        base_sql=base_sql,
        base_params=where_params,
        _shape=shape,
        _flatten=flatten,
    )


def _item_pos(item: SelectItem) -> int:
    return item.pos


def _no_records(*_args: Any) -> Any:
    raise ValueError("COUNT() queries have no records, only totalSize")


def _aggregate_flattener(shape: _Getter) -> Callable[[Row], tuple[Any, ...]]:
    def flatten(row: Row) -> tuple[Any, ...]:
        record: dict[str, Any] = shape(row, "")
        return tuple(v for k, v in record.items() if k != "attributes")

    return flatten
