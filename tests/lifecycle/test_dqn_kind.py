"""DQN policies on the lifecycle: train, register, gate; a changed checkpoint is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ArtifactError
from swarmlearn.lifecycle import ArtifactKind, ArtifactState, Lifecycle, ProduceContext, run_gate
from swarmlearn.lifecycle.dqn_kind import DQNPolicyKind, champion_policy_path
from swarmlearn.store import SqlStore

pytest.importorskip("gymnasium")


def test_dqn_policy_trains_is_gated_and_checked(tmp_path: Path) -> None:
    st = SqlStore(f"sqlite:///{tmp_path}/s.db")
    sc = load_scenario("troubleshooting").override(
        environment={"services": 3, "distractors": 1}, workers={"count": 1, "policy": "random"})
    kind = DQNPolicyKind(sc, st, steps=1500, max_steps=30, runs_dir=str(tmp_path / "runs"),
                         dqn={"learning_starts": 200})
    assert isinstance(kind, ArtifactKind)
    life = Lifecycle(st, kind.name, kind.scope)
    produced = kind.produce(ProduceContext(store=st, scope=kind.scope, champion=None))
    v = life.register(produced)
    assert v.lineage.inputs["env_id"] == "swarmlearn/Troubleshooting-v0"
    assert v.meta["steps"] == 1500 and Path(v.meta["run_dir"]).is_dir()
    run = run_gate(life, kind, v, tasks=20)
    assert run.decision.paired == 20
    assert run.version.state in (ArtifactState.PROMOTED, ArtifactState.REJECTED)
    if run.version.state is ArtifactState.REJECTED:  # a person may still promote the same run
        life.promote(life.register(produced), reason="by hand")
    assert champion_policy_path(st, sc) == Path(v.meta["run_dir"])
    best = Path(v.meta["run_dir"]) / "checkpoints" / "best"
    victim = next(p for p in sorted(best.iterdir()) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="changed since"):
        champion_policy_path(st, sc)
    st.close()
