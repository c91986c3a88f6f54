"""A test-side evaluator for the expr-lang subset the platform's notification triggers use.

Argo CD v3.4.4 evaluates ``trigger.<name>`` conditions (``when``, ``oncePer``) with
github.com/expr-lang/expr v1.17.8 (argo-cd v3.4.4 go.mod) over the Application as unstructured
JSON plus the helpers of util/notification/expression/expr.go (``time``: ``Parse`` (RFC 3339,
panics on anything else), ``Now``, ``Minute``...; ``strings``). The engine
(notifications-engine pkg/triggers/service.go at 1dbe3de712f8) treats an evaluation error as
"not triggered". This evaluator follows expr-lang's language definition
(expr-lang/expr docs/language-definition.md): ``and``/``&&``, ``or``/``||``, ``!``/``not``,
``==``, ``!=``, ``in``, ``+``, ``*``, member access ``.`` (a missing map key is nil; a field of
nil is an error) and ``?.`` (nil-safe), ``??``, calls, literals, and the builtin
``find(array, predicate)`` whose predicate reads the element's fields as ``.name``. Anything
else is refused, so a condition that leaves the subset fails its test instead of passing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


class ExprError(Exception):
    """What expr-lang would report as a runtime or compile error (the engine: not triggered)."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\?\.|\?\?|==|!=|&&|\|\||[!().,\[\]*+{}]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExprError(f"cannot tokenize at {text[pos : pos + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    out.append(("end", ""))
    return out


@dataclass(frozen=True)
class GoTime:
    """A Go ``time.Time`` with the methods the conditions call."""

    at: datetime

    def Before(self, other: GoTime) -> bool:  # Go's method names
        return self.at < other.at

    def After(self, other: GoTime) -> bool:
        return self.at > other.at

    def Add(self, duration: timedelta) -> GoTime:
        return GoTime(self.at + duration)


def _parse_time(value: Any) -> GoTime:
    if not isinstance(value, str):
        raise ExprError(f"time.Parse: not a string: {value!r}")
    try:
        return GoTime(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC))
    except ValueError as error:  # time.go parse panics; expr reports it as an error
        raise ExprError(f"time.Parse: {error}") from error


TIME_HELPERS: dict[str, Any] = {
    "Parse": _parse_time,
    "Second": timedelta(seconds=1),
    "Minute": timedelta(minutes=1),
    "Hour": timedelta(hours=1),
}


_Node = Callable[[Mapping[str, Any]], Any]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i]

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.i]
        if value is not None and token[1] != value:
            raise ExprError(f"expected {value!r}, found {token[1]!r}")
        self.i += 1
        return token

    def accept(self, *values: str) -> str | None:
        if self.peek()[1] in values and self.peek()[0] in ("op", "name"):
            return self.take()[1]
        return None

    def parse(self) -> _Node:
        node = self.coalesce()
        if self.peek()[0] != "end":
            raise ExprError(f"unexpected {self.peek()[1]!r}")
        return node

    def coalesce(self) -> _Node:
        left = self.or_()
        while self.accept("??"):
            right = self.or_()
            left = (lambda a, b: lambda env: v if (v := a(env)) is not None else b(env))(left, right)
        return left

    def _logical(self, ops: tuple[str, ...], sub: Callable[[], _Node], is_and: bool) -> _Node:
        left = sub()
        while self.accept(*ops):
            right = sub()

            def node(env: Mapping[str, Any], a: _Node = left, b: _Node = right) -> bool:
                first = _bool(a(env))
                if first is not is_and:
                    return first
                return _bool(b(env))

            left = node
        return left

    def or_(self) -> _Node:
        return self._logical(("or", "||"), self.and_, is_and=False)

    def and_(self) -> _Node:
        return self._logical(("and", "&&"), self.compare, is_and=True)

    def compare(self) -> _Node:
        left = self.additive()
        while True:
            op = self.accept("==", "!=", "in")
            if op is None:
                return left
            right = self.additive()
            if op == "==":
                left = (lambda a, b: lambda env: a(env) == b(env))(left, right)
            elif op == "!=":
                left = (lambda a, b: lambda env: a(env) != b(env))(left, right)
            else:
                left = (lambda a, b: lambda env: _member_of(a(env), b(env)))(left, right)

    def additive(self) -> _Node:
        left = self.multiplicative()
        while self.accept("+"):
            right = self.multiplicative()
            left = (lambda a, b: lambda env: _plus(a(env), b(env)))(left, right)
        return left

    def multiplicative(self) -> _Node:
        left = self.unary()
        while self.accept("*"):
            right = self.unary()
            left = (lambda a, b: lambda env: a(env) * b(env))(left, right)
        return left

    def unary(self) -> _Node:
        if self.accept("!", "not"):
            inner = self.unary()
            return lambda env: not _bool(inner(env))
        return self.postfix(self.primary())

    def postfix(self, node: _Node) -> _Node:
        while True:
            op = self.accept(".", "?.")
            if op is not None:
                name = self.take()[1]
                node = (lambda n, key, safe: lambda env: _field(n(env), key, safe))(node, name, op == "?.")
                continue
            if self.accept("("):
                args = self.arguments(")")
                node = (lambda f, a: lambda env: _call(f(env), [x(env) for x in a]))(node, args)
                continue
            return node

    def arguments(self, close: str) -> list[_Node]:
        args: list[_Node] = []
        if self.accept(close):
            return args
        while True:
            args.append(self.coalesce())
            if self.accept(close):
                return args
            self.take(",")

    def primary(self) -> _Node:
        kind, value = self.take()
        if kind == "num":
            number = int(value)
            return lambda env: number
        if kind == "str":
            text = value[1:-1]
            return lambda env: text
        if kind == "op" and value == "(":
            inner = self.coalesce()
            self.take(")")
            return inner
        if kind == "op" and value == "[":
            items = self.arguments("]")
            return lambda env: [x(env) for x in items]
        if kind == "op" and value == ".":  # a predicate's ``.field``: the current element's field
            name = self.take()[1]
            return lambda env: _field(env["#"], name, False)
        if kind == "name":
            if value in ("nil", "true", "false"):
                constant = {"nil": None, "true": True, "false": False}[value]
                return lambda env: constant
            if value == "find" and self.peek()[1] == "(":
                self.take("(")
                array = self.coalesce()
                self.take(",")
                braces = self.accept("{") is not None
                predicate = self.coalesce()
                if braces:
                    self.take("}")
                self.take(")")
                return lambda env: _find(array(env), predicate, env)
            name = value
            return lambda env: _variable(env, name)
        raise ExprError(f"unexpected {value!r}")


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"not a bool: {value!r}")
    return value


