"""The offline analyzer and the learning loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarmlearn.core.actions import ActionResult
from swarmlearn.core.events import ActionEvent, EventIds
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ArtifactError
from swarmlearn.learn.loop import LearningRunConfig, load_state, run_learning
from swarmlearn.learn.offline import (
    AnalyzerConfig,
    OfflineAnalyzer,
    OfflineModel,
    action_order,
    dependency_graph,
    recommended_paths,
)
from swarmlearn.learn.policies import LearningPolicies, LearningState
from swarmlearn.ops.report import learning_html
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore


def _episode(steps: list[tuple[str, str]], ids: EventIds) -> list[ActionEvent]:
    return [ActionEvent(ids.next(), 1, "t", "", 0, i, 0, name, target, (), ActionResult(True),
                        0.0, "", 0.0) for i, (name, target) in enumerate(steps)]


def test_dependency_graph_recovers_structure_with_any_of_groups() -> None:
    ids = EventIds(1)
    eps = []
    for k in range(6):
        evidence = "ReadLogs" if k % 2 else "AnalyzeMetrics"
        eps.append(_episode([("CheckStatus", "s1"), ("CheckStatus", "s2"), (evidence, "s2"),
                             ("Diagnose", "s2"), ("Restart", "s2")], ids))
    required, any_of = dependency_graph(eps, ratio=0.8)
    assert required["Restart"] == ["Diagnose"]  # reduced: not CheckStatus, not the evidence
    assert required["ReadLogs"] == ["CheckStatus"] and required["AnalyzeMetrics"] == ["CheckStatus"]
    assert required["Diagnose"] == ["CheckStatus"]
    assert any_of["Diagnose"] == [["AnalyzeMetrics", "ReadLogs"]]
    assert "CheckStatus" not in required
    order = action_order(eps, ["Nap"])
    assert order.index("CheckStatus") < order.index("Diagnose") < order.index("Restart")
    assert order[-1] == "Nap"


def test_recommended_paths_rank_by_support_and_lift() -> None:
    won = [[["a", "b", "c"]], [["a", "b", "c"]], [["x", "a", "b"]]]
    lost = [[["a", "x"]]]
    paths = recommended_paths(won, lost, min_support=2)
    # support x success rate x length: ab (3 x 1 x 2) ties abc (2 x 1 x 3), then bc (2 x 1 x 2)
    assert [p["path"] for p in paths] == [["a", "b"], ["a", "b", "c"], ["b", "c"]]
    ab = next(p for p in paths if p["path"] == ["a", "b"])
    assert ab["support"] == 3 and ab["success_rate"] == 1.0
    assert all(p["support"] >= 2 for p in paths)


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[SqlStore, LearningState]:
    store = SqlStore(f"sqlite:///{tmp_path}/o.db")
    sc = load_scenario("troubleshooting").override(workers={"policy": "adaptive"})
    state = LearningState()
    for s in range(3):
        run_session(sc, episodes=8, seed=100 + 8 * s, store=store,
                    policies=LearningPolicies("adaptive", state))
    return store, state


def test_analyzer_builds_saves_and_loads_a_model(recorded: tuple[SqlStore, LearningState]) -> None:
    store, state = recorded
    sc = load_scenario("troubleshooting")
    analyzer = OfflineAnalyzer(store, AnalyzerConfig(trials=6, trial_episodes=4))
    calls: list[int] = []
    model = analyzer.analyze(sc, stats=state.stats, progress=lambda i, n: calls.append(i))
    assert calls == list(range(1, 7))
    assert model.episodes == 24 and model.successes >= 3
    assert model.dependencies.get("Restart") == ["Diagnose"]
    assert set(model.params) == {"ucb1_c", "learning_weight", "ngram_weight", "maturity"}
    assert model.search["trials"] == 6 and model.search["best_value"] >= model.search[
        "default_value"]
    assert model.action_order[0] == "CheckStatus"
    assert model.paths and model.strategy == "adaptive"
    version = analyzer.save(model, sessions=[1, 2])
    from swarmlearn.lifecycle import ArtifactState, Lifecycle

    registered = Lifecycle(store, "offline_model", model.scenario).get(version)
    assert registered.state is ArtifactState.CANDIDATE  # the gate decides, not the save
    assert registered.lineage.inputs["sessions"] == [1, 2]
    assert registered.lineage.config["trials"] == 6
    again = analyzer.load(model.scenario, version)
    assert again is not None and again.to_dict() == model.to_dict()
    cfg = again.policy_config()
    assert cfg.ucb1_c == pytest.approx(model.params["ucb1_c"])


def test_bad_models_are_refused(recorded: tuple[SqlStore, LearningState]) -> None:
    store, _ = recorded
    store.put_artifact("offline_model", "broken", b"{not json")
    with pytest.raises(ArtifactError, match="not JSON"):
        OfflineAnalyzer(store).load("broken")
    with pytest.raises(ArtifactError, match="format_version"):
        OfflineModel.from_dict({"format_version": 7, "scenario": "x"})
    with pytest.raises(ArtifactError, match="unknown strategy"):
        OfflineModel.from_dict({"format_version": 1, "scenario": "x", "strategy": "psychic"})
    assert OfflineAnalyzer(store).load("nothing-here") is None


def test_learning_loop_runs_on_and_off_on_the_same_tasks(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/l.db")
    sc = load_scenario("troubleshooting")
    seen: list[tuple[str, int]] = []
    report = run_learning(sc, store, LearningRunConfig(sessions=4, episodes=4, analyze_every=2,
                                                       trials=3, last=2),
                          progress=lambda mode, i, p: seen.append((mode, i)))
    assert seen == [("on", i) for i in range(4)] + [("off", i) for i in range(4)]
    assert [p.episodes for p in report.on] == [4] * 4
    on_seeds = [[e.seed for e in store.episodes(session=p.session)] for p in report.on]
    off_seeds = [[e.seed for e in store.episodes(session=p.session)] for p in report.off]
    assert on_seeds == off_seeds  # paired: the same tasks
    assert report.model is not None and report.on[-1].model_version == 1
    key = f"{sc.label}#{store.session(report.on[0].session).group}"
    stats, model = load_state(store, key)
    assert stats is not None and stats.events_seen > 0
    assert model is not None and model.to_dict() == report.model.to_dict()
    versions = store.artifacts("snapshot", f"scenario:{key}")
    assert len(versions) == 4  # one snapshot per learning-on session
    final = report.final()
    assert set(final) >= {"on", "off", "clearly_better", "solved_only_clearly_fewer"}
    for side, points in (("on", report.on), ("off", report.off)):
        tail = points[-2:]
        spent = sum(sum(p.actions) for p in tail)
        solved = sum(p.successes for p in tail)
        assert [sum(p.solved) for p in tail] == [p.successes for p in tail]
        if solved:  # every action spent over the tasks solved
            assert final[side]["actions_per_solve"] == pytest.approx(spent / solved)
    both = [(a, b) for p, q in zip(report.on[-2:], report.off[-2:], strict=True)
            for a, b, sa, sb in zip(p.actions, q.actions, p.solved, q.solved, strict=True)
            if sa and sb]
    assert final["paired"]["tasks"] == len(both)
    if both:
        assert final["paired"]["fewer_actions_on"] == pytest.approx(
            sum(b - a for a, b in both) / len(both))
    data = json.loads(json.dumps(report.to_dict()))
    assert len(data["on"]) == 4
    html = learning_html(report).render()
    assert "Learning" in html and html.count("data:image/png") == 1
