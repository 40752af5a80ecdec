"""The training loop itself: a plain PyTorch + PEFT loop, readable top to bottom.

SFT: cross-entropy on the reply tokens only (the prompt is context, never a
target). DPO: ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` on the summed
log-probabilities of the chosen and rejected replies, the reference being the
starting policy: the model as it is before the first step, computed once. A new
adapter starts with ``lora_B`` = 0, so that is the base model; a training from
an adapter (DPO on top of the SFT adapter) starts from it, and so does its
reference, as in TRL's ``DPOTrainer`` (a frozen copy of a pretrained adapter).
Examples are tokenized with the base model's chat template exactly as the
server renders the messages; a reply is its tokens up to and including the
end-of-turn token.

Runs in the trainer's child process (:mod:`swarmlearn.training.lora`); it
reports progress through ``report`` and stops cleanly at the step or time
budget.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from swarmlearn.errors import TrainingError

__all__ = ["Tokenized", "run_loop", "tokenize_dpo", "tokenize_sft"]


@dataclass(frozen=True, slots=True)
class Tokenized:
    ids: list[int]
    n_prompt: int  # the first n_prompt tokens are context


def _chat_ids(tokenizer: Any, messages: Sequence[dict[str, str]], *, gen: bool) -> list[int]:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False,
                                         add_generation_prompt=gen)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [int(i) for i in ids]


def _reply_ids(tokenizer: Any, prompt: Sequence[dict[str, str]], prompt_ids: list[int],
               reply: str) -> list[int]:
    full = _chat_ids(tokenizer, [*prompt, {"role": "assistant", "content": reply}], gen=False)
    if full[:len(prompt_ids)] != prompt_ids:
        raise TrainingError("the chat template does not render a reply after the prompt as a "
                            "continuation of it: cannot mask the prompt")
    tail = full[len(prompt_ids):]
    eos = tokenizer.eos_token_id
    if eos in tail:
        tail = tail[:tail.index(eos) + 1]
    return tail


def tokenize_sft(tokenizer: Any, records: Sequence[dict[str, Any]], max_len: int,
                 ) -> tuple[list[Tokenized], int]:
    """SFT records (``messages`` ending with the assistant reply) → token ids; the number
    of records left out for being longer than ``max_len``."""
    out, dropped = [], 0
    for r in records:
        messages = r["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            raise TrainingError("an SFT record must end with the assistant's reply")
        prompt = messages[:-1]
        p = _chat_ids(tokenizer, prompt, gen=True)
        ids = p + _reply_ids(tokenizer, prompt, p, messages[-1]["content"])
        if len(ids) > max_len:
            dropped += 1
            continue
        out.append(Tokenized(ids, len(p)))
    return out, dropped


def tokenize_dpo(tokenizer: Any, records: Sequence[dict[str, Any]], max_len: int,
                 ) -> tuple[list[tuple[Tokenized, Tokenized]], int]:
    out, dropped = [], 0
    for r in records:
        prompt = r["prompt"]
        p = _chat_ids(tokenizer, prompt, gen=True)
        pair = tuple(Tokenized(p + _reply_ids(tokenizer, prompt, p, r[side][0]["content"]),
                               len(p)) for side in ("chosen", "rejected"))
        if max(len(t.ids) for t in pair) > max_len:
            dropped += 1
            continue
        out.append((pair[0], pair[1]))
    return out, dropped


def _batch(torch: Any, items: Sequence[Tokenized], pad: int) -> tuple[Any, Any, Any]:
    width = max(len(t.ids) for t in items)
    ids = torch.full((len(items), width), pad, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    for i, t in enumerate(items):
        n = len(t.ids)
        ids[i, :n] = torch.tensor(t.ids)
        mask[i, :n] = 1
        labels[i, t.n_prompt:n] = torch.tensor(t.ids[t.n_prompt:])
    return ids, mask, labels


def _token_logps(torch: Any, model: Any, ids: Any, mask: Any, labels: Any) -> Any:
    """Per sequence: the summed log-probability of its label tokens, and their count.

    The output layer is applied to the label positions only (a reply is a few
    tokens of a prompt of hundreds: the full logits would cost a fifth of the
    model's compute and most of its memory)."""
    target = labels[:, 1:]
    keep = target != -100
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = getattr(lm, "model", None), getattr(lm, "lm_head", None)
    if body is None or head is None:  # not a *ForCausalLM with .model / .lm_head
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (picked * keep).sum(-1), keep.sum(-1)
    hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    rows = keep.nonzero()[:, 0]
    logp = torch.log_softmax(head(hidden[keep]).float(), dim=-1)
    picked = logp.gather(-1, target[keep].unsqueeze(-1)).squeeze(-1)
    sums = torch.zeros(ids.shape[0], dtype=picked.dtype).index_add(0, rows, picked)
    return sums, keep.sum(-1)


def _groups(n: int, lengths: Sequence[int], batch: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (little padding), in random order."""
    order = sorted(range(n), key=lambda i: (lengths[i], rng.random()))
    chunks = [order[i:i + batch] for i in range(0, n, batch)]
    rng.shuffle(chunks)
    return chunks


@dataclass(slots=True)
class LoopResult:
    steps: int
    epochs: float
    losses: list[float]
    tokens: int
    train_seconds: float
    stopped: str  # "done", "steps", "time"


class _Schedule:
    """Linear warm-up, then linear decay to 10% of the rate at the horizon: the planned
    steps, or — under a time budget — the step the budget will end at (re-estimated every
    step, never past the plan: 903 planned, 24 done left the rate at its peak)."""

    def __init__(self, steps: int, warm: int) -> None:
        self.steps, self.warm, self.horizon = steps, warm, steps

    def rate(self, step: int) -> float:
        if step < self.warm:
            return float((step + 1) / (self.warm + 1))
        return float(max(0.1, 1.0 - 0.9 * (step - self.warm) / max(1, self.horizon - self.warm)))

    def budget(self, step: int, left: float, elapsed: float) -> None:
        if left < math.inf and elapsed > 0:
            self.horizon = min(self.steps, step + max(1, int(left * step / elapsed)))


def run_loop(model: Any, tokenizer: Any, data: Sequence[Any], *, objective: str,
             cfg: Any, report: Callable[[dict[str, Any]], None]) -> LoopResult:
    """Train ``model`` (a PEFT model) on tokenized ``data`` for the budget of ``cfg``."""
    import torch

    rng = random.Random(cfg.seed)
    pad = tokenizer.pad_token_id
    dpo = objective == "dpo"
    lengths = [len(d[0].ids) + len(d[1].ids) if dpo else len(d.ids) for d in data]
    per_epoch = math.ceil(len(data) / cfg.batch_size)
    total_micro = per_epoch * cfg.epochs
    steps = math.ceil(total_micro / cfg.grad_accum)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = min(cfg.warmup_steps, max(0, steps - 1))

    schedule = _Schedule(steps, warm)

    ref: dict[int, tuple[float, float]] = {}
    if dpo:
        ref = _reference_logps(torch, model, data, pad, cfg.batch_size)
    model.train()
    losses: list[float] = []
    tokens, step, micro, stopped = 0, 0, 0, "done"
    start = time.perf_counter()
    deadline = start + cfg.max_seconds if cfg.max_seconds else math.inf
    epoch = 0
    while step < steps:
        for group in _groups(len(data), lengths, cfg.batch_size, rng):
            loss, n = _loss(torch, model, [data[i] for i in group],
                            [ref[i] for i in group] if dpo else None, pad, cfg.dpo_beta)
            tokens += n
            (loss / cfg.grad_accum).backward()
            losses.append(float(loss.detach()))
            micro += 1
            if micro % cfg.grad_accum:
                continue
            for g in opt.param_groups:
                g["lr"] = cfg.learning_rate * schedule.rate(step)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            elapsed = time.perf_counter() - start
            eta = min(elapsed / step * (steps - step), max(0.0, deadline - start - elapsed))
            report({"step": step, "steps": steps, "loss": losses[-1],
                    "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
                    "elapsed": elapsed, "eta": eta, "lr": opt.param_groups[0]["lr"]})
            if step >= steps:
                stopped = "steps" if cfg.max_steps and step >= cfg.max_steps else "done"
                break
            now = time.perf_counter()
            if now >= deadline:
                stopped = "time"
                break
            schedule.budget(step, deadline - now, elapsed)
        epoch += 1
        if stopped == "time" or (epoch >= cfg.epochs and step >= steps):
            break
    seconds = time.perf_counter() - start
    return LoopResult(step, micro / max(1, per_epoch), losses, tokens, seconds, stopped)


def _loss(torch: Any, model: Any, items: Sequence[Any],
          refs: Sequence[tuple[float, float]] | None, pad: int, beta: float) -> tuple[Any, int]:
    """The loss of one micro-batch (SFT, or DPO when ``refs`` are given) and its tokens."""
    if refs is not None:
        return (_dpo_loss(torch, model, items, refs, pad, beta),
                sum(len(a.ids) + len(b.ids) for a, b in items))
    ids, mask, labels = _batch(torch, items, pad)
    total, count = _token_logps(torch, model, ids, mask, labels)
    return -total.sum() / count.sum().clamp(min=1), int(mask.sum())


def _reference_logps(torch: Any, model: Any, data: Sequence[Any], pad: int, batch: int,
                     ) -> dict[int, tuple[float, float]]:
    """Per pair: the starting policy's summed log-probabilities of (chosen, rejected) — the
    model before any step, its adapter (new: zero; or the starting one) enabled."""
    out: dict[int, tuple[float, float]] = {}
    model.eval()
    with torch.no_grad():
        for i in range(0, len(data), batch):
            chunk = data[i:i + batch]
            both = [t for pair in chunk for t in pair]
            ids, mask, labels = _batch(torch, both, pad)
            logps, _ = _token_logps(torch, model, ids, mask, labels)
            for j in range(len(chunk)):
                out[i + j] = (float(logps[2 * j]), float(logps[2 * j + 1]))
    return out


def _dpo_loss(torch: Any, model: Any, items: Sequence[tuple[Tokenized, Tokenized]],
              refs: Sequence[tuple[float, float]], pad: int, beta: float) -> Any:
    both = [t for pair in items for t in pair]
    ids, mask, labels = _batch(torch, both, pad)
    logps, _ = _token_logps(torch, model, ids, mask, labels)
    chosen, rejected = logps[0::2], logps[1::2]
    ref = torch.tensor(refs, dtype=logps.dtype)
    margin = (chosen - ref[:, 0]) - (rejected - ref[:, 1])
    return -torch.nn.functional.logsigmoid(beta * margin).mean()


def evaluate_loss(model: Any, tokenizer: Any, data: Sequence[Tokenized], batch: int) -> float:
    """Mean reply-token cross-entropy of ``data`` (no gradients)."""
    import torch

    if not data:
        return math.nan
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch):
            ids, mask, labels = _batch(torch, data[i:i + batch], tokenizer.pad_token_id)
            s, c = _token_logps(torch, model, ids, mask, labels)
            total -= float(s.sum())
            count += int(c.sum())
    model.train()
    return total / max(1, count)
