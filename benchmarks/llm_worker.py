"""LLM worker decisions beside llama.cpp's own limit for the same token counts, in one run.

Measured in alternating rounds, on servers started here (xllamacpp, the
bundled SmolLM2-135M, 127.0.0.1):

* ours: a real swarm episode -- the scenario's environment, its LLM workers
  (``build_llm_workers``, what a session uses), the rule manager -- on a server
  configured as a session configures it (``server_config``), and on any
  ``--configs THREADSxSLOTS`` beside it. Seconds per decision = the episode's
  wall time / its decisions: prompt building, HTTP, the JSON-schema grammar,
  parsing and the environment included. The latency of one call is beside it
  (the workers of a tick decide at the same time, so a call waits for others).
* server alone, same reuse: the decision prompts of the default configuration,
  rendered with the server's chat template (``/apply-template``), sent in the
  same order by bare httpx to ``/completion`` on a 1-slot server with the same
  threads, ``cache_prompt`` on, no grammar, ``n_predict`` = that decision's
  reply length (``ignore_eos``). It does the token work of ours and nothing else.
* server alone, rates: a sample of the prompts with ``cache_prompt: false`` at
  1 and at 2 llama.cpp threads (prompt processing and generation tokens/s), and
  at the faster count with the reply held to the schema (the grammar's cost).
  "limit" = P/pp + R/tg per decision at the faster count (no prefix reuse);
  "limit, same reuse" charges only the prompt tokens that ours did not take
  from the cache.

    .venv/bin/python benchmarks/llm_worker.py [--rounds 3] [--ticks 6] [--configs 1x3 2x3]

The machine is shared: read the medians over rounds and the ratios, each taken
within one round; the load average is printed with every round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from swarmlearn.core.events import EventIds
from swarmlearn.core.manager import RuleManager
from swarmlearn.core.scenario import Scenario, load_scenario
from swarmlearn.core.swarm import Swarm, SwarmConfig
from swarmlearn.errors import BackendError
from swarmlearn.llm import Completion, CompletionRequest, HttpLLMClient, LLMClient
from swarmlearn.llm.backend import Backend, build_llm_workers, server_config
from swarmlearn.serving import LlamaServer, LlamaServerConfig

med = statistics.median


@dataclass(frozen=True, slots=True)
class Decision:
    request: CompletionRequest
    prompt: int  # prompt tokens
    cached: int  # of them, taken from the slot's cache
    reply: int  # completion tokens
    latency: float  # seconds, as the worker saw the call


class Recording:
    """An LLMClient that passes calls on and keeps every decision's request and token counts."""

    def __init__(self, client: HttpLLMClient) -> None:
        self.client = client
        self.decisions: list[Decision] = []
        self._lock = threading.Lock()

    def complete(self, request: CompletionRequest) -> Completion:
        c = self.client.complete(request)
        if request.purpose == "decide":
            with self._lock:
                self.decisions.append(Decision(request, c.prompt_tokens, c.cached_tokens,
                                               c.completion_tokens, c.latency))
        return c

    def complete_many(self, requests: Sequence[CompletionRequest], *,
                      concurrency: int = 4) -> list[Completion | BackendError]:
        return self.client.complete_many(requests, concurrency=concurrency)


@dataclass(slots=True)
class Alone:
    """What one direct /completion loop measured."""

    pp: float  # prompt tokens/s
    tg: float  # generated tokens/s
    seconds: float  # mean wall seconds per request
    processed: float  # mean prompt tokens processed per request (not taken from the cache)


@dataclass(slots=True)
class Ours:
    """One server configuration running the swarm, with its figures per round."""

    label: str
    server: LlamaServer
    client: HttpLLMClient
    seconds: list[float] = field(default_factory=list)  # per decision
    latency: list[float] = field(default_factory=list)  # median call latency
    limits: list[float] = field(default_factory=list)  # server-alone limit, no reuse
    limits_reuse: list[float] = field(default_factory=list)  # the same, with ours' reuse
    tokens: list[tuple[float, float, float]] = field(default_factory=list)  # P, cached, R
    last: list[Decision] = field(default_factory=list)

    def run(self, scenario: Scenario, seed: int, ticks: int) -> None:
        from swarmlearn.session import build_env

        env = build_env(scenario)
        recording = Recording(self.client)
        client: LLMClient = recording
        backend = Backend(client, "SmolLM2-135M-Instruct", self.server.base_url)
        workers = build_llm_workers(scenario, env, seed=seed, backend=backend)
        config = SwarmConfig(max_ticks=ticks, timeout_s=3600)
        with Swarm(env, workers, manager=RuleManager(), config=config) as swarm:
            start = time.perf_counter()
            swarm.run_episode(seed=seed, ids=EventIds(1))
            wall = time.perf_counter() - start
        got = self.last = recording.decisions
        self.seconds.append(wall / len(got))
        self.latency.append(med(d.latency for d in got))
        self.tokens.append((statistics.fmean(d.prompt for d in got),
                            statistics.fmean(d.cached for d in got),
                            statistics.fmean(d.reply for d in got)))

    def add_limits(self, rates: Alone) -> None:
        self.limits.append(limit(self.last, rates, reuse=False))
        self.limits_reuse.append(limit(self.last, rates, reuse=True))


