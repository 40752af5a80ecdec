"""Code exploration: list → run → follow the traceback frame by frame → grep → report."""

from __future__ import annotations

import itertools

import pytest

from swarmlearn.core.actions import Action
from swarmlearn.envs import CodeExplorationConfig, CodeExplorationEnv, make_env
from swarmlearn.errors import ConfigError
from swarmlearn.types import Failure, Success


def env_for(seed: int = 0, **params: object) -> CodeExplorationEnv:
    env = CodeExplorationEnv(CodeExplorationConfig(**params))  # type: ignore[arg-type]
    env.reset(seed)
    return env


def failing_run(env: CodeExplorationEnv) -> None:
    assert env.step(Action("ListDir", "tests")).success
    assert env.step(Action("RunTest", env.failing)).success


def test_hidden_repository_is_deterministic_and_well_formed() -> None:
    a, b = env_for(3), env_for(3)
    assert (a.chain, a.failing, a.symbol, a.imports) == (b.chain, b.failing, b.symbol, b.imports)
    links = [a.failing, *a.chain]
    assert all(dst in a.imports[src] for src, dst in itertools.pairwise(links))
    assert a.bug in a.mentions and a.chain[-2] in a.mentions
    assert len(a.chain) == a.config.depth and a.failing in a.tests


def test_tests_must_be_listed_and_only_the_failing_one_helps() -> None:
    env = env_for()
    result = env.step(Action("RunTest", env.failing))
    assert not result.success and "list" in result.error
    env.step(Action("ListDir", "tests"))
    passing = next(t for t in env.tests if t != env.failing)
    assert not env.step(Action("RunTest", passing)).success
    assert env.context(passing) == "passing"
    result = env.step(Action("RunTest", env.failing))
    assert result.success and env.symbol in result.output
    assert env.context(env.chain[0]) == "suspect" and env.fact("symbol") == env.symbol


def test_the_bug_is_reached_only_by_following_the_chain() -> None:
    env = env_for(depth=3, modules=6)
    failing_run(env)
    bug = env.bug
    # grepping the bug's module early finds a mere mention; reporting it is refused
    env.step(Action("ListDir", "src"))
    assert not env.step(Action("GrepSymbol", bug)).success
    assert env.context(bug) == "mentions"
    assert not env.step(Action("ReportBug", bug)).success
    assert env.fact("wrong_reports") is None
    first = env.chain[0]
    assert not env.step(Action("FollowImport", first)).success  # not opened yet
    for module in env.chain:
        assert env.step(Action("OpenFile", module)).success
        assert env.step(Action("FollowImport", module)).success
    assert env.context(bug) == "origin"
    assert env.step(Action("GrepSymbol", bug)).success and env.context(bug) == "located"
    assert env.step(Action("ReportBug", bug)).success
    outcome = env.outcome()
    assert isinstance(outcome, Success) and 0.0 < outcome.score < 1.0


def test_following_outside_the_traceback_is_not_useful() -> None:
    env = env_for()
    failing_run(env)
    env.step(Action("ListDir", "src"))
    other = next(m for m in env.modules if m not in env.chain)
    assert not env.step(Action("OpenFile", other)).success
    assert env.context(other) == "opened"
    assert not env.step(Action("FollowImport", other)).success


def test_wrong_reports_fail_at_the_limit() -> None:
    env = env_for(max_wrong_reports=2)
    failing_run(env)
    decoy = env.chain[0]  # depth 2: the bug's caller mentions the symbol
    assert "mentions" in env.step(Action("GrepSymbol", decoy)).output
    assert not env.step(Action("ReportBug", decoy)).success and not env.done
    env.step(Action("ReportBug", decoy))
    assert env.done and isinstance(env.outcome(), Failure)


def test_reports_without_a_cited_line_are_refused_not_counted() -> None:
    env = env_for(max_wrong_reports=1)
    env.step(Action("ListDir", "src"))
    for module in env.modules:
        assert not env.step(Action("ReportBug", module)).success
    assert not env.done and env.cost > 0


def test_contexts_start_blind() -> None:
    for seed in range(5):
        env = env_for(seed)
        assert set(env.observe().targets.values()) == {"unlisted"}


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        CodeExplorationConfig(modules=3, depth=4)
    assert err.value.field == "depth"
    with pytest.raises(ConfigError) as err:
        make_env("code_exploration", {"tests": 0})
    assert err.value.field == "environment.tests"
