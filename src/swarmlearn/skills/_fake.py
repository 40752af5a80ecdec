"""A scripted world for tests and benchmarks: a QA set whose tasks a fake target solves
only when the skill states the rule of the task's category, and a fake optimizer that
reads failures and proposes those rules (and, on successes, a harmful edit).
The optimizer also answers the calls a peer optimizer makes that ours does not
(skillrl's LLM merge: the union of the patches, equal edits once, support
summed; its ranking: ``selected_indices``), so a comparison gives every side an
optimizer that does its job.

Both are pure functions of the request's text (not of its ``purpose``, which does
not travel over HTTP), so any two runs given them are identical, in process or
behind :func:`serve` (an OpenAI-compatible server on 127.0.0.1 for a CLI run).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from swarmlearn.llm import CompletionRequest, Message

__all__ = ["POISON", "ScriptedWorld", "serve"]

POISON = "When unsure, answer unknown."
_CAT = re.compile(r"Question: \[(\w+)\]")
_MINIBATCH = re.compile(r"^## Minibatch (\w+): (Failed|Solved) tasks.*$", re.M)


class ScriptedWorld:
    """``categories`` × ``per_category`` QA items; the rule of category c is ``Rule c``."""

    def __init__(self, categories: int = 4, per_category: int = 10) -> None:
        self.cats = [f"c{i}" for i in range(categories)]
        self.items: list[dict[str, Any]] = [
            {"id": i * per_category + j, "question": f"[{c}] item {j}?", "answers": [f"{c}-{j}"]}
            for i, c in enumerate(self.cats) for j in range(per_category)]
        self.answer = {it["question"]: it["answers"][0] for it in self.items}

    def write(self, path: Path) -> Path:
        path.write_text("".join(json.dumps(it) + "\n" for it in self.items), encoding="utf-8")
        return path

    def target(self, request: CompletionRequest) -> str:
        system, user = request.messages[0].content, request.messages[-1].content
        q = user.split("Question: ", 1)[1].split("\n", 1)[0]
        cat = q[1:].split("]", 1)[0]
        if POISON.lower() in system.lower() and not q.endswith("0?"):
            return "unknown"
        return self.answer[q] if f"rule {cat}".lower() in system.lower() else "unknown"

    def optimizer(self, request: CompletionRequest) -> str:
        user = request.messages[-1].content
        if "## Proposed edits" in user or "## Edit Pool" in user:  # ours, skillrl's
            n = user.count("\n[")
            return json.dumps({"order": list(range(n)), "selected_indices": list(range(n))})
        if "Patches to merge" in user or "pre-merged patch groups" in user:
            return json.dumps({"edits": _union(user)})
        if _MINIBATCH.search(user):
            sections = _MINIBATCH.split(user)[1:]
            return json.dumps({"minibatches": {
                mb: _proposal(body, label == "Failed")
                for mb, label, body in zip(sections[::3], sections[1::3], sections[2::3],
                                           strict=True)}})
        return json.dumps({"edits": _proposal(user, "## Failed tasks" in user)})


def _proposal(text: str, failed: bool) -> list[dict[str, Any]]:
    """On failures, each failed category's rule; on successes, the harmful edit."""
    if not failed:
        return [{"op": "append", "content": POISON, "support": 1}]
    return [{"op": "append", "content": f"Rule {c}: give the code of the item.",
             "support": text.count(f"[{c}]")} for c in sorted(set(_CAT.findall(text)))]


def _union(user: str) -> list[dict[str, Any]]:
    """The edits of the JSON list of patches in a merge prompt, equal ones once."""
    head = "Patches to merge" if "Patches to merge" in user else "pre-merged patch groups"
    start = user.index("\n[", user.index(head)) + 1
    patches, _ = json.JSONDecoder().raw_decode(user[start:])
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p in patches:
        for e in p.get("edits", []):
            key = (e.get("op", ""), e.get("target", ""), e.get("content", ""))
            if key in out:
                out[key]["support_count"] = (out[key].get("support_count") or 0) + (
                    e.get("support_count") or 0)
            else:
                out[key] = dict(e)
    return list(out.values())


def serve(answer: Callable[[CompletionRequest], str]) -> tuple[ThreadingHTTPServer, str]:
    """``answer`` behind ``POST /v1/chat/completions`` on 127.0.0.1 (a free port), in a
    daemon thread; the server (``shutdown()`` it) and its base URL. Tokens are
    whitespace word counts, as :class:`~swarmlearn.llm.ScriptedLLMClient` counts."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            messages = tuple(Message(role=m["role"], content=m["content"])
                             for m in body["messages"])
            text = answer(CompletionRequest(messages=messages))
            prompt = sum(len(m.content.split()) for m in messages)
            out = json.dumps({"choices": [{"message": {"role": "assistant", "content": text},
                                           "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": prompt,
                                        "completion_tokens": len(text.split())}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="scripted-llm").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
