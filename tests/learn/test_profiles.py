"""Scenario profiles: lifecycle, session groups, component learners, registry and store."""

from __future__ import annotations

import itertools
import json
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.core.actions import ActionResult
from swarmlearn.core.events import ActionEvent, EpisodeEnded
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.learn.bootstrap import bootstrap_profile
from swarmlearn.learn.profile_learners import (
    DependencyConfig,
    DependencyGraphLearner,
    ExplorationLearner,
    StrategyLearner,
)
from swarmlearn.learn.profile_store import PROFILE_KIND, ProfileStore
from swarmlearn.learn.profiles import (
    TRANSITIONS,
    InvalidTransition,
    Phase,
    ProfileConfig,
    ProfileState,
    ScenarioProfile,
    SessionEvidence,
    check_transition,
    next_state,
)
from swarmlearn.learn.registry import KeywordMatcher, MatchMode, RoutingError, ScenarioRegistry
from swarmlearn.learn.snapshot import SnapshotStore
from swarmlearn.store import SqlStore
from swarmlearn.types import Failure, Success

S = ProfileState
CFG = ProfileConfig(
    bootstrap_sessions=2, validation_sessions=1, validation_threshold=0.5, optimize_after_sessions=2
)


def _profile(**kw: Any) -> ScenarioProfile:
    return ScenarioProfile("ts", scenario="troubleshooting", config=kw.pop("config", CFG), **kw)


_ids = itertools.count(1)


def _record(p: ScenarioProfile, wins: int, episodes: int = 4, **kw: Any) -> list[Any]:
    plan = p.plan(episodes)
    ev = SessionEvidence(
        session=next(_ids),
        phase=plan.phase,
        first_seed=plan.first_seed,
        episodes=episodes,
        successes=wins,
        actions=10 * episodes,
        **kw,
    )
    return p.record_session(ev)


# -- lifecycle ------------------------------------------------------------------------------
#: the moves drawn in the module docstring, written out here rather than read from TRANSITIONS
DRAWN = {
    (S.DRAFT, S.BOOTSTRAP),
    (S.BOOTSTRAP, S.VALIDATING),
    (S.VALIDATING, S.ACTIVE),
    (S.VALIDATING, S.BOOTSTRAP),
    (S.ACTIVE, S.OPTIMIZING),
    (S.OPTIMIZING, S.ACTIVE),
}


def test_the_transition_table_is_the_drawn_lifecycle() -> None:
    assert {(b, a) for b, targets in TRANSITIONS.items() for a in targets} == DRAWN


@pytest.mark.parametrize(("before", "after"), list(itertools.product(S, S)))
def test_only_drawn_transitions_are_allowed(before: S, after: S) -> None:
    if (before, after) in DRAWN:
        check_transition(before, after)
    else:
        with pytest.raises(InvalidTransition, match=f"cannot move a profile from {before}"):
            check_transition(before, after)


evidence_st = st.builds(
    lambda phase, n, w, r, seed: SessionEvidence(
        session=1, phase=phase, first_seed=seed, episodes=n, successes=min(w, n), actions=n, round=r
    ),
    st.sampled_from(Phase),
    st.integers(0, 10),
    st.integers(0, 10),
    st.integers(0, 2),
    st.integers(0, 100),
)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(S), st.lists(evidence_st, max_size=8), st.integers(0, 2))
def test_next_state_only_takes_allowed_steps(
    state: S, sessions: list[SessionEvidence], round_: int
) -> None:
    after, reason = next_state(state, sessions, CFG, round_)
    if after is not state:
        assert (state, after) in DRAWN
        assert reason
    assert next_state(state, sessions, CFG, round_) == (after, reason)  # pure


