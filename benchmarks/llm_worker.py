"""LLM worker decisions against a real llama.cpp server: swarmlearn's client beside bare httpx.

For 1, 2 and 4 parallel slots, one server (xllamacpp, bundled SmolLM2-135M,
127.0.0.1) answers the same worker-decision requests -- a short state text
and a JSON schema for the action -- sent two ways, in alternating rounds:

* peer: bare ``httpx.Client.post`` from a thread pool of N threads, body built once;
* swarmlearn: ``HttpLLMClient.complete_many(concurrency=N)`` with a call-record
  hook and ``JsonReplyParser`` on every reply (what an LLM worker does).

It prints decisions/s and tokens/s for both, their ratio, the server's own
figures from ``/metrics`` (generated tokens/s over the run, all slots, and per
busy slot), and the client's cost per decision measured two ways: the mean of
(latency - the server's prompt+generation time) of ours minus the peer's, and
the client alone against a canned reply (httpx MockTransport, no server).

    .venv/bin/python benchmarks/llm_worker.py [--decisions 12] [--rounds 6] [--slots 1 2 4]

Timings on a shared machine are noisy: the rounds alternate which variant goes
first, so that both meet the same contention. Read the ratio and "client +ms";
the absolute rates depend on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from swarmlearn.errors import BackendError
from swarmlearn.llm import (
    CallRecord,
    Completion,
    CompletionRequest,
    HttpLLMClient,
    JsonReplyParser,
    LLMClientConfig,
)
from swarmlearn.serving import LlamaServer, LlamaServerConfig

ACTIONS = ["check_logs", "restart", "rollback", "scale_up", "clear_cache", "escalate", "wait"]
SERVICES = ["api", "db", "cache", "queue", "auth"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ACTIONS},
        "target": {"type": "string", "enum": SERVICES},
    },
    "required": ["action", "target"],
    "additionalProperties": False,
}
SYSTEM = (
    "You are worker 3 in a swarm that diagnoses and repairs a web service.\n"
    "Skill notes:\n"
    "- Read the logs of a failing service before restarting it.\n"
    "- Roll back only when a deploy happened recently.\n"
    "- Escalate when two repairs of the same service failed.\n"
    'Answer with one JSON object: {"action": ..., "target": ...}.'
)


def decision_request(i: int) -> CompletionRequest:
    """The i-th decision: the same task, a different tick and failing service."""
    failing = SERVICES[i % len(SERVICES)]
    status = ", ".join(f"{s}={'DOWN' if s == failing else 'ok'}" for s in SERVICES)
    state = (
        f"Tick {i}. Services: {status}. Last deploy: 12 minutes ago.\n"
        f"Recent actions: check_logs({failing}) -> 'connection refused'.\n"
        f"Manager guidance: focus on {failing}.\n"
        f"Available actions: {', '.join(ACTIONS)}. Targets: {', '.join(SERVICES)}."
    )
    return CompletionRequest.chat(
        state,
        system=SYSTEM,
        json_schema=SCHEMA,
        max_tokens=48,
        temperature=0.0,
        seed=i,
        purpose="decide",
    )


@dataclass(slots=True)
class Call:
    latency: float  # seconds, as the caller saw it
    server: float  # seconds the server reports (prompt + generation) for this request
    tokens: int


@dataclass(slots=True)
class Variant:
    """Everything measured for one way of calling, summed over its rounds."""

    seconds: float = 0.0
    calls: list[Call] = field(default_factory=list)
    server_tokens: float = 0.0  # Δ tokens_predicted_total from /metrics
    server_gen_seconds: float = 0.0  # Δ tokens_predicted_seconds_total (summed over slots)

    @property
    def decisions_per_s(self) -> float:
        return len(self.calls) / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return sum(c.tokens for c in self.calls) / self.seconds

    @property
    def server_tokens_per_s(self) -> float:
        return self.server_tokens / self.seconds

    @property
    def server_slot_tokens_per_s(self) -> float:
        return self.server_tokens / self.server_gen_seconds if self.server_gen_seconds else 0.0

    @property
    def mean_latency(self) -> float:
        return statistics.fmean(c.latency for c in self.calls)

    @property
    def mean_outside_server(self) -> float:
        """Mean seconds per call not spent in the server's prompt/generation work."""
        return statistics.fmean(c.latency - c.server for c in self.calls)


def _server_seconds(timings: Any) -> float:
    if not isinstance(timings, dict):
        return 0.0
    return (float(timings.get("prompt_ms", 0)) + float(timings.get("predicted_ms", 0))) / 1000


def run_into(variant: Variant, server: LlamaServer, work: Callable[[], list[Call]]) -> None:
    before = server.metrics()
    start = time.perf_counter()
    calls = work()
    variant.seconds += time.perf_counter() - start
    after = server.metrics()
    variant.calls.extend(calls)
    variant.server_tokens += after.tokens_predicted_total - before.tokens_predicted_total
    variant.server_gen_seconds += (
        after.tokens_predicted_seconds_total - before.tokens_predicted_seconds_total
    )


def peer_work(
    http: httpx.Client, url: str, bodies: Sequence[dict[str, Any]], n: int
) -> Callable[[], list[Call]]:
    def one(body: dict[str, Any]) -> Call:
        start = time.perf_counter()
        response = http.post(url, json=body)
        response.raise_for_status()
        data = response.json()
        latency = time.perf_counter() - start
        tokens = int(data["usage"]["completion_tokens"])
        return Call(latency, _server_seconds(data.get("timings")), tokens)

    def work() -> list[Call]:
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(one, bodies))

    return work


