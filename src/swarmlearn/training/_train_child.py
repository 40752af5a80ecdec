"""The trainer's child process: ``python -m swarmlearn.training._train_child SPEC.json``.

SPEC is written by :class:`~swarmlearn.training.lora.LoraTrainer`: the config,
the base model, the data files and the (staging) output directory. The child
writes one JSON line per message on stdout — ``["start", …]``, ``["progress",
…]`` per optimizer step, then ``["ok", metrics]`` or ``["error", message]`` —
and its log on stderr. It dies with its parent (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import signal
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from swarmlearn.errors import SwarmlearnError, TrainingError

__all__ = ["main"]

logger = logging.getLogger("swarmlearn.training.child")


def _send(kind: str, data: Any) -> None:
    sys.__stdout__.write(json.dumps([kind, data]) + "\n")  # type: ignore[union-attr]
    sys.__stdout__.flush()  # type: ignore[union-attr]


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """Load, tokenize, train, evaluate, save; the metrics."""
    from swarmlearn._config import from_mapping
    from swarmlearn.training._base import check_base, load_base
    from swarmlearn.training.data import load_jsonl
    from swarmlearn.training.lora import LoraTrainConfig

    t0 = time.perf_counter()
    cfg = from_mapping(LoraTrainConfig, spec["config"], where="config")
    import torch

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    from swarmlearn.training import _loop

    train_path, out = Path(spec["train"]), Path(spec["output"])
    records = load_jsonl(train_path, cfg.objective)
    if not records:
        raise TrainingError(f"{train_path}: the data set has no records")
    cache = Path(spec["cache"]) if spec.get("cache") else None
    model, tokenizer = load_base(check_base(spec["base"]), cache=cache)
    load_s = time.perf_counter() - t0
    tok = _loop.tokenize_dpo if cfg.objective == "dpo" else _loop.tokenize_sft
    data, dropped = tok(tokenizer, records, cfg.max_seq_len)
    if not data:
        raise TrainingError(f"{train_path}: every record is longer than max_seq_len "
                            f"{cfg.max_seq_len} tokens")
    val_data: list[Any] = []
    if spec.get("val") and cfg.objective == "sft":
        val_data = _loop.tokenize_sft(tokenizer, load_jsonl(Path(spec["val"]), "sft"),
                                      cfg.max_seq_len)[0][:cfg.val_batches * cfg.batch_size]
    n_layers = int(model.config.num_hidden_layers)
    if any(i >= n_layers for i in cfg.layers):
        raise TrainingError(f"layers: the base model has {n_layers} layers, got "
                            f"{list(cfg.layers)}")
    model = get_peft_model(model, PeftLoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha,  # type: ignore[arg-type]  # a float works
        lora_dropout=cfg.dropout, target_modules=list(cfg.target_modules),
        layers_to_transform=list(cfg.layers) or None, bias="none", task_type="CAUSAL_LM"))
    if cfg.init_adapter:  # its shape is the config's (lora.LoraTrainer.train adopted it)
        from swarmlearn.training._init_adapter import load_weights

        load_weights(model, Path(cfg.init_adapter))
    _send("start", {"examples": len(data), "dropped": dropped, "load_s": load_s})
    t_val = time.perf_counter()
    val_before = _loop.evaluate_loss(model, tokenizer, val_data, cfg.batch_size)
    val_s = time.perf_counter() - t_val
    loop_cfg = cfg
    if cfg.max_seconds:  # the budget holds both validation passes, not training alone
        loop_cfg = replace(cfg, max_seconds=max(0.2 * cfg.max_seconds,
                                                cfg.max_seconds - 2 * val_s))
    result = _loop.run_loop(model, tokenizer, data, objective=cfg.objective, cfg=loop_cfg,
                            report=lambda p: _send("progress", p))
    val_after = _loop.evaluate_loss(model, tokenizer, val_data, cfg.batch_size)
    model.save_pretrained(str(out), safe_serialization=True)
    tail = result.losses[-min(10, len(result.losses)):] if result.losses else []
    metrics = {
        "objective": str(cfg.objective), "examples": len(data), "dropped_too_long": dropped,
        "val_examples": len(val_data), "steps": result.steps, "epochs": round(result.epochs, 3),
        "stopped": result.stopped, "first_loss": result.losses[0] if result.losses else None,
        "final_loss": sum(tail) / len(tail) if tail else None,
        "val_loss_before": _num(val_before), "val_loss": _num(val_after),
        "train_tokens": result.tokens, "train_seconds": result.train_seconds,
        "tokens_per_s": result.tokens / result.train_seconds if result.train_seconds else 0.0,
        "load_seconds": load_s, "val_seconds": val_s, "wall_seconds": time.perf_counter() - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": cfg.threads, "init_adapter": cfg.init_adapter or None,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.stdout = sys.stderr  # libraries that print must not mix with the messages
    try:
        spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        _send("ok", train(spec))
        return 0
    except BaseException as exc:  # the child's process boundary: report, then exit
        message = str(exc) if isinstance(exc, SwarmlearnError) else f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        with contextlib.suppress(OSError, ValueError):
            _send("error", " ".join(message.split())[:400])
        return 1


if __name__ == "__main__":
    sys.exit(main())
