"""Troubleshooting: check → logs / metrics → diagnose → restart the faulty service."""

from __future__ import annotations

import pytest

from swarmlearn.core.actions import Action
from swarmlearn.envs import TroubleshootingConfig, TroubleshootingEnv, make_env
from swarmlearn.errors import ConfigError
from swarmlearn.types import Failure, Success, Timeout


def env_for(seed: int = 0, **params: object) -> TroubleshootingEnv:
    env = TroubleshootingEnv(TroubleshootingConfig(**params))  # type: ignore[arg-type]
    env.reset(seed)
    return env


def test_hidden_state_is_deterministic() -> None:
    a, b = env_for(9), env_for(9)
    assert (a.services, a.faulty, a.fault) == (b.services, b.faulty, b.fault)
    assert a.faulty in a.services
    others = {(e.faulty, e.fault, tuple(e.services)) for e in map(env_for, range(10))}
    assert len(others) == 10


def test_logs_need_a_status_check_first() -> None:
    env = env_for()
    s = env.faulty
    result = env.step(Action("ReadLogs", s))
    assert not result.success and "check" in result.error
    assert not env.step(Action("Diagnose", s)).success
    assert env.step(Action("CheckStatus", s)).success and env.context(s) == "degraded"
    assert env.step(Action("ReadLogs", s)).success and env.context(s) == "evidence"
    assert env.step(Action("Diagnose", s)).success and env.context(s) == "diagnosed"
    assert env.step(Action("Restart", s)).success
    outcome = env.outcome()
    assert isinstance(outcome, Success) and 0.0 < outcome.score < 1.0  # one step wasted


def test_two_sources_of_evidence_when_asked() -> None:
    env = env_for(evidence=2)
    s = env.faulty
    env.step(Action("CheckStatus", s))
    env.step(Action("AnalyzeMetrics", s))
    assert env.context(s) == "degraded"
    assert not env.step(Action("Diagnose", s)).success
    env.step(Action("ReadLogs", s))
    assert env.context(s) == "evidence"


def test_warnings_on_healthy_services_clear_on_inspection() -> None:
    env = next(e for e in (env_for(s, noise=1.0) for s in range(10)) if e._warning)
    s = next(iter(env._warning))
    env.step(Action("CheckStatus", s))
    assert env.context(s) == "warning"
    cleared = env.step(Action("ReadLogs", s))
    assert cleared.success and cleared.discoveries  # ruling a suspect out is progress
    assert env.context(s) == "healthy"
    assert not env.step(Action("AnalyzeMetrics", s)).success  # nothing more to learn there


def test_restart_before_diagnosis_costs_but_does_not_solve() -> None:
    env = env_for()
    result = env.step(Action("Restart", env.faulty))
    assert not result.success and not env.done and env.cost >= 1.0


def test_wrong_restarts_cause_an_outage() -> None:
    env = env_for(max_wrong_restarts=2)
    healthy = [s for s in env.services if s != env.faulty]
    env.step(Action("Restart", healthy[0]))
    assert not env.done
    env.step(Action("Restart", healthy[1]))
    assert env.done and isinstance(env.outcome(), Failure)


def test_partial_score_follows_the_stage() -> None:
    env = env_for()
    s = env.faulty
    scores = [env.outcome()]
    for name in ("CheckStatus", "ReadLogs", "Diagnose"):
        env.step(Action(name, s))
        scores.append(env.outcome())
    assert scores == [Timeout(0.0), Timeout(0.25), Timeout(0.5), Timeout(0.75)]


def test_contexts_start_blind() -> None:
    for seed in range(5):
        assert set(env_for(seed).observe().targets.values()) == {"unchecked"}


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        TroubleshootingConfig(evidence=3)
    assert err.value.field == "evidence"
    with pytest.raises(ConfigError) as err:
        make_env("troubleshooting", {"services": 1})
    assert err.value.field == "environment.services"
