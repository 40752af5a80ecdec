"""Search: answer a multi-hop question from documents, some of them misleading.

Dependency structure::

    Query(topic) ─► OpenResult(doc) ─► ExtractFact(doc) ─► (bridge: next hop's topic suggested)
        … ─► Query(final topic) ─► OpenResult / ExtractFact × corroboration ─► Answer(question)

The question takes ``depth`` hops: the fact extracted from a relevant
document of one hop names the topic of the next (querying it earlier finds
nothing useful). The last hop's documents carry the answer; an answer is
accepted only with ``corroboration`` extracted sources agreeing on it, and
more sources than any other claim. Misleading documents (``noise``, from
the last hop's topic and from decoy topics) repeat a common misconception,
so they corroborate each other: submitting a corroborated wrong answer
fails the task. Opened documents show whether they cite sources: relevant
ones always do, misleading ones mostly not (``source_cues``), so a careful
swarm can leave the uncited ones aside. ``Answer`` submits the
best-supported claim, or the ``value`` named in the action's args.
Distractor actions never help and cost steps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, ActionResult, ActionSpec
from swarmlearn.core.environment import BaseEnvironment, pick

__all__ = ["SearchConfig", "SearchEnv"]

TOPICS = (
    "harbor history", "founding charter", "city archives", "railway company",
    "shipping registry", "mayor biography", "trade guild", "census records",
    "lighthouse keeper", "bridge construction", "old newspapers", "family estate",
)
QUESTION = "the year the lighthouse on the old harbor was first lit"
QUESTION_TARGET = "question"
WRONG_CLAIMS = 1  # distinct wrong answers (one common misconception)

# distractor name → takes a topic target
DISTRACTORS: tuple[tuple[str, bool], ...] = (
    ("RefreshIndex", False), ("TranslateTopic", True), ("CheckSpelling", False),
    ("ClearHistory", False), ("BookmarkTopic", True), ("SortByDate", False),
)

RELEVANT, MISLEADING, OFF_TOPIC = "relevant", "misleading", "off-topic"


@dataclass(frozen=True, kw_only=True, slots=True)
class SearchConfig:
    topics: int = 4
    results: int = 3
    depth: int = 2
    corroboration: int = 2
    noise: float = 0.4
    source_cues: float = 0.7
    distractors: int = 2

    def __post_init__(self) -> None:
        check_range("topics", self.topics, lo=2, hi=len(TOPICS))
        check_range("results", self.results, lo=1, hi=6)
        check_range("depth", self.depth, lo=1, hi=self.topics)
        check_range("corroboration", self.corroboration, lo=1, hi=self.results)
        check_range("noise", self.noise, lo=0.0, hi=1.0)
        check_range("source_cues", self.source_cues, lo=0.0, hi=1.0)
        check_range("distractors", self.distractors, lo=0, hi=len(DISTRACTORS))


class SearchEnv(BaseEnvironment):
    kind: ClassVar[str] = "search"
    contexts: ClassVar[tuple[str, ...]] = (
        "corroborated", "suggested", "cited", "result", "unqueried", "vague", "uncited",
        "contested", "claimed", "open", "unfound", "off-topic", "extracted", "queried", "answered",
    )
    settled: ClassVar[tuple[str, ...]] = (
        "contested", "claimed", "open", "unfound", "off-topic", "extracted", "queried", "answered",
    )
    optional_actions: ClassVar[tuple[str, ...]] = tuple(name for name, _ in DISTRACTORS)

    def __init__(self, config: SearchConfig | None = None) -> None:
        super().__init__()
        self.config = config or SearchConfig()
        self.topics: list[str] = []
        self.hops: list[str] = []  # the topic of each hop, in order
        self.docs: dict[str, list[str]] = {}  # topic → its result documents
        self.doc_kind: dict[str, str] = {}
        self.claims: dict[str, str] = {}  # document → the answer it claims (last hop, misleading)
        self.uncited: set[str] = set()  # misleading documents that visibly cite no sources
        self.answer = ""
        self._bridged = 0  # hops whose bridge fact has been extracted
        self._support: Counter[str] = Counter()
        self._distractors: list[tuple[str, bool]] = []

    def _setup(self) -> None:
        cfg, rng = self.config, self.rng
        self.topics = pick(rng, TOPICS, cfg.topics)
        self.hops = rng.sample(self.topics, cfg.depth)
        years = rng.sample(range(1820, 1920), 1 + WRONG_CLAIMS)
        self.answer, wrong = str(years[0]), [str(y) for y in years[1:]]
        n = cfg.topics * cfg.results
        names = [f"doc{i:02d}" for i in rng.sample(range(1, n + 1), n)]
        self.docs = {t: names[i * cfg.results:(i + 1) * cfg.results]
                     for i, t in enumerate(self.topics)}
        self.doc_kind, self.claims, self.uncited = {}, {}, set()
        for t in self.topics:
            for j, d in enumerate(self.docs[t]):
                self.doc_kind[d] = self._draw_kind(t, j)
                if self.doc_kind[d] == MISLEADING:
                    self.claims[d] = rng.choice(wrong)
                    if rng.random() < cfg.source_cues:
                        self.uncited.add(d)
                elif self.doc_kind[d] == RELEVANT and t == self.hops[-1]:
                    self.claims[d] = self.answer
        self._bridged = 0
        self._support = Counter()
        self._distractors = rng.sample(DISTRACTORS, cfg.distractors)
        for t in self.topics:
            self._set_context(t, "unqueried")
        for d in names:
            self._set_context(d, "unfound")
        self._set_context(QUESTION_TARGET, "open")

    def _draw_kind(self, topic: str, j: int) -> str:
        """Relevant, misleading or off-topic, for result ``j`` of ``topic``."""
        noisy = self.rng.random() < self.config.noise
        if topic == self.hops[-1]:
            return RELEVANT if j < self.config.corroboration or not noisy else MISLEADING
        if topic in self.hops:
            return RELEVANT if j == 0 or not noisy else OFF_TOPIC
        return MISLEADING if noisy else OFF_TOPIC

    def _specs(self) -> tuple[ActionSpec, ...]:
        topics, docs = tuple(self.topics), tuple(d for t in self.topics for d in self.docs[t])
        specs = [
            ActionSpec("Query", "Search a topic; lists its result documents.", topics),
            ActionSpec("OpenResult", "Open a result document and skim it.", docs, ("Query",)),
            ActionSpec("ExtractFact", "Extract the document's claim about the question.", docs,
                       ("OpenResult",)),
            ActionSpec("Answer", "Submit the best-corroborated claim (or args value=...).",
                       (QUESTION_TARGET,), ("ExtractFact",)),
        ]
        for name, targeted in self._distractors:
            specs.append(ActionSpec(name, f"{name} (search tooling).", topics if targeted else ()))
        return tuple(specs)

    def task_text(self) -> str:
        hops = "" if self.config.depth == 1 else (
            f" It takes {self.config.depth} hops: facts found on one topic point to the next.")
        return (
            f"Find {QUESTION}.{hops} Query topics, open results, extract facts, and answer once "
            f"{self.config.corroboration} sources agree. Some sources are misleading; a wrong "
            "answer ends the task."
        )

    def _optimal_steps(self) -> int:
        return 3 * (self.config.depth - 1) + 2 + 2 * self.config.corroboration

    def _progress(self) -> float:
        done = 0
        for i, topic in enumerate(self.hops):
            docs = [d for d in self.docs[topic] if self.doc_kind[d] == RELEVANT]
            opened = sum(self.context(d) in ("cited", "extracted") for d in docs)
            extracted = sum(self.context(d) == "extracted" for d in docs)
            cap = 1 if i < len(self.hops) - 1 else self.config.corroboration
            done += (self.context(topic) == "queried") + min(cap, opened) + min(cap, extracted)
        return done / self._optimal_steps()

    def solution(self) -> tuple[Action, ...]:
        """The shortest solving sequence, from the hidden state (for tests and oracles)."""
        actions: list[Action] = []
        for i, topic in enumerate(self.hops):
            n = 1 if i < len(self.hops) - 1 else self.config.corroboration
            docs = [d for d in self.docs[topic] if self.doc_kind[d] == RELEVANT][:n]
            actions.append(Action("Query", topic))
            for d in docs:
                actions += [Action("OpenResult", d), Action("ExtractFact", d)]
        return (*actions, Action("Answer", QUESTION_TARGET))

    def _apply(self, action: Action) -> ActionResult:
        name, t = action.name, action.target
        if name == "Query":
            return self._query(t)
        if name == "OpenResult":
            return self._open(t)
        if name == "ExtractFact":
            return self._extract(t)
        if name == "Answer":
            return self._answer(dict(action.args).get("value"))
        self._charge(0.2)
        return ActionResult(False, output=f"{name}: done, nothing changed")

    def _query(self, topic: str) -> ActionResult:
        ctx = self.context(topic)
        if ctx == "queried":
            return ActionResult(False, output=f"{topic}: already searched")
        hop = self.hops.index(topic) if topic in self.hops else -1
        if hop > self._bridged:
            self._set_context(topic, "vague")
            return ActionResult(False, output=f"{topic}: too vague, no relevant results yet")
        self._set_context(topic, "queried")
        docs = self.docs[topic]
        for d in docs:
            self._set_context(d, "result")
        listing = ", ".join(docs)
        self._discover(f"{topic}.results", listing)
        return ActionResult(hop >= 0, output=f"{topic}: results {listing}",
                            discoveries=(f"{topic}.results={listing}",))

    def _open(self, d: str) -> ActionResult:
        ctx = self.context(d)
        if ctx != "result":
            why = "not found by any query yet" if ctx == "unfound" else f"already {ctx}"
            return ActionResult(False, error=f"OpenResult({d}): {why}")
        if self.doc_kind[d] == OFF_TOPIC:
            self._set_context(d, "off-topic")
            return ActionResult(False, output=f"{d}: off-topic")
        cites = "uncited" if d in self.uncited else "cited"
        self._set_context(d, cites)
        note = "cites no sources" if d in self.uncited else "cites its sources"
        return ActionResult(self.doc_kind[d] == RELEVANT, output=f"{d}: on-topic, {note}")

    def _extract(self, d: str) -> ActionResult:
        ctx = self.context(d)
        if ctx not in ("cited", "uncited"):
            return ActionResult(False, error=f"ExtractFact({d}): open it first ({ctx})")
        self._set_context(d, "extracted")
        if d in self.claims:
            claim = self.claims[d]
            self._support[claim] += 1
            self._discover(f"{d}.claim", claim)
            self._discover(f"{QUESTION_TARGET}.{claim}", f"{self._support[claim]} source(s)")
            self._update_question()
            return ActionResult(self.doc_kind[d] == RELEVANT, output=f"{d}: claims {claim}",
                                discoveries=(f"{d}.claim={claim}",))
        hop = next(i for i, t in enumerate(self.hops) if d in self.docs[t])
        nxt = self.hops[hop + 1]
        self._bridged = max(self._bridged, hop + 1)
        self._discover(f"{d}.points_to", nxt)
        if self.context(nxt) in ("unqueried", "vague"):
            self._set_context(nxt, "suggested")
        return ActionResult(True, output=f"{d}: the trail continues under '{nxt}'",
                            discoveries=(f"{d}.points_to={nxt}",))

    def _standing(self, value: str) -> str:
        """How well ``value`` is supported: corroborated, contested or claimed."""
        support = self._support[value]
        rivals = max((n for v, n in self._support.items() if v != value), default=0)
        if support < self.config.corroboration:
            return "claimed"
        return "corroborated" if support > rivals else "contested"

    def _update_question(self) -> None:
        if not self._support:
            return
        leader = min(self._support, key=lambda v: (-self._support[v], v))
        self._set_context(QUESTION_TARGET, self._standing(leader))

    def _answer(self, value: str | None) -> ActionResult:
        if value is None:
            if not self._support:
                return ActionResult(False, error="Answer: no claims extracted yet")
            value = min(self._support, key=lambda v: (-self._support[v], v))
        standing = self._standing(value)
        if standing != "corroborated":
            self._charge(0.5)
            n = self._support[value]
            return ActionResult(False, error=f"Answer({value}): {standing}, {n} source(s) agree "
                                f"(need {self.config.corroboration} and a clear lead)")
        self._set_context(QUESTION_TARGET, "answered")
        if value != self.answer:
            self._fail(f"answered {value}; the answer was {self.answer}")
            return ActionResult(False, error=f"Answer({value}): wrong")
        self._solve()
        return ActionResult(True, output=f"Answer({value}): correct",
                            discoveries=(f"answer={value}",))