def ours_work(
    client: HttpLLMClient,
    parser: JsonReplyParser,
    requests: Sequence[CompletionRequest],
    n: int,
) -> Callable[[], list[Call]]:
    def work() -> list[Call]:
        calls = []
        for r in client.complete_many(requests, concurrency=n):
            if isinstance(r, BackendError):
                raise r
            parser.parse(r.text)
            server = r.timings.total_ms / 1000 if r.timings else 0.0
            calls.append(Call(r.latency, server, r.completion_tokens))
        return calls

    return work


def bench_slots(n: int, decisions: int, rounds: int, threads: int | None) -> dict[str, Any]:
    requests = [decision_request(i) for i in range(decisions)]
    bodies = [r.to_body("") for r in requests]
    records: list[CallRecord] = []
    parser = JsonReplyParser(SCHEMA)
    peer, ours = Variant(), Variant()
    with LlamaServer(LlamaServerConfig(parallel=n, threads=threads)) as server:
        url = f"{server.base_url}/v1/chat/completions"
        config = LLMClientConfig(base_url=server.base_url, timeout_s=300)
        with (
            httpx.Client(timeout=300) as http,
            server.client(config, on_call=records.append) as client,
        ):
            # warm-up: load pages, build the grammar, fill the slots' prompt caches
            client.complete_many(requests[: 2 * n], concurrency=n)
            for i in range(rounds):  # alternate the order so both see the same contention
                runs = [
                    (peer, peer_work(http, url, bodies, n)),
                    (ours, ours_work(client, parser, requests, n)),
                ]
                for variant, work in runs if i % 2 == 0 else runs[::-1]:
                    run_into(variant, server, work)
    return {"slots": n, "peer": peer, "ours": ours, "parser": parser.stats, "records": records}


def client_only_overhead(calls: int) -> tuple[float, float]:
    """Seconds per call of bare httpx and of HttpLLMClient+parser, against a canned reply."""
    canned = {
        "choices": [{"message": {"content": '{"action": "restart", "target": "db"}'}}],
        "usage": {"prompt_tokens": 200, "completion_tokens": 20},
        "timings": {"prompt_n": 20, "prompt_ms": 5, "predicted_n": 20, "predicted_ms": 200},
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=canned))
    request = decision_request(0)
    body = request.to_body("")
    with httpx.Client(transport=transport) as http:
        start = time.perf_counter()
        for _ in range(calls):
            http.post("http://bench.test/v1/chat/completions", json=body).json()
        peer = (time.perf_counter() - start) / calls
    records: list[CallRecord] = []
    parser = JsonReplyParser(SCHEMA)
    config = LLMClientConfig(base_url="http://bench.test")
    with HttpLLMClient(config, transport=transport, on_call=records.append) as client:
        start = time.perf_counter()
        for _ in range(calls):
            completion: Completion = client.complete(request)
            parser.parse(completion.text)
        ours = (time.perf_counter() - start) / calls
    return peer, ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decisions", type=int, default=12, help="decisions per round")
    ap.add_argument("--rounds", type=int, default=6, help="rounds; each runs both variants")
    ap.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument(
        "--threads", type=int, default=None, help="llama.cpp CPU threads (default: half the CPUs)"
    )
    args = ap.parse_args()

    threads = LlamaServerConfig(threads=args.threads).effective_threads
    print(
        f"{args.decisions} decisions x {args.rounds} rounds per variant, "
        f"concurrency = slots, llama.cpp threads = {threads}"
    )
    print(json.dumps(decision_request(0).to_body(""))[:150] + " ...")
    header = (
        f"{'slots':>5} | {'peer dec/s':>10} | {'ours dec/s':>10} | {'ours/peer':>9} | "
        f"{'peer tok/s':>10} | {'ours tok/s':>10} | {'server tok/s':>12} | "
        f"{'srv tok/s/slot':>14} | {'latency ms':>10} | {'client +ms':>10} | {'valid':>7}"
    )
    print(header)
    print("-" * len(header))
    for n in args.slots:
        res = bench_slots(n, args.decisions, args.rounds, args.threads)
        peer, ours = res["peer"], res["ours"]
        stats = res["parser"]
        extra_ms = (ours.mean_outside_server - peer.mean_outside_server) * 1000
        print(
            f"{n:>5} | {peer.decisions_per_s:>10.2f} | {ours.decisions_per_s:>10.2f} | "
            f"{ours.decisions_per_s / peer.decisions_per_s:>9.3f} | "
            f"{peer.tokens_per_s:>10.1f} | {ours.tokens_per_s:>10.1f} | "
            f"{ours.server_tokens_per_s:>12.1f} | {ours.server_slot_tokens_per_s:>14.1f} | "
            f"{ours.mean_latency * 1000:>10.0f} | {extra_ms:>+10.2f} | "
            f"{stats.valid + stats.repaired:>3}/{stats.total:<3}"
        )
    print(
        "server tok/s: generated tokens / wall time (all slots, from /metrics); "
        "srv tok/s/slot: the server's own generation speed per busy slot; "
        "client +ms: mean (latency - server prompt+generation time) of ours minus peer's"
    )
    peer_s, ours_s = client_only_overhead(2000)
    print()
    print("client alone against a canned reply (no server), per call:")
    print(
        f"  bare httpx {peer_s * 1e6:.0f} us; swarmlearn client + JSON parse {ours_s * 1e6:.0f} us"
    )
    print(f"  swarmlearn adds {(ours_s - peer_s) * 1e6:.0f} us per decision")


if __name__ == "__main__":
    main()