def test_full_lifecycle_with_a_failed_validation() -> None:
    p = _profile()
    assert p.state is S.DRAFT and p.phase is Phase.BOOTSTRAP
    assert [(t.before, t.after) for t in _record(p, wins=1)] == [(S.DRAFT, S.BOOTSTRAP)]
    assert _record(p, wins=1) == [] and p.state is S.BOOTSTRAP  # 2 sessions but only 2 wins
    assert [t.after for t in _record(p, wins=1)] == [S.VALIDATING]
    assert p.phase is Phase.VALIDATE
    moves = _record(p, wins=1)  # 25% < 50%: back to bootstrap, a new round
    assert [t.after for t in moves] == [S.BOOTSTRAP] and "0.25 < 0.50" in moves[0].reason
    assert p.round == 1
    assert _record(p, wins=4) == []  # the new round needs 2 bootstrap sessions again
    assert [t.after for t in _record(p, wins=4)] == [S.VALIDATING]
    assert [t.after for t in _record(p, wins=3)] == [S.ACTIVE]
    assert p.phase is Phase.RELEASE
    _record(p, wins=4)
    assert [t.after for t in _record(p, wins=4)] == [S.OPTIMIZING]
    assert p.finish_optimizing().after is S.ACTIVE and p.round == 2
    with pytest.raises(InvalidTransition, match="from active to active"):
        p.finish_optimizing()
    groups = p.groups()
    assert [len(groups[ph].sessions) for ph in Phase] == [5, 2, 2]
    assert groups[Phase.VALIDATE].success_rate == pytest.approx(4 / 8)
    assert [t.after for t in p.history] == [
        S.BOOTSTRAP,
        S.VALIDATING,
        S.BOOTSTRAP,
        S.VALIDATING,
        S.ACTIVE,
        S.OPTIMIZING,
        S.ACTIVE,
    ]


def test_one_session_can_move_several_steps() -> None:
    p = _profile(config=ProfileConfig(bootstrap_sessions=1))
    assert [t.after for t in _record(p, wins=3)] == [S.BOOTSTRAP, S.VALIDATING]


def test_session_plans_use_disjoint_seed_ranges() -> None:
    p = _profile(config=ProfileConfig(bootstrap_sessions=1, base_seed=100))
    first = p.plan(5)
    assert (first.phase, first.first_seed, first.group) == (
        "bootstrap",
        100,
        "profile:ts:bootstrap",
    )
    _record(p, wins=3, episodes=5)
    val = p.plan(5)
    assert (val.phase, val.first_seed) == ("validate", 1_000_100)


def test_bad_evidence_is_refused() -> None:
    p = _profile(config=ProfileConfig(bootstrap_sessions=1))
    _record(p, wins=3)
    assert p.state is S.VALIDATING
    with pytest.raises(InvalidTransition, match="its sessions are validate sessions, not boot"):
        p.record_session(
            SessionEvidence(
                session=99, phase=Phase.BOOTSTRAP, first_seed=0, episodes=1, successes=1, actions=1
            )
        )
    with pytest.raises(ConfigError, match=r"held-out seeds, but seeds 2\.\.3 were used"):
        p.record_session(
            SessionEvidence(
                session=98, phase=Phase.VALIDATE, first_seed=2, episodes=4, successes=1, actions=1
            )
        )
    dup = p.sessions[0].session
    with pytest.raises(ConfigError, match=f"session {dup} is already recorded"):
        p.record_session(
            SessionEvidence(
                session=dup,
                phase=Phase.VALIDATE,
                first_seed=10**6,
                episodes=1,
                successes=1,
                actions=1,
            )
        )
    with pytest.raises(ConfigError, match="successes: 5 exceeds episodes"):
        SessionEvidence(
            session=1, phase=Phase.VALIDATE, first_seed=0, episodes=4, successes=5, actions=1
        )
    with pytest.raises(ConfigError, match="validation_threshold"):
        ProfileConfig(validation_threshold=1.5)


# -- component learners -----------------------------------------------------------------------
def _ev(seq: int, action: str, target: str, ok: bool = True) -> ActionEvent:
    return ActionEvent(
        seq, 1, "t", "", 0, seq, 0, action, target, (), ActionResult(ok), 0.0, "", 0.0
    )