def _member_of(item: Any, container: Any) -> bool:
    if not isinstance(container, list | dict):
        raise ExprError(f"operator in not defined on {container!r}")
    return item in container


def _plus(a: Any, b: Any) -> Any:
    if type(a) is not type(b):
        raise ExprError(f"invalid operation: {a!r} + {b!r}")
    return a + b


def _variable(env: Mapping[str, Any], name: str) -> Any:
    if name not in env:
        raise ExprError(f"unknown name {name}")
    return env[name]


def _field(value: Any, key: str, safe: bool) -> Any:
    if value is None:
        if safe:
            return None
        raise ExprError(f"cannot fetch {key} from nil")
    if isinstance(value, Mapping):
        return value.get(key)
    if hasattr(value, key):
        return getattr(value, key)
    raise ExprError(f"type {type(value).__name__} has no field {key}")


def _call(function: Any, args: list[Any]) -> Any:
    if not callable(function):
        raise ExprError(f"{function!r} is not callable")
    return function(*args)


def _find(array: Any, predicate: _Node, env: Mapping[str, Any]) -> Any:
    if array is None:
        return None
    if not isinstance(array, list):
        raise ExprError(f"find: not an array: {array!r}")
    for item in array:
        if _bool(predicate({**env, "#": item})):
            return item
    return None


def evaluate(expression: str, app: Mapping[str, Any]) -> Any:
    """The value of ``expression`` for Application ``app``; :class:`ExprError` where expr-lang fails."""
    return _Parser(expression).parse()({"app": app, "time": TIME_HELPERS})


def triggered(condition: str, app: Mapping[str, Any]) -> bool:
    """What notifications-engine's trigger service makes of a ``when``: true only for a bool true;
    an error is not triggered (pkg/triggers/service.go Run)."""
    try:
        return evaluate(condition, app) is True
    except ExprError:
        return False
