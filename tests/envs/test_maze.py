"""Maze: hidden walls, doors that need keys, pits that end the task."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from swarmlearn.core.actions import Action
from swarmlearn.core.environment import BaseEnvironment
from swarmlearn.envs import MazeConfig, MazeEnv, make_env
from swarmlearn.envs._maze_layout import HERE, STEPS, edge, step
from swarmlearn.errors import ConfigError
from swarmlearn.types import Failure, Success

Oracle = Callable[[BaseEnvironment], Sequence[Action]]  # the conftest's fixtures


def env_for(seed: int = 0, **params: object) -> MazeEnv:
    env = MazeEnv(MazeConfig(**params))  # type: ignore[arg-type]
    env.reset(seed)
    return env


def walk_to_door(env: MazeEnv) -> str:
    """Follow the plan until the next action is Unlock; return its direction."""
    for action in env.solution():
        if action.name == "Unlock":
            return action.target
        env.step(action)
    raise AssertionError("no door on the way")


def test_layout_is_deterministic_and_solvable() -> None:
    a, b = env_for(4), env_for(4)
    assert a.layout == b.layout
    lay = a.layout
    assert len(lay.doors) == 1 and len(lay.keys) == 1 and len(lay.pits) == 1
    assert lay.doors <= lay.passages and lay.start not in lay.pits | lay.keys
    plan = a.solution()
    assert [x.name for x in plan].count("PickUp") == 1
    assert [x.name for x in plan].count("Unlock") == 1


def test_a_door_needs_its_key() -> None:
    env = env_for(2)
    door_dir = walk_to_door(env)
    # the same walk without picking up the key
    blind = env_for(2)
    for action in blind.solution():
        if action.name == "PickUp":
            continue
        if action.name == "Unlock":
            result = blind.step(action)
            assert not result.success and "key" in result.error
            assert blind.context(action.target) == "door"
            assert not blind.step(Action("Move", action.target)).success
            break
        blind.step(action)
    assert env.context(door_dir) == "unknown"
    assert env.step(Action("Look", door_dir)).success
    assert env.context(door_dir) == "unlockable"
    assert env.step(Action("Unlock", door_dir)).success
    assert env.step(Action("Move", door_dir)).success


def test_pick_up_only_where_a_key_lies() -> None:
    env = env_for(1)
    assert not env.step(Action("PickUp", HERE)).success
    for action in env.solution():
        if action.name == "PickUp":
            assert env.context(HERE) == "key"
            assert env.step(action).success
            assert env.context(HERE) == "empty"
            break
        env.step(action)


def test_look_shows_a_pit_and_moving_into_it_fails(mistakes: Oracle) -> None:
    for seed in range(6):
        env = env_for(seed, doors=0)
        *approach, fall = mistakes(env)  # walk next to a pit, then step in
        for action in approach:
            env.step(action)
        assert env.step(Action("Look", fall.target)).success
        assert env.context(fall.target) == "pit"
        assert not env.step(fall).success
        assert env.done and isinstance(env.outcome(), Failure)


def test_walls_are_learned_by_bumping() -> None:
    env = env_for(3)
    wall = next(d for d in STEPS if edge(env.pos, step(env.pos, d)) not in env.layout.passages
                and env.context(d) == "unknown")
    assert not env.step(Action("Move", wall)).success
    assert env.context(wall) == "wall" and env.pos == env.layout.start


def test_backtracking_toward_unexplored_ground_is_useful() -> None:
    env = env_for(6, size=5)
    for action in env.solution():
        before = {d: env.context(d) for d in STEPS}
        result = env.step(action)
        if env.done:
            break
        if action.name == "Move" and before[action.target] == "backtrack":
            assert result.success
        if action.name == "Move" and before[action.target] == "visited":
            assert not result.success
    assert isinstance(env.outcome(), Success)


def test_render_draws_the_known_map() -> None:
    env = env_for()
    text = env.render_text()
    assert "@" in text and "Around you" in text and "Keys held: 0" in text


def test_contexts_start_blind() -> None:
    contexts = {tuple(sorted(env_for(s).observe().targets.items())) for s in range(6)}
    assert len(contexts) == 1  # the start corner looks the same in every maze


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        MazeConfig(size=3, doors=2)
    assert err.value.field == "doors"
    with pytest.raises(ConfigError) as err:
        make_env("maze", {"loops": 0.9})
    assert err.value.field == "environment.loops"