def _episode(*steps: tuple[str, str, bool]) -> list[ActionEvent]:
    return [_ev(i, a, t, ok) for i, (a, t, ok) in enumerate(steps)]


WIN = _episode(
    ("Check", "db", True),
    ("Restart", "api", False),
    ("Logs", "db", True),
    ("Fix", "db", True),
    ("Check", "api", True),
)


def test_dependency_graph_needs_three_successful_episodes() -> None:
    g = DependencyGraphLearner()
    g.observe_episode(WIN, won=True)
    g.observe_episode(WIN[::-1], won=False)  # failed episodes teach nothing
    g.observe_episode(WIN, won=True)
    assert g.graph() is None and not g.ready
    g.observe_episode(list(reversed(WIN)), won=True)  # events are ordered by id, not list order
    assert g.graph() == {"Fix": ("Check", "Logs"), "Logs": ("Check",)}
    assert all(e.before != "Restart" for e in g.edges())  # a failed action precedes nothing


def test_dependency_graph_keeps_only_confident_edges() -> None:
    g = DependencyGraphLearner(DependencyConfig(min_episodes=3, min_confidence=0.75))
    for _ in range(3):
        g.observe_episode(WIN, won=True)
    g.observe_episode(_episode(("Logs", "db", True), ("Fix", "db", True)), won=True)
    edges = {(e.before, e.after): e.confidence for e in g.edges()}
    assert edges[("Check", "Fix")] == 0.75 and edges[("Logs", "Fix")] == 1.0
    assert g.graph() == {"Fix": ("Check", "Logs"), "Logs": ("Check",)}
    again = DependencyGraphLearner.from_dict(json.loads(json.dumps(g.to_dict())))
    assert again.to_dict() == g.to_dict() and again.graph() == g.graph()
    with pytest.raises(ArtifactError, match="should be a count >= 0"):
        DependencyGraphLearner.from_dict({**g.to_dict(), "edges": [["a", "Fix", -1]]})


def test_exploration_learner_running_means() -> None:
    x = ExplorationLearner()
    assert x.best("ucb1_c") is None
    x.observe_session(
        {"ucb1_c": 1.0, "epsilon": 0.1}, episodes=10, success_rate=0.5, actions_per_episode=30
    )
    x.observe_session({"ucb1_c": 1.0}, episodes=30, success_rate=0.9, actions_per_episode=10)
    x.observe_session({"ucb1_c": 2.0}, episodes=10, success_rate=0.7, actions_per_episode=20)
    est = x.estimates["ucb1_c"][1.0]
    assert (est.sessions, est.episodes) == (2, 40)
    assert est.success == pytest.approx(0.8) and est.actions == pytest.approx(15)
    assert x.recommend() == {"epsilon": 0.1, "ucb1_c": 1.0}
    assert x.best("ucb1_c", min_sessions=2) == 1.0 and x.best("epsilon", min_sessions=2) is None
    assert ExplorationLearner.from_dict(x.to_dict()).to_dict() == x.to_dict()
    with pytest.raises(ArtifactError, match="should have 6 items"):
        ExplorationLearner.from_dict({"estimates": [["ucb1_c", 1.0]]})


def test_strategy_learner_ranks_by_posterior_mean() -> None:
    s = StrategyLearner()
    assert s.best() is None
    for won in (True, True, False):
        s.observe_episode("ucb1", won, 10)
    s.observe_episode("fifo", True, 40)
    s.observe_episode("thompson", True, 12)
    ranking = s.ranking()
    # fifo and thompson: (1 + 1) / (1 + 2); thompson solved in fewer actions; ucb1: 3 / 5
    assert [r.strategy for r in ranking] == ["thompson", "fifo", "ucb1"]
    assert ranking[2].actions_to_solve == 10
    assert StrategyLearner.from_dict(s.to_dict()).to_dict() == s.to_dict()
    with pytest.raises(ArtifactError, match="won more episodes than it ran"):
        StrategyLearner.from_dict({"strategies": [["x", 1, 2, 0]]})


