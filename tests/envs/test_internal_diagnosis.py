"""Internal diagnosis: parse → analyze → trace (through the chain) → fix the matching code."""

from __future__ import annotations

import pytest

from swarmlearn.core.actions import Action
from swarmlearn.envs import InternalDiagnosisConfig, InternalDiagnosisEnv, make_env
from swarmlearn.errors import ConfigError
from swarmlearn.types import Failure, Success, Timeout


def env_for(seed: int = 0, **params: object) -> InternalDiagnosisEnv:
    env = InternalDiagnosisEnv(InternalDiagnosisConfig(**params))  # type: ignore[arg-type]
    env.reset(seed)
    return env


def analyzed(env: InternalDiagnosisEnv) -> str:
    surface = env.chain[0]
    env.step(Action("ParseConfig", surface))
    env.step(Action("AnalyzeLog", surface))
    return surface


def test_hidden_state_is_deterministic_and_well_formed() -> None:
    a, b = env_for(7), env_for(7)
    assert (a.chain, a.code, a.root_key, a.transient) == (b.chain, b.code, b.root_key, b.transient)
    assert len(a.chain) == a.config.depth and len(set(a.chain)) == len(a.chain)
    assert a.code in a.codes and a.root_key in a.keys[a.chain[-1]]
    assert not set(a.transient) & set(a.chain)
    assert all(code != a.code for code in a.transient.values())
    assert env_for(8).code != a.code or env_for(8).chain != a.chain


def test_analyze_log_needs_parsed_config() -> None:
    env = env_for()
    surface = env.chain[0]
    result = env.step(Action("AnalyzeLog", surface))
    assert not result.success and "parse" in result.error
    assert env.step(Action("ParseConfig", surface)).success
    result = env.step(Action("AnalyzeLog", surface))
    assert result.success and env.code in result.output
    assert env.context(surface) == "erroring" and env.context(env.code) == "logged"


def test_trace_follows_the_chain_to_the_root_key() -> None:
    env = env_for(depth=3, components=5)
    surface = analyzed(env)
    assert not env.step(Action("TraceError", env.chain[1])).success  # not implicated yet
    assert env.step(Action("TraceError", surface)).success
    assert env.context(surface) == "relay" and env.context(env.chain[1]) == "implicated"
    assert env.step(Action("TraceError", env.chain[1])).success
    assert env.context(env.chain[2]) == "implicated"
    result = env.step(Action("TraceError", env.chain[2]))
    assert result.success and env.root_key in result.output
    assert env.context(env.code) == "traced" and env.context(env.chain[2]) == "rooted"
    assert env.step(Action("ApplyFix", env.code)).success
    assert env.outcome() == Success(round(1 - 0.5 * (1 - 6 / 7), 4))  # one step wasted


def test_fix_must_match_the_traced_code() -> None:
    env = env_for()
    analyzed(env)
    result = env.step(Action("ApplyFix", env.code))  # logged, not traced: a guess
    assert not result.success and env.fact("wrong_fixes") == "1"
    unseen = next(c for c in env.codes if env.context(c) == "unseen")
    result = env.step(Action("ApplyFix", unseen))  # nobody reports it: refused, not counted
    assert not result.success and env.fact("wrong_fixes") == "1"
    for c in env.chain:
        env.step(Action("TraceError", c))
    assert env.step(Action("ApplyFix", env.code)).success
    outcome = env.outcome()
    assert isinstance(outcome, Success) and outcome.score < 1.0


def test_transient_codes_mislead_until_traced() -> None:
    env = next(e for e in (env_for(s, noise=1.0) for s in range(20)) if e.transient)
    comp, code = next(iter(env.transient.items()))
    env.step(Action("ParseConfig", comp))
    result = env.step(Action("AnalyzeLog", comp))
    assert not result.success and env.context(comp) == "erroring"  # looks like the fault
    assert not env.step(Action("TraceError", comp)).success
    assert env.context(comp) == "clean" and env.context(code) == "transient"
    assert not env.step(Action("ApplyFix", code)).success
    assert env.fact("wrong_fixes") == "1"


def test_too_many_wrong_fixes_fail() -> None:
    env = env_for(max_wrong_fixes=2)
    analyzed(env)
    env.step(Action("ApplyFix", env.code))
    assert not env.done
    env.step(Action("ApplyFix", env.code))
    outcome = env.outcome()
    assert env.done and isinstance(outcome, Failure) and "wrong fixes" in outcome.reason


def test_partial_score_counts_the_chain() -> None:
    env = env_for()
    assert env.outcome() == Timeout(0.0)
    analyzed(env)
    mid = env.outcome().value
    env.step(Action("TraceError", env.chain[0]))
    assert 0.0 < mid < env.outcome().value < 1.0


def test_contexts_start_blind() -> None:
    for seed in range(5):
        env = env_for(seed)
        assert {env.context(c) for c in env.components} == {"unparsed"}
        assert {env.context(c) for c in env.codes} == {"unseen"}


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        InternalDiagnosisConfig(components=3, depth=4)
    assert err.value.field == "depth"
    with pytest.raises(ConfigError) as err:
        make_env("internal_diagnosis", {"noise": 1.5})
    assert err.value.field == "environment.noise"
