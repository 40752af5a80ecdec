"""Routing a task description to a scenario profile by keyword matchers with priorities.

A profile carries :class:`KeywordMatcher`\\ s. A matcher matches a text when
any (mode ``any``) or all (mode ``all``) of its keywords occur in it as whole
words or phrases, case-insensitively. :meth:`ScenarioRegistry.matches` ranks
the profiles that match; :meth:`ScenarioRegistry.route` returns the winner:

1. the highest priority of a matching matcher wins;
2. on a tie, the profile whose matcher found more keywords;
3. then the profile name, alphabetically — the same text always goes to the
   same profile.

No match is an error (:class:`RoutingError`, a ``ConfigError``) that lists
the profiles and their keywords; use :meth:`~ScenarioRegistry.matches` to
test without raising.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from swarmlearn.errors import ArtifactError, ConfigError

__all__ = [
    "KeywordMatcher",
    "Match",
    "MatchMode",
    "Routable",
    "RoutingError",
    "ScenarioRegistry",
]


class MatchMode(enum.StrEnum):
    ANY = "any"
    ALL = "all"


def _normalize(keyword: str) -> str:
    return " ".join(keyword.lower().split())


@dataclass(frozen=True, kw_only=True, slots=True)
class KeywordMatcher:
    """Keywords (words or phrases) and the priority of a match."""

    keywords: tuple[str, ...]
    priority: int = 0
    mode: MatchMode = MatchMode.ANY
    _patterns: tuple[re.Pattern[str], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if isinstance(self.keywords, str) or not self.keywords:
            raise ConfigError(
                f"keywords: expected a non-empty list of keywords, got {self.keywords!r}",
                field="keywords",
            )
        words = tuple(_normalize(k) for k in self.keywords if isinstance(k, str))
        if len(words) != len(self.keywords) or not all(words):
            raise ConfigError(
                f"keywords: every keyword must be a non-blank string, got {list(self.keywords)}",
                field="keywords",
            )
        object.__setattr__(self, "keywords", tuple(dict.fromkeys(words)))
        object.__setattr__(self, "mode", MatchMode(self.mode))
        patterns = tuple(re.compile(rf"(?<!\w){re.escape(k)}(?!\w)") for k in self.keywords)
        object.__setattr__(self, "_patterns", patterns)

    def hits(self, text: str) -> int:
        """How many keywords occur in ``text`` (0 if the matcher does not match)."""
        low = " ".join(text.lower().split())
        found = sum(1 for p in self._patterns if p.search(low))
        if self.mode is MatchMode.ALL and found < len(self.keywords):
            return 0
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"keywords": list(self.keywords), "priority": self.priority, "mode": self.mode.value}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "matcher") -> KeywordMatcher:
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where}: expected an object, got {data!r}")
        priority = data.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ArtifactError(f"{where}: field 'priority' should be an integer, got {priority!r}")
        keywords = data.get("keywords")
        if not isinstance(keywords, list):
            raise ArtifactError(f"{where}: field 'keywords' should be a list, got {keywords!r}")
        try:
            return cls(
                keywords=tuple(keywords),
                priority=priority,
                mode=MatchMode(data.get("mode", "any")),
            )
        except (ConfigError, ValueError) as exc:
            raise ArtifactError(f"{where}: {exc}") from exc


class Routable(Protocol):
    """What the registry needs of a profile."""

    @property
    def name(self) -> str: ...

    @property
    def matchers(self) -> Sequence[KeywordMatcher]: ...


P = TypeVar("P", bound=Routable)


@dataclass(frozen=True, slots=True)
class Match:
    """A profile that matched a text: its best matcher's priority and keyword hits."""

    profile: str
    priority: int
    hits: int
    keywords: tuple[str, ...]


class RoutingError(ConfigError):
    """No profile matches a task description."""


class ScenarioRegistry(Generic[P]):
    """Profiles by name, and routing of task descriptions to them (module docstring)."""

    def __init__(self, profiles: Iterable[P] = ()) -> None:
        self._profiles: dict[str, P] = {}
        for p in profiles:
            self.add(p)

    def add(self, profile: P) -> None:
        if profile.name in self._profiles:
            raise ConfigError(
                f"profile {profile.name!r} is already registered", field="name", value=profile.name
            )
        self._profiles[profile.name] = profile

    def replace(self, profile: P) -> None:
        self._profiles[profile.name] = profile

    def remove(self, name: str) -> None:
        self.get(name)
        del self._profiles[name]

    def get(self, name: str) -> P:
        try:
            return self._profiles[name]
        except KeyError:
            known = ", ".join(sorted(self._profiles)) or "none"
            raise ConfigError(
                f"no profile named {name!r} (profiles: {known})", field="name", value=name
            ) from None

    def __len__(self) -> int:
        return len(self._profiles)

    def __iter__(self) -> Iterator[P]:
        return iter(sorted(self._profiles.values(), key=lambda p: p.name))

    def matches(self, text: str) -> list[Match]:
        """The profiles matching ``text``, best first (the routing order)."""
        found: list[Match] = []
        for name, profile in self._profiles.items():
            best: Match | None = None
            for m in profile.matchers:
                hits = m.hits(text)
                if hits and (best is None or (m.priority, hits) > (best.priority, best.hits)):
                    best = Match(name, m.priority, hits, m.keywords)
            if best is not None:
                found.append(best)
        found.sort(key=lambda m: (-m.priority, -m.hits, m.profile))
        return found

    def route(self, text: str) -> P:
        """The profile ``text`` routes to; RoutingError if none matches."""
        found = self.matches(text)
        if not found:
            listing = "; ".join(
                f"{p.name}: {', '.join(k for m in p.matchers for k in m.keywords) or '-'}"
                for p in self
            )
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise RoutingError(
                f"no profile matches {shown!r} (profiles and keywords: {listing or 'none'})",
                field="task",
                value=text,
            )
        return self._profiles[found[0].profile]
