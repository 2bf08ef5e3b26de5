"""TraceQL used by the drill-down, and a checker for the subset of the grammar we use.

No Tempo runs here, so the queries are checked statically against Tempo's
documented TraceQL grammar (https://grafana.com/docs/tempo/latest/traceql/):

    query      := spanset ( ('&&' | '||') spanset )* ( '|' stage )*
    spanset    := '{' [ expr ] '}'
    expr       := and ( '||' and )*
    and        := unary ( '&&' unary )*
    unary      := '!' unary | '(' expr ')' | operand [ cmp operand ]
    operand    := attribute | intrinsic | number | duration | string | true | false | nil
                  | status/kind literal | Grafana variable ($name, ${name}, ${name:format})
    cmp        := '=' | '!=' | '>' | '>=' | '<' | '<=' | '=~' | '!~'
    attribute  := ('span.' | 'resource.' | '.') dotted-name
    stage      := 'select' '(' attribute ( ',' attribute )* ')'
                | ('count' '(' ')' | ('avg'|'max'|'min'|'sum') '(' attribute ')') cmp number

Attribute names are also checked against the names contract: every ``span.X``
must be a span attribute inferops writes (:func:`inferops.names.all_span_attributes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferops.names import ATTRIBUTION_ATTRS, Attr, GenAI, Label, all_span_attributes

from .common import THRESHOLD_VAR

#: Span attributes shown as columns of the most-expensive-requests table.
SELECTED: tuple[str, ...] = (
    GenAI.USAGE_COST, GenAI.PROVIDER_NAME, GenAI.REQUEST_MODEL, GenAI.RESPONSE_MODEL,
    ATTRIBUTION_ATTRS[Label.TEAM], ATTRIBUTION_ATTRS[Label.PROJECT], ATTRIBUTION_ATTRS[Label.FEATURE],
    GenAI.USAGE_INPUT_TOKENS, GenAI.USAGE_OUTPUT_TOKENS,
)


def expensive_requests() -> str:
    """Spans whose ``gen_ai.usage.cost`` exceeds the threshold variable, with the columns we show.

    Only the threshold filters: spans of unattributed calls may lack the
    attribution attributes, and a regex match on a missing attribute is false,
    so filtering on ``$team`` with "All" would hide exactly the unattributed
    spend. The table is filterable by its team/project/feature columns instead.
    """
    columns = ", ".join(f"span.{a}" for a in SELECTED)
    return f"{{ span.{GenAI.USAGE_COST} > ${THRESHOLD_VAR} }} | select({columns})"


#: Span attributes shown as columns of the routed-calls table (issue 9: requested and routed model, savings).
ROUTING_SELECTED: tuple[str, ...] = (
    Attr.ROUTING_RULE, Attr.REQUESTED_MODEL, GenAI.REQUEST_MODEL, GenAI.RESPONSE_MODEL, Attr.ROUTING_SAVINGS,
    Attr.ROUTING_DRY_RUN, Attr.ROUTING_TARGET_MODEL, GenAI.USAGE_COST,
    ATTRIBUTION_ATTRS[Label.TEAM], ATTRIBUTION_ATTRS[Label.FEATURE],
)


def routed_calls() -> str:
    """Spans a routing rule matched (rewritten or dry run), with the routing columns.

    ``!= nil`` is TraceQL's "attribute is set": ``inferops.routing.rule`` is
    written on every call a rule matched, dry run included. No attribution
    filter, for the reason given in :func:`expensive_requests`.
    """
    columns = ", ".join(f"span.{a}" for a in ROUTING_SELECTED)
    return f"{{ span.{Attr.ROUTING_RULE} != nil }} | select({columns})"


class TraceQLError(ValueError):
    """A query outside the grammar subset, or naming an attribute outside the contract."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<var>\$\{[A-Za-z_]\w*(?::[A-Za-z_]\w*)?\}|\$[A-Za-z_]\w*)
  | (?P<string>"(?:[^"\\]|\\["\\nt])*")
  | (?P<duration>\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<attr>(?:span|resource)\.[A-Za-z_][\w.\-]*|\.[A-Za-z_][\w.\-]*)
  | (?P<op>&&|\|\||=~|!~|!=|>=|<=|=|>|<|!|\||\{|\}|\(|\)|,)
  | (?P<word>[A-Za-z_]\w*)
