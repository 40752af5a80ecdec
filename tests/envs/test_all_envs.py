"""Properties every built-in environment has, parametrized over the registry."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlearn.core.actions import Action
from swarmlearn.core.environment import BaseEnvironment, Environment
from swarmlearn.envs import ENV_KINDS, make_env
from swarmlearn.errors import ConfigError
from swarmlearn.types import Failure, Success, Timeout

Oracle = Callable[[BaseEnvironment], Sequence[Action]]  # the conftest's fixtures

KINDS = sorted(ENV_KINDS)
SEEDS = range(12)


def hidden_state(env: BaseEnvironment) -> dict[str, Any]:
    """The environment's public attributes: its hidden task (config and rng aside)."""
    return {k: v for k, v in vars(env).items() if not k.startswith("_") and k != "rng"}


def random_run(env: BaseEnvironment, rng: random.Random, steps: int) -> list[tuple[Action, Any]]:
    trace = []
    for _ in range(steps):
        if env.done:
            break
        action = rng.choice(env.observe().candidates).action
        trace.append((action, env.step(action)))
    return trace


@pytest.mark.parametrize("kind", KINDS)
def test_builds_from_registry_and_follows_the_protocol(kind: str) -> None:
    env = make_env(kind)
    assert isinstance(env, Environment)
    assert env.kind == kind
    obs = env.reset(0)
    assert 0 < len(obs.candidates) <= 40
    assert set(env.settled) <= set(env.contexts)
    assert env.task_text() and env.render_text().startswith("Task:")
    assert env.outcome() == Timeout(0.0)
    # every task has the same core actions; only the sampled distractors vary
    cores = set()
    for seed in SEEDS:
        env.reset(seed)
        names = {s.name for s in env.action_specs()}
        cores.add(frozenset(names - set(env.optional_actions)))
    assert len(cores) == 1 and next(iter(cores))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_task_and_results(kind: str) -> None:
    for seed in SEEDS:
        a, b = make_env(kind), make_env(kind)
        assert a.reset(seed) == b.reset(seed)
        assert hidden_state(a) == hidden_state(b)
        run_a = random_run(a, random.Random(seed), 150)
        run_b = random_run(b, random.Random(seed), 150)
        assert run_a == run_b
        assert a.outcome() == b.outcome() and a.render_text() == b.render_text()
        # a reset starts over: the same task again
        fresh = make_env(kind)
        assert a.reset(seed) == fresh.reset(seed)
        assert hidden_state(a) == hidden_state(fresh)


@pytest.mark.parametrize("kind", KINDS)
def test_different_seeds_differ(kind: str) -> None:
    env = make_env(kind)
    states = []
    for seed in SEEDS:
        env.reset(seed)
        states.append(repr(hidden_state(env)))
    assert len(set(states)) == len(states)


@pytest.mark.parametrize("kind", KINDS)
def test_initial_contexts_reveal_nothing(kind: str) -> None:
    """Contexts are what a worker can see: at the start, every task looks the same."""
    env = make_env(kind)
    looks = {tuple(sorted(Counter(env.reset(seed).targets.values()).items())) for seed in SEEDS}
    assert len(looks) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_action_before_its_prerequisite_is_not_useful(kind: str) -> None:
    env = make_env(kind)
    for seed in range(4):
        env.reset(seed)
        specs = {s.name: s for s in env.action_specs()}
        dependent = [c.action for c in env.observe().candidates if specs[c.action.name].after]
        assert dependent
        for action in dependent:
            env.reset(seed)
            result = env.step(action)
            assert not result.success, (seed, action, result)


@pytest.mark.parametrize("kind", KINDS)
def test_distractors_never_succeed(kind: str) -> None:
    env = make_env(kind)
    seen = 0
    for seed in SEEDS:
        env.reset(seed)
        for action, result in random_run(env, random.Random(seed), 300):
            if action.name in env.optional_actions:
                seen += 1
                assert not result.success and not result.discoveries
        env.reset(seed)
        facts = env.observe().facts
        for cand in env.observe().candidates:
            if cand.action.name in env.optional_actions:
                assert not env.step(cand.action).success
        assert env.observe().facts == facts
    assert seen > 0


@pytest.mark.parametrize("kind", KINDS)
def test_solving_sequence_succeeds_with_full_score(kind: str, solution: Oracle) -> None:
    env = make_env(kind)
    for seed in SEEDS:
        env.reset(seed)
        for action in solution(env):
            assert not env.done
            env.step(action)
        outcome = env.outcome()
        assert env.done and isinstance(outcome, Success) and outcome.score == 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_wasted_steps_lower_the_score(kind: str, solution: Oracle) -> None:
    env = make_env(kind)
    env.reset(1)
    waste = next(c.action for c in env.observe().candidates
                 if c.action.name in env.optional_actions)
    for _ in range(5):
        env.step(waste)
    for action in solution(env):
        env.step(action)
    outcome = env.outcome()
    assert isinstance(outcome, Success) and 0.0 < outcome.score < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_partial_score_grows_with_progress(kind: str, solution: Oracle) -> None:
    env = make_env(kind)
    for seed in SEEDS:
        env.reset(seed)
        scores = []
        for action in solution(env)[:-1]:
            outcome = env.outcome()
            assert isinstance(outcome, Timeout)
            scores.append(outcome.partial_score)
            env.step(action)
        last = env.outcome()
        assert isinstance(last, Timeout) and 0.0 < last.partial_score < 1.0
        scores.append(last.partial_score)
        assert scores == sorted(scores) and scores[0] == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_irrecoverable_mistake_fails(
    kind: str, mistakes: Oracle, failure_params: dict[str, dict[str, Any]]
) -> None:
    env = make_env(kind, failure_params.get(kind, {}))
    for seed in SEEDS:
        env.reset(seed)
        results = []
        for action in mistakes(env):
            assert not env.done
            results.append(env.step(action))
        assert not results[-1].success
        assert env.done and isinstance(env.outcome(), Failure)


