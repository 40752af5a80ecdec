"""Scenario files: loading, variants, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlearn.core.manager import GuidanceSchedule
from swarmlearn.core.scenario import POLICIES, WorkerKind, load_scenario, parse_scenario
from swarmlearn.errors import ConfigError, ScenarioError

EXAMPLES = [  # the scenario files (examples/ also holds the daemon's config)
    p for p in sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))
    if "[environment]" in p.read_text(encoding="utf-8")
]

GOOD = """
name = "t"
[environment]
kind = "troubleshooting"
services = 6

[workers]
count = 2
policy = "random"
policy_params = { c = 1.5 }

[manager]
schedule = "every_n"
interval = 3

[variants.big]
environment.services = 12
limits.max_ticks = 200
"""


def test_good_scenario_and_variant() -> None:
    sc = parse_scenario(GOOD, path="t.toml")
    assert sc.env_params["services"] == 6 and sc.workers.count == 2
    assert sc.workers.kind is WorkerKind.RULE and sc.workers.policy_params == {"c": 1.5}
    assert sc.manager.schedule is GuidanceSchedule.EVERY_N and sc.manager.interval == 3
    big = sc.with_variant("big")
    assert big.env_params["services"] == 12 and big.limits.max_ticks == 200
    assert big.label == "t[big]" and big.workers.count == 2
    assert sc.override(workers={"policy": "fifo"}).workers.policy == "fifo"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            '[environment]\nkind = "troubleshooting"\nservices = "many"\n',
            3,
            "environment.services: expected int, got 'many'",
        ),
        ('[environment]\nkind = "nope"\n', 2, "unknown environment kind 'nope'"),
        (
            '[environment]\nkind = "troubleshooting"\n[workers]\ncount = 0\n',
            4,
            "workers.count: expected >= 1",
        ),
        (
            '[environment]\nkind = "troubleshooting"\n[workers]\ncolour = 1\n',
            4,
            "workers.colour: unknown field",
        ),
        (
            '[environment]\nkind = "troubleshooting"\n\n[variants.x]\nenvironment.noise = 2.0\n',
            5,
            "variants.x",
        ),
        ("[environment\nkind = 1\n", 1, "invalid TOML"),
        (
            '[environment]\nkind = "troubleshooting"\n[manager]\nschedule = "often"\n',
            4,
            "expected one of 'every_tick', 'every_n', 'on_completion'",
        ),
        ('extra = 1\n[environment]\nkind = "troubleshooting"\n', 1, "extra: unknown field"),
        (
            '[environment]\nkind = "troubleshooting"\n[actions]\nexclude = ["Nap"]\n',
            None,
            "unknown action 'Nap'",
        ),
    ],
)
def test_errors_name_file_line_and_field(text: str, line: int | None, fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        sc = parse_scenario(text, path="bad.toml")
        from swarmlearn.session import build_env

        build_env(sc)
    message = str(info.value)
    assert fragment in message
    if line is not None:
        assert message.startswith(f"bad.toml:{line}: ")
    assert "\n" not in message


def test_missing_environment() -> None:
    with pytest.raises(ScenarioError, match=r"environment\.kind: missing required field"):
        parse_scenario("[workers]\ncount = 2\n", path="x.toml")


def test_unknown_variant_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown variant 'zzz'"):
        load_scenario("troubleshooting", variant="zzz")
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(bad)


def test_builtin_by_name() -> None:
    assert load_scenario("troubleshooting").env_kind == "troubleshooting"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_loads_with_all_variants(path: Path) -> None:
    sc = load_scenario(path)
    for name in sc.variants:
        sc.with_variant(name)


def test_overrides_survive_variants_and_win_over_them() -> None:
    sc = parse_scenario(GOOD, path="t.toml")
    both = sc.with_variant("big").override(limits={"max_ticks": 7}, workers={"count": 5})
    assert both.env_params["services"] == 12  # from the variant
    assert both.limits.max_ticks == 7 and both.workers.count == 5  # overrides win
    again = sc.override(limits={"max_ticks": 7}).with_variant("big")
    assert again.limits.max_ticks == 7 and again.env_params["services"] == 12
    assert again.to_dict()["limits"]["max_ticks"] == 7


ENV = '[environment]\nkind = "troubleshooting"\n'


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (ENV + '[workers]\npolicy = "bogus"\n', 4, "workers.policy: unknown policy 'bogus'"),
        (ENV + '[workers]\npolicy = "ucb1"\npolicy_params = { ucb1_c = -1.0 }\n', 5,
         "workers.policy_params.ucb1_c: expected >= 0.0, got -1.0"),
        (ENV + '[workers]\npolicy = "greedy"\npolicy_params = { colour = 1 }\n', 5,
         "workers.policy_params.colour: unknown field"),
        (ENV + '[workers]\nkind = "rl"\n', 3, "workers.policy_path: RL workers need a trained run"),
        (ENV + '[workers]\nkind = "rl"\npolicy_path = "no/such/run"\n', 5,
         "workers.policy_path: no/such/run is not a run directory"),
        (ENV + '[workers]\nkind = "llm"\nmodel = "/no/such.gguf"\n', 5,
         "workers.model: no such file '/no/such.gguf'"),
        (ENV + '[workers]\nkind = "llm"\nurl = "ftp://h"\n', 5, "malformed URL 'ftp://h'"),
        (ENV + '[manager]\nkind = "llm"\n[workers]\nurl = "127.0.0.1:8080"\n', 6,
         "malformed URL '127.0.0.1:8080'"),
        (ENV + '\n[variants.hard]\nworkers.policy = "nope"\n', 5,
         "variants.hard: workers.policy: unknown policy 'nope'"),
        (ENV + '\n[variants.x]\nworkers.kind = "rl"\n', 4, "variants.x: workers.policy_path"),
    ],
)
def test_what_a_run_rejects_is_rejected_on_load_with_its_line(
    text: str, line: int, fragment: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, path="bad.toml")
    message = str(info.value)
    assert message.startswith(f"bad.toml:{line}: ") and fragment in message, message
    assert "\n" not in message


def test_the_scenario_policies_are_the_ones_a_session_builds() -> None:
    from swarmlearn.session import policy_factory

    for name in POLICIES:
        policy_factory(name)
    with pytest.raises(ConfigError) as info:
        policy_factory("?")
    assert str(info.value).endswith(f"(known: {', '.join(sorted(POLICIES))})")


def test_runnable_worker_settings_pass() -> None:
    parse_scenario(ENV + '[workers]\nkind = "llm"\nurl = "http://127.0.0.1:1/"\n')
    parse_scenario(ENV + '[workers]\nkind = "llm"\n')  # the bundled model
    parse_scenario(ENV + '[workers]\npolicy = "adaptive"\npolicy_params = { maturity = 10 }\n')