""", re.VERBOSE)

_INTRINSICS = {"name", "status", "kind", "duration", "traceDuration", "rootName", "rootServiceName",
               "statusMessage"}
_LITERALS = {"true", "false", "nil", "ok", "error", "unset", "unspecified", "internal", "server", "client",
             "producer", "consumer"}
_CMP = {"=", "!=", ">", ">=", "<", "<=", "=~", "!~"}
_AGG = {"avg", "max", "min", "sum"}
#: Resource attributes we may filter on (OpenTelemetry resource semconv).
RESOURCE_ATTRIBUTES = frozenset({"service.name", "deployment.environment.name"})


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(query: str) -> list[_Tok]:
    out, i = [], 0
    while i < len(query):
        m = _TOKEN.match(query, i)
        if m is None:
            raise TraceQLError(f"unexpected character {query[i]!r} at {i} in {query!r}")
        if m.lastgroup != "ws":
            out.append(_Tok(m.lastgroup or "", m.group(), i))
        i = m.end()
    return out


class _Parser:
    def __init__(self, query: str):
        self.query = query
        self.toks = _tokenize(query)
        self.i = 0
        self.attributes: list[str] = []

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, text: str | None = None, kind: str | None = None) -> _Tok:
        t = self.peek()
        if t is None or (text is not None and t.text != text) or (kind is not None and t.kind != kind):
            where = f"at {t.pos} ({t.text!r})" if t else "at end"
            raise TraceQLError(f"expected {text or kind} {where} in {self.query!r}")
        self.i += 1
        return t

    def accept(self, text: str) -> bool:
        t = self.peek()
        if t is not None and t.text == text and t.kind == "op":
            self.i += 1
            return True
        return False

    def parse(self) -> list[str]:
        self.spanset()
        while self.peek() is not None and self.peek().text in ("&&", "||"):
            self.i += 1
            self.spanset()
        while self.accept("|"):
            self.stage()
        if self.peek() is not None:
            raise TraceQLError(f"unexpected {self.peek().text!r} at {self.peek().pos} in {self.query!r}")
        return self.attributes

    def spanset(self) -> None:
        self.take("{")
        if not self.accept("}"):
            self.expr()
            self.take("}")

    def expr(self) -> None:
        self.and_()
        while self.accept("||"):
            self.and_()

    def and_(self) -> None:
        self.unary()
        while self.accept("&&"):
            self.unary()

    def unary(self) -> None:
        if self.accept("!"):
            return self.unary()
        if self.accept("("):
            self.expr()
            self.take(")")
            return
        self.operand()
        t = self.peek()
        if t is not None and t.kind == "op" and t.text in _CMP:
            self.i += 1
            self.operand()

    def operand(self) -> None:
        t = self.peek()
        if t is None:
            raise TraceQLError(f"expected an operand at end of {self.query!r}")
        if t.kind == "attr":
            self.attribute()
        elif t.kind in ("string", "number", "duration", "var"):
            self.i += 1
        elif t.kind == "word" and (t.text in _INTRINSICS or t.text in _LITERALS):
            self.i += 1
        else:
            raise TraceQLError(f"expected an attribute or value at {t.pos} ({t.text!r}) in {self.query!r}")

    def attribute(self) -> None:
        t = self.take(kind="attr")
        self.attributes.append(t.text)

    def stage(self) -> None:
        word = self.take(kind="word").text
        if word == "select":
            self.take("(")
            self.attribute()
            while self.accept(","):
                self.attribute()
            self.take(")")
            return
        if word == "count":
            self.take("(")
            self.take(")")
        elif word in _AGG:
            self.take("(")
            self.attribute()
            self.take(")")
        else:
            raise TraceQLError(f"unsupported pipeline stage {word!r} in {self.query!r}")
        op = self.take(kind="op")
        if op.text not in _CMP:
            raise TraceQLError(f"expected a comparison after {word}() in {self.query!r}")
        self.operand()


def check(query: str) -> list[str]:
    """Parse ``query``; return its attributes; raise :class:`TraceQLError` on syntax or contract errors."""
    attributes = _Parser(query).parse()
    known = all_span_attributes()
    for attr in attributes:
        scope, _, name = attr.partition(".")
        if scope == "span":
            if name not in known:
                raise TraceQLError(f"span attribute {name!r} is not in the names contract ({query!r})")
        elif scope == "resource":
            if name not in RESOURCE_ATTRIBUTES:
                raise TraceQLError(f"resource attribute {name!r} is not one we know ({query!r})")
        else:  # unscoped ".name"
            if name not in known and name not in RESOURCE_ATTRIBUTES:
                raise TraceQLError(f"attribute {name!r} is not in the names contract ({query!r})")
    return attributes