# -- registry ---------------------------------------------------------------------------------
def _routable(name: str, *matchers: KeywordMatcher) -> ScenarioProfile:
    return ScenarioProfile(name, scenario=name, matchers=matchers)


PROFILES = [
    _routable(
        "troubleshooting",
        KeywordMatcher(keywords=("service", "outage"), priority=1),
        KeywordMatcher(keywords=("restart the service",), priority=5),
    ),
    _routable("maze", KeywordMatcher(keywords=("maze", "path"), priority=1)),
    _routable("search", KeywordMatcher(keywords=("find", "path"), priority=1)),
    _routable(
        "diagnosis", KeywordMatcher(keywords=("disk", "memory"), mode=MatchMode.ALL, priority=3)
    ),
]


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ("The payments SERVICE has an outage", "troubleshooting"),
        ("please  Restart   the service now", "troubleshooting"),  # the phrase, priority 5
        ("find a path", "search"),  # tie on priority 1: search has 2 hits, maze 1
        ("find the path out of the maze", "maze"),  # tie on priority and hits: by name
        ("a path", "maze"),  # tie on priority and hits (1): by name
        ("disk and memory are full", "diagnosis"),
    ],
)
def test_routing_by_priority_then_hits_then_name(text: str, winner: str) -> None:
    assert ScenarioRegistry(PROFILES).route(text).name == winner


@settings(max_examples=20, deadline=None)
@given(st.permutations(PROFILES))
def test_routing_does_not_depend_on_registration_order(order: list[ScenarioProfile]) -> None:
    reg = ScenarioRegistry(order)
    for text in ("a path", "find the path out of the maze", "service outage at the maze"):
        assert reg.route(text).name == ScenarioRegistry(PROFILES).route(text).name


def test_no_match_and_bad_matchers() -> None:
    reg = ScenarioRegistry(PROFILES)
    assert reg.matches("the disk is full") == []  # mode all: memory missing
    assert reg.matches("services are down") == []  # whole words only
    with pytest.raises(RoutingError, match=r"no profile matches .cook dinner.*maze: maze, path"):
        reg.route("cook dinner")
    with pytest.raises(ConfigError, match="already registered"):
        reg.add(PROFILES[0])
    with pytest.raises(ConfigError, match="no profile named 'x'"):
        reg.get("x")
    for bad in ((), ("ok", " "), "service"):
        with pytest.raises(ConfigError, match="keywords"):
            KeywordMatcher(keywords=bad)  # type: ignore[arg-type]
    m = KeywordMatcher(keywords=("Disk  Full", "disk full"), mode=MatchMode.ALL)
    assert m.keywords == ("disk full",)


# -- persistence ------------------------------------------------------------------------------
def _used_profile() -> ScenarioProfile:
    p = _profile(description="services", matchers=[KeywordMatcher(keywords=("svc",))])
    for _ in range(3):
        p.observe_episode(
            WIN,
            EpisodeEnded(0, 1, "t", "", 0, 0, Success(), 1, 5, 0.1, 0, 0, {}, 0.0),
            strategy="ucb1",
        )
    p.observe_episode(
        WIN,
        EpisodeEnded(0, 1, "t", "", 0, 0, Failure("x"), 1, 5, 0.1, 0, 0, {}, 0.0),
        strategy="ucb1",
    )
    _record(p, wins=2, params={"ucb1_c": 1.5})
    _record(p, wins=2, params={"ucb1_c": 0.5})
    return p