def direct_loop(http: httpx.Client, base_url: str, decisions: Sequence[Decision], *,
                cache: bool = False, grammar: bool = False) -> Alone:
    """The decisions' prompts sent one at a time to ``/completion`` by bare httpx."""
    prompt_n = prompt_ms = pred_n = pred_ms = wall = 0.0
    for d in decisions:
        messages = [{"role": m.role.value, "content": m.content} for m in d.request.messages]
        text = http.post(f"{base_url}/apply-template", json={"messages": messages}).json()
        body: dict[str, Any] = {"prompt": text["prompt"], "n_predict": max(1, d.reply),
                                "cache_prompt": cache, "temperature": 0.0}
        if grammar:  # the reply ends where the grammar does
            body.update(json_schema=d.request.json_schema, temperature=d.request.temperature,
                        seed=d.request.seed)
        else:
            body["ignore_eos"] = True
        start = time.perf_counter()
        t = http.post(f"{base_url}/completion", json=body).json()["timings"]
        wall += time.perf_counter() - start
        prompt_n += t["prompt_n"]
        prompt_ms += t["prompt_ms"]
        pred_n += t["predicted_n"]
        pred_ms += t["predicted_ms"]
    n = len(decisions)
    return Alone(1000 * prompt_n / prompt_ms, 1000 * pred_n / pred_ms, wall / n, prompt_n / n)


def limit(decisions: Sequence[Decision], rates: Alone, *, reuse: bool) -> float:
    """Mean seconds per decision at the server-alone rates for these token counts."""
    return statistics.fmean((d.prompt - (d.cached if reuse else 0)) / rates.pp
                            + d.reply / rates.tg for d in decisions)


