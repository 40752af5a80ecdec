"""When a learning level runs: triggers, written as short expressions in the config.

::

    count >= 50                 50 new episodes of the scenario since the level last ran
    every 1d                    a day since the level last ran (s, m, h, d; plain seconds)
    quality < 0.6               the live success rate (last ``window`` episodes) below 0.6
    count >= 200 or every 1d    either
    count >= 20 and quality < 0.9
    always | never | manual     every pass | not by itself | only on request

``and`` binds tighter than ``or``; parentheses group. Every trigger is pure:
:meth:`Trigger.due` looks at a :class:`TriggerState` and gives the reason it
fires, or None. A request (``swarmlearn daemon trigger LEVEL``) runs any level
whatever its trigger; ``manual`` runs only on request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Protocol

from swarmlearn.errors import ConfigError

__all__ = [
    "All",
    "Always",
    "AnyOf",
    "Count",
    "Every",
    "Manual",
    "Never",
    "Quality",
    "Trigger",
    "TriggerState",
    "parse_trigger",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerState:
    """What a trigger looks at."""

    now: float
    since: float  # when the level last ran (or the daemon began to follow it)
    new_episodes: int  # episodes recorded since then
    live_rate: float | None = None  # success over the last live episodes
    live_episodes: int = 0
    requested: bool = False


class Trigger(Protocol):
    def due(self, state: TriggerState) -> str | None: ...

    def __str__(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Count:
    episodes: int

    def due(self, state: TriggerState) -> str | None:
        n = state.new_episodes
        return f"{n} new episodes (>= {self.episodes})" if n >= self.episodes else None

    def __str__(self) -> str:
        return f"count >= {self.episodes}"


@dataclass(frozen=True, slots=True)
class Every:
    seconds: float

    def due(self, state: TriggerState) -> str | None:
        gone = state.now - state.since
        return f"{gone:.0f} s since the last run (>= {self.seconds:g} s)" \
            if gone >= self.seconds else None

    def __str__(self) -> str:
        return f"every {self.seconds:g}s"


@dataclass(frozen=True, slots=True)
class Quality:
    below: float
    min_episodes: int = 20

    def due(self, state: TriggerState) -> str | None:
        rate = state.live_rate
        if rate is None or state.live_episodes < self.min_episodes or rate >= self.below:
            return None
        return f"live success {rate:.0%} over {state.live_episodes} episodes (< {self.below:.0%})"

    def __str__(self) -> str:
        return f"quality < {self.below:g}"


@dataclass(frozen=True, slots=True)
class Always:
    def due(self, state: TriggerState) -> str | None:
        return "always"

    def __str__(self) -> str:
        return "always"


@dataclass(frozen=True, slots=True)
class Never:
    def due(self, state: TriggerState) -> str | None:
        return None

    def __str__(self) -> str:
        return "never"


@dataclass(frozen=True, slots=True)
class Manual:
    def due(self, state: TriggerState) -> str | None:
        return "requested" if state.requested else None

    def __str__(self) -> str:
        return "manual"


@dataclass(frozen=True, slots=True)
class All:
    parts: tuple[Trigger, ...]

    def due(self, state: TriggerState) -> str | None:
        reasons = [p.due(state) for p in self.parts]
        return " and ".join(r for r in reasons if r) if all(reasons) else None

    def __str__(self) -> str:
        return " and ".join(_wrap(p) for p in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Trigger, ...]

    def due(self, state: TriggerState) -> str | None:
        return next((r for r in (p.due(state) for p in self.parts) if r), None)

    def __str__(self) -> str:
        return " or ".join(str(p) for p in self.parts)


def _wrap(t: Trigger) -> str:
    return f"({t})" if isinstance(t, AnyOf) else str(t)


# -- parsing ----------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(>=|<|\(|\)|[A-Za-z_]+|[0-9]*\.?[0-9]+[smhd]?)")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or not m.group(1):
                if text[pos:].strip() == "":
                    break
                self.fail(f"unexpected {text[pos:].strip()[:12]!r}")
            assert m is not None
            self.tokens.append(m.group(1).lower())
            pos = m.end()
        self.i = 0

    def fail(self, why: str) -> None:
        raise ConfigError(f"{self.field}: bad trigger {self.text!r}: {why} (e.g. 'count >= 50', "
                          f"'every 1d', 'quality < 0.6', 'count >= 200 or every 1d', 'always', "
                          f"'never', 'manual')", field=self.field, value=self.text)

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None:
            self.fail("it ends too early")
        assert tok is not None
        if expected is not None and tok != expected:
            self.fail(f"expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def number(self, *, duration: bool = False) -> float:
        tok = self.take()
        unit = 1.0
        if duration and tok[-1] in _UNITS:
            tok, unit = tok[:-1], _UNITS[tok[-1]]
        try:
            value = float(tok) * unit
        except ValueError:
            self.fail(f"expected a number, got {tok!r}")
            raise AssertionError("unreachable") from None
        if not math.isfinite(value) or value < 0:
            self.fail(f"expected a number >= 0, got {tok!r}")
        return value

    def expr(self) -> Trigger:
        parts = [self.term()]
        while self.peek() == "or":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def term(self) -> Trigger:
        parts = [self.atom()]
        while self.peek() == "and":
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def atom(self) -> Trigger:
        tok = self.take()
        if tok == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if tok in ("count", "episodes"):
            self.take(">=")
            n = self.number()
            if n != int(n) or n < 1:
                self.fail(f"count needs a whole number >= 1, got {n:g}")
            return Count(int(n))
        if tok == "every":
            seconds = self.number(duration=True)
            if seconds <= 0:
                self.fail("every needs a positive duration")
            return Every(seconds)
        if tok == "quality":
            self.take("<")
            below = self.number()
            if below > 1:
                self.fail(f"quality is a success rate in [0, 1], got {below:g}")
            return Quality(below)
        simple: dict[str, Trigger] = {"always": Always(), "never": Never(), "manual": Manual()}
        if tok in simple:
            return simple[tok]
        self.fail(f"unknown word {tok!r}")
        raise AssertionError("unreachable")


def parse_trigger(text: str, *, field: str = "trigger") -> Trigger:
    """The trigger an expression describes (module docstring); ConfigError naming ``field``."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{field}: expected a trigger expression, got {text!r}", field=field,
                          value=text)
    p = _Parser(text, field)
    trigger = p.expr()
    if p.peek() is not None:
        p.fail(f"unexpected {p.peek()!r}")
    return trigger