@pytest.mark.parametrize("kind", KINDS)
def test_config_errors_name_the_field(kind: str) -> None:
    config_cls = ENV_KINDS[kind][1]
    for f in dataclasses.fields(config_cls):
        for bad in (-1, 10**6):
            with pytest.raises(ConfigError) as err:
                make_env(kind, {f.name: bad})
            assert err.value.field == f"environment.{f.name}"
            assert f.name in str(err.value)
    with pytest.raises(ConfigError) as err:
        make_env(kind, {"no_such_field": 1})
    assert err.value.field == "environment.no_such_field"


@pytest.mark.parametrize("kind", KINDS)
def test_random_policy_sometimes_succeeds(kind: str) -> None:
    """On the default size: ~300 random actions solve some tasks, but not most."""
    wins = 0
    for seed in range(100):
        env = make_env(kind)
        env.reset(seed)
        random_run(env, random.Random(10_000 + seed), 300)
        wins += isinstance(env.outcome(), Success)
    assert 1 <= wins <= 45


def _learn(kind: str, episodes: int) -> list[bool]:
    """Thompson sampling over (context, action name), carried across episodes."""
    stats: dict[tuple[str, str], list[float]] = defaultdict(lambda: [1.0, 1.0])
    rng, wins = random.Random(1), []
    env = make_env(kind)
    for seed in range(episodes):
        env.reset(seed)
        while not env.done and env.steps < 300:
            cands = env.observe().candidates
            best = max(cands, key=lambda c: rng.betavariate(*stats[(c.context, c.action.name)]))
            result = env.step(best.action)
            stats[(best.context, best.action.name)][0 if result.success else 1] += 1
        wins.append(isinstance(env.outcome(), Success))
    return wins


@pytest.mark.parametrize("kind", KINDS)
def test_context_learner_beats_random(kind: str) -> None:
    """Contexts carry what is needed: a (context, action) learner solves most tasks."""
    wins = _learn(kind, 250)
    assert sum(wins[-50:]) >= 25


ACTIONS = st.one_of(
    st.integers(min_value=0, max_value=10_000),
    st.tuples(st.sampled_from(["Bogus", "Move", "Answer", "ApplyFix", "ReportBug"]),
              st.text(max_size=6),
              st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=2)),
)


def _as_action(env: BaseEnvironment, pick: int | tuple[str, str, Sequence[tuple[str, str]]]
               ) -> Action:
    if isinstance(pick, int):
        cands = env.observe().candidates
        return cands[pick % len(cands)].action
    name, target, args = pick
    return Action(name, target, tuple(args))


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**20), picks=st.lists(ACTIONS, max_size=120))
def test_any_action_sequence_is_safe(kind: str, seed: int, picks: list[Any]) -> None:
    env = make_env(kind)
    env.reset(seed)
    for pick in picks:
        if env.done:
            break
        env.step(_as_action(env, pick))
        obs = env.observe()
        assert set(obs.targets.values()) <= set(env.contexts)
        assert all(c.context == obs.targets.get(c.action.target, "") for c in obs.candidates)
    outcome = env.outcome()
    assert 0.0 <= outcome.value <= 1.0
    if env.done:
        assert isinstance(outcome, Success | Failure)
    else:
        assert isinstance(outcome, Timeout) and outcome.partial_score < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_incremental_candidates_and_pickers_match_a_full_rebuild(kind: str) -> None:
    """observe() rebuilds only the candidates of targets whose context changed, and the
    per-target pickers narrow exactly as the generic filter does, through whole runs."""
    from swarmlearn.core.actions import Candidate
    from swarmlearn.core.manager import Guidance
    from swarmlearn.core.workers import narrow

    env = make_env(kind)
    rng = random.Random(7)
    for seed in range(4):
        env.reset(seed)
        for _ in range(80):
            if env.done:
                break
            obs = env.observe()
            full = tuple(Candidate(c.action, obs.targets.get(c.action.target, ""))
                         for c in obs.candidates)
            assert obs.candidates == full
            for target in {c.action.target for c in obs.candidates} - {""}:
                guided = Guidance(assignments={0: target})
                assert tuple(narrow(obs.candidates, guided, 0, obs.pickers)) == tuple(
                    narrow(obs.candidates, guided, 0))
            env.step(rng.choice(obs.candidates).action)
