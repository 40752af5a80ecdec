"""Each payload to numbers and back: snapshots, DQN policies, PEFT LoRA adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ArtifactError
from swarmlearn.fed import DqnCodec, LoraCodec, SnapshotCodec, build_vocabulary, fixed_mean
from swarmlearn.learn.policies import LearningPolicies, LearningState
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope
from swarmlearn.session import run_session


def test_a_snapshot_round_trips_over_its_vocabulary() -> None:
    sc = load_scenario("troubleshooting")
    vocab = build_vocabulary([sc], episodes=5)
    pol = LearningPolicies("adaptive", LearningState())
    res = run_session(sc.override(workers={"policy": "adaptive"}), seeds=[900_000, 900_001],
                      policies=pol)
    snap = LearningSnapshot.from_episodes(res.episodes, scope=SnapshotScope.GLOBAL,
                                          key="federation", stats=pol.state.stats, created=0.0)
    codec = SnapshotCodec(vocab)
    back = codec.decode(codec.encode(snap))
    want = {tuple(r[:-2]): r[-2:] for r in snap.stats.to_dict()["contexts"]}
    got = {tuple(r[:-2]): r[-2:] for r in back.stats.to_dict()["contexts"]}
    assert got == want  # the public seeds' keys are all in the vocabulary
    assert (back.episodes, back.successes, back.actions) == (snap.episodes, snap.successes,
                                                             snap.actions)
    with pytest.raises(ArtifactError, match="statistics vector"):
        codec.decode([np.zeros(3), np.zeros(5)])


def test_noisy_numbers_decode_to_valid_counts() -> None:
    vocab = build_vocabulary([load_scenario("search")], episodes=3)
    codec = SnapshotCodec(vocab)
    rng = np.random.default_rng(0)
    noisy = [rng.normal(0, 50, s) for s in codec.shapes]
    snap = codec.decode(noisy)
    assert all(r[-1] >= 0 and r[-2] >= 0 for r in snap.stats.to_dict()["contexts"])
    assert 0 <= snap.successes <= snap.episodes


def test_dqn_policies_average_through_their_codec() -> None:
    from swarmlearn.rl import DQN, DQNConfig

    agents = [DQN(DQNConfig(seed=s, hidden=(8,)), obs_dim=4, n_actions=2, total_steps=10)
              for s in (1, 2)]
    codecs = [DqnCodec(a) for a in agents]
    vectors = [c.encode(a) for c, a in zip(codecs, agents, strict=True)]
    avg = fixed_mean(vectors)
    codecs[0].decode(avg)
    assert np.allclose(agents[0].net.params, (vectors[0][0] + vectors[1][0]) / 2, atol=1e-6)
    assert np.array_equal(agents[0].target_params, agents[0].net.params)
    with pytest.raises(ArtifactError, match="DQN arrays"):
        codecs[0].decode([np.zeros(3)])


@pytest.mark.slow
def test_lora_adapters_average_through_their_codec(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=2)
    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = peft.get_peft_model(transformers.LlamaForCausalLM(cfg), peft.LoraConfig(
            r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
        d = tmp_path / f"a{seed}"
        model.save_pretrained(d)
        dirs.append(d)
    codec = LoraCodec(dirs[0], tmp_path / "avg")
    arrays = [codec.encode(d) for d in dirs]
    out = codec.decode(fixed_mean(arrays))
    back = codec.encode(out)
    for a, b, m in zip(arrays[0], arrays[1], back, strict=True):
        assert np.allclose(m, (a + b) / 2, atol=1e-6)
    loaded = peft.PeftModel.from_pretrained(transformers.LlamaForCausalLM(cfg), str(out))
    assert loaded is not None