def test_profile_dict_round_trip() -> None:
    p = _used_profile()
    assert p.state is S.VALIDATING and p.dependencies.graph() is not None
    again = ScenarioProfile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again.to_dict() == p.to_dict()
    assert again.strategies.best() == "ucb1" and again.exploration.best("ucb1_c") in (0.5, 1.5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 3}, "format_version 3 is not supported"),
        ({"state": "finished"}, "field 'state' should be one of draft, bootstrap, validating"),
        (
            {
                "history": [
                    {
                        "before": "draft",
                        "after": "active",
                        "reason": "",
                        "sessions": 0,
                        "created": 0.0,
                    }
                ]
            },
            "cannot move a profile from draft to active",
        ),
        ({"sessions": [{"session": 1}]}, "sessions[0].phase: missing required field"),
        ({"config": {"bootstrap_sessions": 0}}, "config.bootstrap_sessions: expected >= 1"),
        ({"matchers": [{"keywords": []}]}, "matchers[0]: keywords"),
        ({"learners": {"strategies": {"strategies": [["x", -1, 0, 0]]}}}, "should be a count"),
        ({"name": None}, "missing field 'name'"),
        ({"scenario": 7}, "field 'scenario' should be a string, got 7"),
        ({"learners": {"exploration": None}}, "field 'exploration' should be an object"),
    ],
)
def test_malformed_profiles_are_artifact_errors(change: dict[str, Any], message: str) -> None:
    base = _used_profile().to_dict()
    data = {k: v for k, v in {**base, **change}.items() if v is not None}
    data["learners"] = {**base["learners"], **change.get("learners", {})}
    with pytest.raises(ArtifactError) as info:
        ScenarioProfile.from_dict(data, where="p.json")
    assert str(info.value).startswith("p.json: ") and message in str(info.value)


def test_profile_store(store: SqlStore) -> None:
    profiles = ProfileStore(store)
    assert profiles.get("ts") is None and profiles.records() == []
    p = _used_profile()
    assert profiles.save(p).version == 1
    _record(p, wins=4)
    assert profiles.save(p).meta["state"] == "active"
    profiles.save(_routable("maze", KeywordMatcher(keywords=("maze",))))
    assert profiles.load("ts", 1).state is S.VALIDATING
    loaded = profiles.get("ts")
    assert loaded is not None and loaded.to_dict() == p.to_dict()
    assert [(r.name, r.version) for r in profiles.records()] == [("maze", 1), ("ts", 2)]
    assert [r.version for r in profiles.history("ts")] == [2, 1]
    assert profiles.registry().route("lost in a maze").name == "maze"
    store.put_artifact(PROFILE_KIND, "broken", zlib.compress(b'{"format_version": 1}'))
    with pytest.raises(ArtifactError, match="profile broken v1: missing field 'name'"):
        profiles.load("broken")


def test_bootstrap_runs_sessions_through_the_lifecycle(store: SqlStore) -> None:
    sc = load_scenario("troubleshooting")
    p = ScenarioProfile(
        "troubleshooting", scenario="troubleshooting", config=ProfileConfig(bootstrap_sessions=2)
    )
    steps = bootstrap_profile(p, sc, store, sessions=5, episodes=4)
    assert p.state is S.ACTIVE and len(steps) == 3  # stops once active
    assert [s.plan.phase for s in steps] == ["bootstrap", "bootstrap", "validate"]
    assert steps[-1].transitions[-1].after is S.ACTIVE
    assert ProfileStore(store).load("troubleshooting").to_dict() == p.to_dict()
    assert [r.version for r in ProfileStore(store).history("troubleshooting")] == [3, 2, 1]
    groups = {s.group for s in store.sessions()}
    assert groups == {"profile:troubleshooting:bootstrap", "profile:troubleshooting:validate"}
    session_snaps = SnapshotStore(store).sessions_of("troubleshooting")
    assert sorted(int(s.snapshot.key) for s in session_snaps) == [s.evidence.session for s in steps]
    assert p.dependencies.graph() is not None and p.strategies.best() == "fifo"
    assert bootstrap_profile(p, sc, store, sessions=2, episodes=4) == []  # already active