@dataclass(slots=True)
class Peer:
    """The server-alone figures of every round."""

    servers: dict[int, LlamaServer]  # threads -> a 1-slot server
    replay: list[Alone] = field(default_factory=list)  # same prompts, same order, cache on
    rates: list[dict[int, Alone]] = field(default_factory=list)  # threads -> no reuse
    grammar: list[Alone] = field(default_factory=list)  # the faster count, schema on
    faster: list[int] = field(default_factory=list)

    def run(self, http: httpx.Client, decisions: Sequence[Decision], threads: int,
            sample: int) -> Alone:
        """Measure one round; the rates of the faster thread count."""
        self.replay.append(direct_loop(http, self.servers[threads].base_url, decisions,
                                       cache=True))
        some = decisions[:: max(1, len(decisions) // sample)][:sample]
        rates = {t: direct_loop(http, s.base_url, some) for t, s in self.servers.items()}
        faster = min(rates, key=lambda t: 1 / rates[t].pp + 1 / rates[t].tg)
        self.rates.append(rates)
        self.faster.append(faster)
        self.grammar.append(direct_loop(http, self.servers[faster].base_url, some,
                                        grammar=True))
        return rates[faster]


def bench(ours: list[Ours], peer: Peer, scenario: Scenario, args: argparse.Namespace) -> None:
    threads = ours[0].server.config.effective_threads
    with httpx.Client(timeout=600) as http:
        for r in range(args.rounds):
            for o in ours if r % 2 == 0 else ours[::-1]:  # alternate who meets which load
                o.run(scenario, args.seed + r, args.ticks)
            rates = peer.run(http, ours[0].last, threads, args.alone)
            for o in ours:
                o.add_limits(rates)
            print(f"round {r}: load {os.getloadavg()[0]:.1f}; "
                  + "; ".join(f"{o.label} {o.seconds[-1]:.2f} s/dec (limit {o.limits[-1]:.2f}, "
                              f"same reuse {o.limits_reuse[-1]:.2f})" for o in ours)
                  + f"; alone, same prompts in order {peer.replay[-1].seconds:.2f} s; "
                  + ", ".join(f"{t}t pp {a.pp:.0f} tg {a.tg:.1f} tok/s"
                              for t, a in peer.rates[-1].items())
                  + f", schema tg {peer.grammar[-1].tg:.1f}", flush=True)


def report(ours: list[Ours], peer: Peer) -> None:
    print()
    for t in peer.servers:
        print(f"server alone, {t} thread(s), no reuse: prompt "
              f"{med(r[t].pp for r in peer.rates):.0f} tok/s, generation "
              f"{med(r[t].tg for r in peer.rates):.1f} tok/s")
    print(f"  replies held to the schema, faster count: generation "
          f"{med(g.tg for g in peer.grammar):.1f} tok/s; faster count per round: {peer.faster}")
    header = (f"{'config (threads x slots)':>24} | {'prompt':>6} | {'cached':>6} | "
              f"{'reply':>5} | {'limit s':>7} | {'same reuse':>10} | {'ours s/dec':>10} | "
              f"{'dec/s':>5} | {'latency s':>9} | {'/ limit':>7} | {'/ same reuse':>12}")
    print(header)
    print("-" * len(header))
    for o in ours:
        p, c, rep = (med(t[i] for t in o.tokens) for i in range(3))
        ratio = med(s / lim for s, lim in zip(o.seconds, o.limits, strict=True))
        ratio_reuse = med(s / lim for s, lim in zip(o.seconds, o.limits_reuse, strict=True))
        print(f"{o.label:>24} | {p:>6.0f} | {c:>6.0f} | {rep:>5.1f} | {med(o.limits):>7.2f} | "
              f"{med(o.limits_reuse):>10.2f} | {med(o.seconds):>10.2f} | "
              f"{1 / med(o.seconds):>5.2f} | {med(o.latency):>9.2f} | {ratio:>7.2f} | "
              f"{ratio_reuse:>12.2f}")
    first = ours[0]
    replay = med(a.seconds for a in peer.replay)
    ratio = med(s / a.seconds for s, a in zip(first.seconds, peer.replay, strict=True))
    print(f"server alone, {first.label}'s prompts in the same order on one slot, cache on: "
          f"{replay:.2f} s per decision ({1 / replay:.2f}/s), "
          f"{med(a.processed for a in peer.replay):.0f} prompt tokens processed each; "
          f"ours / that = {ratio:.2f}")
    print("tokens: mean per decision; limit: P/pp + R/tg at the faster thread count; same "
          "reuse: only the uncached prompt tokens charged; ours s/dec: episode wall time / "
          "decisions; latency: median per call; medians over rounds, ratios within each round")


def parse_config(text: str) -> LlamaServerConfig:
    threads, _, slots = text.partition("x")
    return LlamaServerConfig(threads=int(threads), parallel=int(slots))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="troubleshooting")
    ap.add_argument("--variant", default="hard")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ticks", type=int, default=6, help="ticks per episode (one per round)")
    ap.add_argument("--alone", type=int, default=4, help="prompts per no-reuse rate loop")
    ap.add_argument("--configs", nargs="*", default=[],
                    help="THREADSxSLOTS servers to run ours on beside the default, e.g. 1x3")
    ap.add_argument("--seed", type=int, default=500)
    args = ap.parse_args()

    scenario = load_scenario(args.scenario)
    if args.variant:
        scenario = scenario.with_variant(args.variant)
    configs = [("default", server_config(scenario))] + [(c, parse_config(c)) for c in args.configs]
    print(f"{scenario.label}: {scenario.workers.count} LLM workers, {args.ticks} ticks x "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    servers: list[LlamaServer] = []
    try:
        ours = []
        for label, cfg in configs:
            servers.append(LlamaServer(cfg).start())
            ours.append(Ours(f"{label} ({cfg.effective_threads}x{cfg.parallel})", servers[-1],
                             servers[-1].client()))
        counts = sorted({1, 2, configs[0][1].effective_threads})
        alone = {t: LlamaServer(LlamaServerConfig(threads=t, parallel=1)) for t in counts}
        for s in alone.values():
            servers.append(s.start())
        peer = Peer(alone)
        bench(ours, peer, scenario, args)
    finally:
        for s in servers:
            s.stop()
    report(ours, peer)


if __name__ == "__main__":
    main()
