"""Training data from the store: the prompts are the served prompts, the filters hold."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import PickingClient, heldout, record_teacher
from swarmlearn.core.events import ActionEvent
from swarmlearn.errors import ConfigError, TrainingError
from swarmlearn.llm.prompt import PROMPT_VERSION
from swarmlearn.session import run_session
from swarmlearn.store import EventQuery, SqlStore
from swarmlearn.training.data import (
    DATASET_KIND,
    DatasetConfig,
    DPOBuilder,
    SFTBuilder,
    load_jsonl,
    register_dataset,
)

EVERYTHING = DatasetConfig(success_only=False, progress_only=False, dedup=False,
                           val_fraction=0.0)


def _pairs(messages_and_replies: list[tuple[tuple[object, ...], str]]) -> Counter[str]:
    return Counter(json.dumps([[m.role.value, m.content] for m in msgs] + [reply])  # type: ignore[attr-defined]
                   for msgs, reply in messages_and_replies)


def test_replayed_prompts_are_exactly_what_the_llm_workers_were_sent(
        tmp_path: Path, scripted_llm: PickingClient) -> None:
    """An LLM swarm (a scripted model, real workers, real planner) records episodes; the
    SFT builder rebuilds every request it sent — decisions and the plan call — exactly,
    but for the decisions never carried out because the task ended earlier in their tick
    (they leave no record)."""
    store = SqlStore(f"sqlite:///{tmp_path}/llm.db")
    sc = heldout().override(workers={"kind": "llm"})
    run_session(sc, episodes=4, seed=3000, store=store)
    sent = [(r.messages, scripted_llm.reply(r)) for r in scripted_llm.requests]
    data = SFTBuilder(EVERYTHING).build(store, heldout())
    rebuilt = [(ex.messages, ex.reply) for ex in data.train]
    assert data.stats["episodes_replayed"] == 4 and data.stats.get("episodes_diverged", 0) == 0
    assert {ex.meta["purpose"] for ex in data.train} == {"decide", "plan"}
    assert not _pairs(rebuilt) - _pairs(sent)
    unapplied = sum(3 * e.ticks - e.actions for e in store.episodes())
    assert (_pairs(sent) - _pairs(rebuilt)).total() == unapplied
    assert data.lineage["plans"] == ["recorded"]  # the planner's note was read


def test_sft_from_a_teacher_keeps_successful_useful_offered_decisions(
        teacher_store: SqlStore) -> None:
    data = SFTBuilder(DatasetConfig(val_fraction=0.2)).build(teacher_store, heldout())
    ends = {e.id: e for e in teacher_store.episodes()}
    for ex in [*data.train, *data.val]:
        assert ends[ex.meta["episode"]].outcome.kind.value == "success"
        assert json.loads(ex.reply).keys() <= {"action", "order"}
        if ex.meta["purpose"] == "decide":  # the reply names one of the offered actions
            label = json.loads(ex.reply)["action"]
            assert f"- {label}" in ex.messages[-1].content
    assert data.stats["no_progress"] > 0 and data.stats["not_offered"] >= 0
    train_seeds = {ex.meta["task_seed"] for ex in data.train}
    val_seeds = {ex.meta["task_seed"] for ex in data.val}
    assert train_seeds and val_seeds and not train_seeds & val_seeds  # split by task seed
    assert data.lineage["prompt_version"] == PROMPT_VERSION
    assert set(data.lineage["sessions"]) == {s.id for s in teacher_store.sessions()}


def test_progress_only_dedup_cap_and_excluded_seeds(teacher_store: SqlStore) -> None:
    every = SFTBuilder(DatasetConfig(progress_only=False, dedup=False)).build(teacher_store,
                                                                              heldout())
    useful = SFTBuilder(DatasetConfig()).build(teacher_store, heldout())
    assert len(useful) < len(every)
    capped = SFTBuilder(DatasetConfig(max_examples=25)).build(teacher_store, heldout())
    assert len(capped) == 25
    some = SFTBuilder(DatasetConfig(exclude_seeds=((1000, 1014),))).build(teacher_store,
                                                                          heldout())
    assert min(ex.meta["task_seed"] for ex in some.train) >= 1015
    assert some.stats["episodes_excluded_seeds"] == 15
    keys = [json.dumps(ex.to_json()["messages"]) for ex in useful.train]
    assert len(keys) == len(set(keys))  # no duplicates


def test_an_episode_that_replays_differently_is_left_out(teacher_store: SqlStore) -> None:
    """An environment that changed since the recording: results differ, no examples."""
    first = teacher_store.episodes()[0]
    events = list(teacher_store.events(EventQuery(session=first.session)))
    with teacher_store._tx(write=True, what="test") as conn:  # tamper with one result
        from swarmlearn.store._schema import events as table

        e: ActionEvent = next(x for x in events if x.id >= first.first_event and x.success)
        conn.execute(table.update().where(table.c.id == e.id).values(output="tampered"))
    data = SFTBuilder(DatasetConfig(success_only=False)).build(teacher_store, heldout())
    assert data.stats["episodes_diverged"] == 1
    assert first.id not in data.lineage["episodes"]


def test_sessions_of_another_environment_are_not_read(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/other.db")
    record_teacher(store, episodes=3, scenario=heldout().override(
        environment={"services": 6}))
    with pytest.raises(TrainingError, match="sessions other config 1") as info:
        SFTBuilder().build(store, heldout())
    assert "\n" not in str(info.value)


def test_no_usable_episodes_is_one_line(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(TrainingError, match="no usable SFT examples") as info:
        SFTBuilder().build(store, heldout())
    assert "\n" not in str(info.value)
    record_teacher(store, episodes=3, policy="random")
    with pytest.raises(TrainingError, match="no usable"):
        SFTBuilder(DatasetConfig(min_score=1.0)).build(store, heldout())


def test_dpo_pairs_share_the_prompt_and_differ_in_the_action(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/dpo.db")
    for worker_seed, policy in ((1, "adaptive"), (2, "random"), (3, "random")):
        sc = heldout().override(workers={"policy": policy})
        run_session(sc, episodes=12, seed=5000, worker_seed=worker_seed, store=store)
    data = DPOBuilder(DatasetConfig(min_gap=0.1, val_fraction=0.0)).build(store, heldout())
    assert data.kind == "dpo" and data.stats["tasks_with_both"] > 0
    for pair in data.train:
        assert pair.chosen != pair.rejected
        assert pair.meta["gap"] >= 0.1
        for reply in (pair.chosen, pair.rejected):  # both are actions of that prompt
            assert f"- {json.loads(reply)['action']}" in pair.messages[-1].content


def test_jsonl_round_trip_artifact_and_bad_lines(teacher_store: SqlStore,
                                                 tmp_path: Path) -> None:
    data = SFTBuilder().build(teacher_store, heldout())
    files = data.write(tmp_path / "ds")
    rows = load_jsonl(files.train)
    assert len(rows) == len(data.train)
    roles = {r["meta"]["purpose"]: [m["role"] for m in r["messages"]] for r in rows}
    assert roles == {"decide": ["system", "user", "assistant"], "plan": ["user", "assistant"]}
    record = register_dataset(teacher_store, data, files)
    assert record.kind == DATASET_KIND and record.name == "troubleshooting[heldout]"
    manifest = json.loads(record.payload or b"")
    assert manifest["lineage"]["episodes"] == data.lineage["episodes"]
    assert manifest["sha256"]["train.jsonl"] == files.sha256["train.jsonl"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n{not json\n')
    with pytest.raises(TrainingError, match=r"bad.jsonl:2: not JSON"):
        load_jsonl(bad)


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        DatasetConfig(val_fraction=0.9)
    with pytest.raises(ConfigError, match="exclude_seeds"):
        DatasetConfig(exclude_seeds=((5, 1),))
