"""ops.metrics: counted from a real swarm's bus and a real lifecycle; scraped over HTTP from a
running ``swarmlearn run --metrics-port``; checked by the client's parser and promtool."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from swarmlearn.core.events import LLMCallEvent
from swarmlearn.core.scenario import load_scenario
from swarmlearn.lifecycle import Lifecycle, Lineage, Produced, TaskResult, gate
from swarmlearn.ops.metrics import METRICS, Metrics, MetricsServer, _BusCounter
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


def _value(registry: Any, name: str, labels: dict[str, str] | None = None) -> float:
    got = registry.get_sample_value(name, labels or {})
    return 0.0 if got is None else float(got)


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _base(spec_name: str, kind: str) -> str:
    return spec_name.removesuffix("_total") if kind == "counter" else spec_name


def test_names_follow_prometheus_conventions() -> None:
    for spec in METRICS:
        assert spec.name.startswith("swarmlearn_")
        if spec.kind == "counter":
            assert spec.name.endswith("_total")
        if spec.kind == "histogram" and "seconds" in spec.name:
            assert spec.name.endswith("_seconds")
        assert not {"task", "session", "id", "event", "seed"} & set(spec.labels)


def test_a_swarm_run_is_counted_exactly(tmp_path: Path) -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = Metrics(registry)
    store = SqlStore(f"sqlite:///{tmp_path}/s.db")
    sc = load_scenario("troubleshooting")
    counted = metrics.timed_store(store, count=True)
    result = run_session(sc, episodes=30, store=counted, seed=5,
                         subscribers=[lambda bus: Metrics.bind(counted, bus)])
    assert _value(registry, "swarmlearn_episodes_total",
                  {"scenario": sc.label, "outcome": "success"}) == sum(
        e.outcome.kind.value == "success" for e in result.episodes)
    actions = sum(s.value for f in text_string_to_metric_families(
        prometheus_client.generate_latest(registry).decode()) if f.name == "swarmlearn_actions"
        for s in f.samples if s.name == "swarmlearn_actions_total")
    assert actions == result.actions
    assert _value(registry, "swarmlearn_episode_actions_sum", {"scenario": sc.label}) == (
        result.actions)
    assert _value(registry, "swarmlearn_store_written_events_total") == (
        store.count_events(result.session) + 2 * len(result.episodes))
    assert _value(registry, "swarmlearn_store_write_seconds_count") >= 1
    ticks = _value(registry, "swarmlearn_tick_seconds_count", {"scenario": sc.label})
    assert ticks == sum(e.ticks > 0 for e in result.episodes)
    assert _value(registry, "swarmlearn_tick_seconds_sum", {"scenario": sc.label}) == (
        pytest.approx(sum(e.duration / e.ticks for e in result.episodes if e.ticks)))
    assert _value(registry, "swarmlearn_bus_blocked_seconds_total",
                  {"subscriber": "recorder"}) >= 0
    store.close()


def test_without_a_store_a_queued_subscriber_counts() -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = Metrics(registry)
    result = run_session(load_scenario("maze"), episodes=5, seed=1,
                         subscribers=[metrics.attach])
    assert _value(registry, "swarmlearn_episode_actions_sum", {"scenario": "maze"}) == (
        result.actions)


def test_llm_calls_by_purpose_with_bounded_labels() -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = Metrics(registry)
    from swarmlearn.core.bus import EventBus

    count = _BusCounter(metrics, EventBus())
    calls = [LLMCallEvent(i, 1, f"t:{i}", 0, 0, purpose, "m", "", 100, 10, 0.5, ok, "", 0.0)
             for i, (purpose, ok) in enumerate([("decide", True), ("decide", False),
                                                ("guide", True), ("weird-new", True)])]
    count(calls)
    assert _value(registry, "swarmlearn_llm_calls_total", {"purpose": "decide", "result": "ok"}
                  ) == 1
    assert _value(registry, "swarmlearn_llm_calls_total",
                  {"purpose": "decide", "result": "error"}) == 1
    assert _value(registry, "swarmlearn_llm_calls_total", {"purpose": "other", "result": "ok"}
                  ) == 1
    assert _value(registry, "swarmlearn_llm_tokens_total",
                  {"purpose": "decide", "direction": "prompt"}) == 200
    assert _value(registry, "swarmlearn_llm_latency_seconds_sum", {"purpose": "guide"}) == 0.5


def test_lifecycle_steps_are_counted(tmp_path: Path) -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = Metrics(registry)
    store = SqlStore(f"sqlite:///{tmp_path}/s.db")
    life = Lifecycle(store, "snapshot", "sc")
    win = ([TaskResult(i, False, 1.0) for i in range(30)],
           [TaskResult(i, True, 1.0) for i in range(30)])
    lose = (win[1], win[0])
    from swarmlearn.lifecycle import add_observer

    remove = add_observer(metrics.observe_lifecycle)
    try:
        for n, result in enumerate((win, win, lose)):
            v = life.register(Produced(payload=b"{}", lineage=Lineage(
                metrics={"wall_seconds": 12.0 + n})))
            life.decide(life.start_evaluation(v), gate(*result))
        assert _value(registry, "swarmlearn_artifact_live_version",
                      {"kind": "snapshot", "scope": "sc"}) == 2
        life.rollback("fell", automatic=True)
    finally:
        remove()
    k = {"kind": "snapshot"}
    assert _value(registry, "swarmlearn_training_runs_total", {**k, "result": "produced"}) == 3
    assert _value(registry, "swarmlearn_training_duration_seconds_sum", k) == 39.0
    assert _value(registry, "swarmlearn_gate_decisions_total", {**k, "decision": "promote"}) == 2
    assert _value(registry, "swarmlearn_gate_decisions_total", {**k, "decision": "reject"}) == 1
    assert _value(registry, "swarmlearn_promotions_total", k) == 2
    assert _value(registry, "swarmlearn_rollbacks_total", {**k, "trigger": "automatic"}) == 1
    assert _value(registry, "swarmlearn_artifact_live_version",
                  {"kind": "snapshot", "scope": "sc"}) == 1
    store.close()


def test_server_binds_loopback_and_serves_the_registry() -> None:
    registry = prometheus_client.CollectorRegistry()
    Metrics(registry)
    server = MetricsServer(0, registry=registry)
    try:
        assert server.host == "127.0.0.1"
        text = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "swarmlearn_build_info" in _families(text)
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape_until(url: str, proc: subprocess.Popen[bytes], ok: Any, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run exited early: {proc.stderr.read().decode()[-2000:]}"
                                 if proc.stderr else "the run exited early")
        try:
            text = urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            time.sleep(0.1)
            continue
        if ok(_families(text)):
            return text
        time.sleep(0.1)
    raise AssertionError(f"no useful scrape of {url} within {timeout}s")


def _check_sane(families: dict[str, Any], *, every: bool = True) -> None:
    for spec in METRICS:
        fam = families.get(_base(spec.name, spec.kind))
        if fam is None and not every:  # multi-process mode shows only families with samples
            continue
        assert fam is not None, f"{spec.name} missing from /metrics"
        assert fam.type == spec.kind, (spec.name, fam.type)
        for s in fam.samples:
            assert s.value >= 0, (s.name, s.labels, s.value)
            assert set(s.labels) - {"le"} <= set(spec.labels), (s.name, s.labels)
        if spec.kind == "histogram":
            counts = {tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")): s.value
                      for s in fam.samples if s.name.endswith("_count")}
            for s in fam.samples:
                if s.name.endswith("_bucket") and s.labels["le"] == "+Inf":
                    key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                    assert s.value == counts[key]


def _started(families: dict[str, Any]) -> bool:
    eps = families.get("swarmlearn_episodes")
    writes = families.get("swarmlearn_store_write_seconds")
    return (eps is not None and writes is not None
            and sum(s.value for s in eps.samples if s.name == "swarmlearn_episodes_total") >= 20
            and any(s.value >= 1 for s in writes.samples if s.name.endswith("_count")))


def test_scrape_a_running_swarmlearn_run(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "swarmlearn.cli", "run", "troubleshooting", "-n", "1000000",
           "--store", str(tmp_path / "s.db"), "--metrics-port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        text = _scrape_until(f"http://127.0.0.1:{port}/metrics", proc, _started)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    families = _families(text)
    _check_sane(families)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    episodes = sum(v for (n, _), v in samples.items() if n == "swarmlearn_episodes_total")
    actions = sum(v for (n, _), v in samples.items() if n == "swarmlearn_actions_total")
    assert episodes >= 20 and actions >= episodes
    assert samples[("swarmlearn_build_info", (("version", _version()),))] == 1
    assert any(n == "swarmlearn_store_write_seconds_count" and v >= 1
               for (n, _), v in samples.items())
    promtool = shutil.which("promtool")
    if promtool is not None:
        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def _version() -> str:
    from swarmlearn import __version__

    return __version__


@pytest.mark.slow
def test_multiprocess_mode_sums_the_processes_of_a_deployment(tmp_path: Path) -> None:
    """Two runs share one multi-process directory; the one that serves shows both."""
    port = _free_port()
    mp = tmp_path / "prom"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp)}
    mp.mkdir()
    quiet = subprocess.run([sys.executable, "-m", "swarmlearn.cli", "--metrics-dir", str(mp),
                            "run", "troubleshooting", "-n", "25", "--no-store"], env=env,
                           capture_output=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr.decode()
    proc = subprocess.Popen([sys.executable, "-m", "swarmlearn.cli", "--metrics-dir", str(mp),
                             "run", "troubleshooting", "-n", "1000000", "--no-store",
                             "--metrics-port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = _scrape_until(f"http://127.0.0.1:{port}/metrics", proc, lambda f: sum(
            s.value for s in (f["swarmlearn_episodes"].samples if "swarmlearn_episodes" in f
                              else []) if s.name == "swarmlearn_episodes_total") >= 45)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    _check_sane(_families(text), every=False)


def test_unknown_actions_are_one_bounded_label() -> None:
    from swarmlearn.core.actions import ActionResult
    from swarmlearn.core.bus import EventBus
    from swarmlearn.core.events import ActionEvent

    registry = prometheus_client.CollectorRegistry()
    count = _BusCounter(Metrics(registry), EventBus())

    def act(i: int, name: str, result: ActionResult) -> ActionEvent:
        return ActionEvent(i, 1, "sc[v]:7", "", 0, i, 0, name, "", (), result, 0.001, "", 0.0)

    count([act(0, "look", ActionResult(True)), act(1, "look", ActionResult(False)),
           act(2, f"made-up-{1}", ActionResult(False, invalid=True)),
           act(3, "made-up-2", ActionResult(False, invalid=True))])
    get = registry.get_sample_value
    assert get("swarmlearn_actions_total", {"scenario": "sc[v]", "action": "look",
                                            "result": "success"}) == 1
    assert get("swarmlearn_actions_total", {"scenario": "sc[v]", "action": "<invalid>",
                                            "result": "invalid"}) == 2
    assert get("swarmlearn_actions_total", {"scenario": "sc[v]", "action": "made-up-1",
                                            "result": "failure"}) is None


def test_bulk_histogram_observe_equals_observe_one_by_one() -> None:
    from swarmlearn.ops.metrics import _observe_many

    values = [0.0, 1e-5, 0.0001, 0.00011, 0.3, 0.5, 7.0, 1e9, 0.005]
    a, b = prometheus_client.CollectorRegistry(), prometheus_client.CollectorRegistry()
    ha = prometheus_client.Histogram("h_seconds", "h", registry=a, buckets=(0.0001, 0.5, 5.0))
    hb = prometheus_client.Histogram("h_seconds", "h", registry=b, buckets=(0.0001, 0.5, 5.0))
    for v in values:
        ha.observe(v)
    _observe_many(hb, values)
    assert prometheus_client.generate_latest(a).split(b"h_seconds_created")[0] == (
        prometheus_client.generate_latest(b).split(b"h_seconds_created")[0])
