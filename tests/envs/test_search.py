"""Search: query → open → extract, hop by hop, until enough sources agree → answer."""

from __future__ import annotations

import pytest

from swarmlearn.core.actions import Action
from swarmlearn.envs import SearchConfig, SearchEnv, make_env
from swarmlearn.envs.search import MISLEADING, QUESTION_TARGET, RELEVANT
from swarmlearn.errors import ConfigError
from swarmlearn.types import Failure, Success


def env_for(seed: int = 0, **params: object) -> SearchEnv:
    env = SearchEnv(SearchConfig(**params))  # type: ignore[arg-type]
    env.reset(seed)
    return env


def read(env: SearchEnv, doc: str) -> None:
    env.step(Action("OpenResult", doc))
    env.step(Action("ExtractFact", doc))


def relevant(env: SearchEnv, topic: str) -> list[str]:
    return [d for d in env.docs[topic] if env.doc_kind[d] == RELEVANT]


def test_hidden_corpus_is_deterministic_and_answerable() -> None:
    a, b = env_for(5), env_for(5)
    assert (a.hops, a.docs, a.doc_kind, a.answer) == (b.hops, b.docs, b.doc_kind, b.answer)
    final = a.hops[-1]
    assert len(relevant(a, final)) >= a.config.corroboration
    assert all(a.claims[d] == a.answer for d in relevant(a, final))
    assert all(a.claims[d] != a.answer for d in a.claims if a.doc_kind[d] == MISLEADING)


def test_results_must_be_found_then_opened_before_extracting() -> None:
    env = env_for()
    doc = relevant(env, env.hops[0])[0]
    assert not env.step(Action("OpenResult", doc)).success
    assert not env.step(Action("ExtractFact", doc)).success
    assert env.step(Action("Query", env.hops[0])).success
    assert env.context(doc) == "result"
    assert not env.step(Action("ExtractFact", doc)).success
    assert env.step(Action("OpenResult", doc)).success and env.context(doc) == "cited"
    assert env.step(Action("ExtractFact", doc)).success


def test_later_hops_need_the_bridge_fact() -> None:
    env = env_for(depth=2)
    second = env.hops[1]
    assert not env.step(Action("Query", second)).success
    assert env.context(second) == "vague"
    env.step(Action("Query", env.hops[0]))
    read(env, relevant(env, env.hops[0])[0])
    assert env.context(second) == "suggested"
    assert env.step(Action("Query", second)).success


def test_answer_needs_corroboration_and_a_clear_lead() -> None:
    env = env_for(depth=1, corroboration=2)
    final = env.hops[0]
    env.step(Action("Query", final))
    first, second = relevant(env, final)[:2]
    read(env, first)
    assert env.context(QUESTION_TARGET) == "claimed"
    result = env.step(Action("Answer", QUESTION_TARGET))
    assert not result.success and not env.done
    read(env, second)
    assert env.context(QUESTION_TARGET) == "corroborated"
    assert env.step(Action("Answer", QUESTION_TARGET)).success
    assert isinstance(env.outcome(), Success)


def test_answer_may_name_its_value() -> None:
    env = env_for(depth=1, corroboration=1)
    env.step(Action("Query", env.hops[0]))
    read(env, relevant(env, env.hops[0])[0])
    wrong = str(int(env.answer) + 1)
    assert not env.step(Action("Answer", QUESTION_TARGET, (("value", wrong),))).success
    assert not env.done  # an unsupported value is refused
    assert env.step(Action("Answer", QUESTION_TARGET, (("value", env.answer),))).success


def test_corroborated_misconception_fails() -> None:
    env = env_for(depth=1, noise=1.0)
    decoy = next(t for t in env.topics if t not in env.hops)
    assert not env.step(Action("Query", decoy)).success
    for doc in env.docs[decoy][:2]:
        assert env.doc_kind[doc] == MISLEADING
        read(env, doc)
    assert env.context(QUESTION_TARGET) == "corroborated"
    assert not env.step(Action("Answer", QUESTION_TARGET)).success
    assert env.done and isinstance(env.outcome(), Failure)


def test_uncited_documents_are_visible_cues() -> None:
    env = env_for(depth=1, noise=1.0, source_cues=1.0)
    decoy = next(t for t in env.topics if t not in env.hops)
    env.step(Action("Query", decoy))
    doc = env.docs[decoy][0]
    assert not env.step(Action("OpenResult", doc)).success
    assert env.context(doc) == "uncited"


def test_contexts_start_blind() -> None:
    for seed in range(5):
        env = env_for(seed)
        assert set(env.observe().targets.values()) == {"unqueried", "unfound", "open"}


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        SearchConfig(results=2, corroboration=3)
    assert err.value.field == "corroboration"
    with pytest.raises(ConfigError) as err:
        make_env("search", {"source_cues": -0.1})
    assert err.value.field == "environment.source_cues"
