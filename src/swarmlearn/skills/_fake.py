"""A scripted world for tests and benchmarks: a QA set whose tasks a fake target solves
only when the skill states the rule of the task's category, and a fake optimizer that
reads failures and proposes those rules (and, on successes, a harmful edit).

Both are pure functions of the request, so any two runs given them are identical.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from swarmlearn.llm import CompletionRequest

__all__ = ["POISON", "ScriptedWorld"]

POISON = "When unsure, answer unknown."
_CAT = re.compile(r"Question: \[(\w+)\]")


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
        if request.purpose == "rank":
            n = user.count("\n[")
            return json.dumps({"order": list(range(n))})
        if "## Failed tasks" in user:
            cats = sorted(set(_CAT.findall(user)))
            edits = [{"op": "append", "content": f"Rule {c}: give the code of the item.",
                      "support": user.count(f"[{c}]")} for c in cats]
            return json.dumps({"edits": edits})
        return json.dumps({"edits": [{"op": "append", "content": POISON, "support": 1}]})
