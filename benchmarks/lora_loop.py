"""The weights level end to end: from a store with a teacher's episodes to a gated adapter
live on a llama.cpp server — timed stage by stage — and our trainer beside TRL's
``SFTTrainer`` on the same data, model and LoRA config, in the same run.

    .venv/bin/python benchmarks/lora_loop.py                       # 200 episodes, 30 gate tasks
    .venv/bin/python benchmarks/lora_loop.py --gate-tasks 10 --max-seconds 300 --layers 20-29
    .venv/bin/python benchmarks/lora_loop.py --report runs/bench/lora_loop.json

Stages (what `swarmlearn lora train --gate` and the daemon's LoRA level run):

1. *record* (not part of the loop's time): the learning rule swarm (``adaptive``) works
   ``--episodes`` tasks of the scenario into a fresh SQLite store — the teacher.
2. *produce*: :class:`~swarmlearn.training.kind.LoraAdapterKind` builds the SFT data
   set from the store (every decision of a successful episode replayed as the prompt an
   LLM worker is sent), trains a LoRA in a child process within ``--max-seconds``, exports
   it to GGUF, checks it against the base and registers the version.
3. *gate*: LLM workers with the adapter and with the base model on the same
   ``--gate-tasks`` held-out task seeds (never in the data), the lifecycle's paired rule.
4. *apply*: a live llama.cpp server (base model) gets the promoted adapter at scale 1
   with no restart of its own (``load_lora`` + ``set_lora_scales``); a rejected one is
   not applied and the live server stays on the base model.

The loop's time is produce + gate + apply (the issue's "≤ 10 minutes with 200 training
episodes"). The trainer comparison (``--compare-examples``, default 64) trains ours and
TRL's ``SFTTrainer`` for one pass over the *same* examples of the data set (same base
directory, LoRA r/alpha/targets/layers, batch, learning rate, max length; loss on the
reply only on both sides: TRL's prompt–completion format), each in its own child process,
and divides the same token count (prompt + reply tokens of those examples) by each side's
training time (model loading excluded on both).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "bench" / "lora_loop.json"


def _layers(spec: str) -> tuple[int, ...]:
    if not spec:
        return ()
    if "-" in spec:
        lo, hi = (int(x) for x in spec.split("-", 1))
        return tuple(range(lo, hi + 1))
    return tuple(int(x) for x in spec.split(","))


def _say(text: str) -> None:
    print(text, flush=True)


# -- the TRL side (a child process) -------------------------------------------------------
def trl_child(spec_path: str) -> None:
    """Train with TRL's SFTTrainer on ``spec['train']``; print the result as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from swarmlearn.training._base import _clear_quantization

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(spec["base_dir"])
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(spec["base_dir"], dtype=torch.float32)
    _clear_quantization(model)
    rows = [json.loads(line) for line in Path(spec["train"]).read_text().splitlines() if line]
    data = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]}
                              for r in rows])
    lora = LoraConfig(r=spec["rank"], lora_alpha=spec["alpha"], lora_dropout=0.0,
                      target_modules=spec["targets"], bias="none", task_type="CAUSAL_LM",
                      layers_to_transform=spec["layers"] or None)
    args = SFTConfig(output_dir=spec["output"], per_device_train_batch_size=spec["batch"],
                     gradient_accumulation_steps=1, learning_rate=spec["lr"],
                     num_train_epochs=1, max_length=spec["max_len"], warmup_steps=0,
                     lr_scheduler_type="linear", logging_steps=10 ** 6, save_strategy="no",
                     report_to="none", use_cpu=True, dataloader_num_workers=0,
                     completion_only_loss=True, seed=spec["seed"], disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data,
                         processing_class=tokenizer, peft_config=lora)
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - t1
    print(json.dumps({"train_seconds": seconds, "load_seconds": load_s,
                      "steps": int(out.global_step), "loss": float(out.training_loss)}))


def _tokens(base_dir: Path, train: Path, max_len: int) -> int:
    from transformers import AutoTokenizer

    from swarmlearn.training import _loop
    from swarmlearn.training.data import load_jsonl

    tok = AutoTokenizer.from_pretrained(base_dir)
    items, dropped = _loop.tokenize_sft(tok, load_jsonl(train), max_len)
    if dropped:
        raise SystemExit(f"{dropped} comparison examples exceed max_len {max_len}")
    return sum(len(t.ids) for t in items)


def compare(base: Path, cache: Path, train: Path, args: argparse.Namespace,
            work: Path) -> dict[str, Any]:
    """Ours and TRL for one pass over the same examples; same-run tokens/s and ratio."""
    from swarmlearn.training._base import check_base
    from swarmlearn.training.lora import DEFAULT_TARGETS, LoraTrainConfig, LoraTrainer

    rows = train.read_text().splitlines()[:args.compare_examples]
    subset = work / "compare.jsonl"
    subset.write_text("\n".join(rows) + "\n")
    b = check_base(base)
    base_dir = cache / f"{b.path.stem}-{b.fingerprint()[:16]}"
    if not (base_dir / ".complete").is_file():
        raise SystemExit(f"no dequantized base in {base_dir}: run the loop first")
    tokens = _tokens(base_dir, subset, args.max_len)
    layers = _layers(args.layers)
    results: dict[str, Any] = {"examples": len(rows), "tokens": tokens, "rounds": []}
    for r in range(args.compare_rounds):
        cfg = LoraTrainConfig(rank=args.rank, alpha=args.alpha, layers=layers,
                              batch_size=args.batch, learning_rate=args.lr, warmup_steps=0,
                              max_seq_len=args.max_len, threads=args.threads, val_batches=0,
                              seed=r)
        ours = LoraTrainer(cfg, base_cache=cache).train(base=base, train=subset,
                                                       output=work / f"ours-{r}")
        spec = {"base_dir": str(base_dir), "train": str(subset), "rank": args.rank,
                "alpha": args.alpha, "targets": list(DEFAULT_TARGETS), "layers": list(layers),
                "batch": args.batch, "lr": args.lr, "max_len": args.max_len,
                "threads": args.threads, "seed": r, "output": str(work / f"trl-{r}")}
        spec_path = work / f"trl-{r}.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TOKENIZERS_PARALLELISM": "false"}
        done = subprocess.run([sys.executable, __file__, "--trl-child", str(spec_path)],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"TRL failed:\n{done.stderr[-3000:]}")
        trl = json.loads(done.stdout.strip().splitlines()[-1])
        o_s, t_s = float(ours.metrics["train_seconds"]), float(trl["train_seconds"])
        row = {"round": r, "ours_seconds": o_s, "trl_seconds": t_s,
               "ours_tokens_per_s": tokens / o_s, "trl_tokens_per_s": tokens / t_s,
               "ratio": t_s / o_s, "ours_steps": ours.metrics["steps"], "trl_steps": trl["steps"],
               "ours_loss": ours.metrics["final_loss"], "trl_loss": trl["loss"]}
        results["rounds"].append(row)
        _say(f"  round {r}: ours {row['ours_tokens_per_s']:.0f} tokens/s "
             f"({o_s:.1f} s, {row['ours_steps']} steps), TRL SFTTrainer "
             f"{row['trl_tokens_per_s']:.0f} tokens/s ({t_s:.1f} s, {row['trl_steps']} "
             f"steps): ours/TRL {row['ratio']:.2f}x")
    return results


# -- the loop -------------------------------------------------------------------------------
def loop(args: argparse.Namespace) -> dict[str, Any]:
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.lifecycle import (
        GateConfig,
        Lifecycle,
        LifecycleConfig,
        ProduceContext,
        run_gate,
    )
    from swarmlearn.serving import LlamaServer, LlamaServerConfig, default_model_path
    from swarmlearn.session import run_session
    from swarmlearn.store import SqlStore
    from swarmlearn.training.data import DatasetConfig
    from swarmlearn.training.kind import LoraAdapterKind
    from swarmlearn.training.lora import LoraTrainConfig
    from swarmlearn.types import OutcomeKind

    work = Path(args.work or tempfile.mkdtemp(prefix="lora-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    base = Path(args.base) if args.base else default_model_path()
    root = work / "lora"  # --work DIR again reuses its dequantized base (root/base-cache)
    sc = load_scenario(args.scenario, variant=args.variant)
    store = SqlStore(f"sqlite:///{work}/store.db")
    report: dict[str, Any] = {"scenario": sc.label, "episodes": args.episodes,
                              "gate_tasks": args.gate_tasks, "base": str(base),
                              "work": str(work), "stages": {}}
    stages = report["stages"]

    def progress(p: Any) -> None:
        if p.step == 1 or p.step % 10 == 0 or p.step == p.steps:
            _say(f"  step {p.step}/{p.steps}  loss {p.loss:.3f}  {p.tokens_per_s:.0f} tokens/s"
                 f"  ETA {p.eta:.0f} s")

    def task(side: str, r: Any) -> None:
        _say(f"  {side}: seed {r.task} {'solved' if r.solved else 'failed'} "
             f"({r.cost:.0f} actions)")

    train = LoraTrainConfig(rank=args.rank, alpha=args.alpha, layers=_layers(args.layers),
                            batch_size=args.batch, learning_rate=args.lr,
                            max_seq_len=args.max_len, max_seconds=args.max_seconds,
                            epochs=args.epochs, threads=args.threads)
    kind = LoraAdapterKind(sc, store, base=base, root=root, train=train,
                           data=DatasetConfig(max_examples=args.max_examples),
                           eval_threads=args.eval_threads, on_progress=progress, on_task=task)
    life = Lifecycle(store, kind.name, kind.scope,
                     LifecycleConfig(gate=GateConfig(min_tasks=min(args.gate_tasks, 10))))
    if args.reuse:  # the --work directory of an earlier run: its store and newest version
        from swarmlearn.lifecycle import Produced

        old = life.versions(payload=True)[-1]  # gated again as a new candidate, same files
        version = life.register(Produced(payload=old.payload, summary=dict(old.meta),
                                         lineage=old.lineage))
        _say(f"reuse: {old.label} of {work} as {version.label} (record and produce timed "
             f"in that run)")
    else:
        t = time.perf_counter()
        teacher = run_session(sc.override(workers={"policy": "adaptive"}), episodes=args.episodes,
                              seed=args.seed, store=store)
        solved = sum(e.outcome.kind is OutcomeKind.SUCCESS for e in teacher.episodes)
        stages["record"] = time.perf_counter() - t
        _say(f"record: the learning rule swarm solved {solved}/{len(teacher.episodes)} tasks "
             f"into the store ({stages['record']:.1f} s)")

        t0 = time.perf_counter()
        _say(f"produce: data set, training (≤ {args.max_seconds:.0f} s), GGUF export")
        version = life.register(kind.produce(ProduceContext(store=store, scope=kind.scope,
                                                            champion=None)))
        stages["produce"] = time.perf_counter() - t0
        m = version.lineage.metrics
        report["training"] = {k: m.get(k) for k in (
            "examples", "steps", "epochs", "first_loss", "final_loss", "val_loss_before",
            "val_loss", "train_tokens", "train_seconds", "tokens_per_s", "load_seconds",
            "peak_rss_mb", "stopped")}
        _say(f"produce: {version.label}, {m['examples']} examples, {m['steps']} steps, loss "
             f"{m['first_loss']:.3f} → {m['final_loss']:.3f}, val {m['val_loss_before']} → "
             f"{m['val_loss']}, {m['tokens_per_s']:.0f} tokens/s ({stages['produce']:.0f} s)")

    t1 = time.perf_counter()
    _say(f"gate: {args.gate_tasks} held-out tasks per side")
    run = run_gate(life, kind, version, tasks=args.gate_tasks)
    stages["gate"] = time.perf_counter() - t1
    d = run.decision
    report["gate"] = {"promote": d.promote, "reason": d.reason,
                      "base": [d.champion.successes, d.champion.tasks,
                               d.champion.cost_per_solve],
                      "adapter": [d.challenger.successes, d.challenger.tasks,
                                  d.challenger.cost_per_solve]}
    _say(f"gate: base model {d.champion.successes}/{d.champion.tasks}, adapter "
         f"{d.challenger.successes}/{d.challenger.tasks}: "
         f"{'PROMOTE' if d.promote else 'reject'} — {d.reason} ({stages['gate']:.0f} s)")

    # the teacher on the same held-out tasks: the learning rule swarm the data came from,
    # one session over the gate's seeds (it learns within the session, as while recording)
    t_teacher = time.perf_counter()
    teacher_eval = run_session(sc.override(workers={"policy": "adaptive"}),
                               seeds=list(d.tasks), worker_seed=args.seed, store=None)
    taught = sum(e.outcome.kind is OutcomeKind.SUCCESS for e in teacher_eval.episodes)
    report["teacher_on_gate_tasks"] = [taught, len(teacher_eval.episodes),
                                       sum(e.actions for e in teacher_eval.episodes)
                                       / max(1, taught)]
    _say(f"teacher (adaptive rule swarm, one session) on the gate's tasks: "
         f"{taught}/{len(teacher_eval.episodes)} solved ({time.perf_counter() - t_teacher:.1f} s)")

    t2 = time.perf_counter()
    with LlamaServer(LlamaServerConfig(model=base, parallel=1,
                                      threads=args.eval_threads)) as live:
        t_apply = time.perf_counter()
        if d.promote:
            kind.server = live
            kind.apply(life.champion())
            scales = live.lora_scales()
            report["live"] = {"adapters": [[a.id, str(a.path), a.scale]
                                           for a in live.lora_adapters()],
                              "scales": str(scales)}
            _say(f"apply: live server now runs {version.label} at scale 1 "
                 f"({time.perf_counter() - t_apply:.1f} s)")
        else:
            report["live"] = {"adapters": [], "scales": "base model"}
            _say("apply: rejected, not applied: the live server stays on the base model")
        stages["apply"] = time.perf_counter() - t_apply
    stages["server_start"] = t_apply - t2
    report["loop_seconds"] = stages.get("produce", math.nan) + stages["gate"] + stages["apply"]
    _say(f"loop (produce + gate + apply): {report['loop_seconds']:.0f} s "
         f"(target ≤ 600 s with 200 episodes)")

    if args.compare_examples:
        _say(f"trainer comparison: {args.compare_examples} examples, one pass, "
             f"{args.compare_rounds} round(s)")
        report["compare"] = compare(base, root / "base-cache", Path(_train_file(root, sc)),
                                    args, work)
    return report


def _train_file(root: Path, sc: Any) -> str:
    from swarmlearn.training.adapters import AdapterDir

    sets = sorted(AdapterDir(root).datasets_dir(sc.label).glob("*/train.jsonl"))
    return str(sets[-1])


def show(report: dict[str, Any]) -> None:
    s = report["stages"]
    _say(f"\n{report['scenario']}: {report['episodes']} teacher episodes, "
         f"{report['gate_tasks']} gate tasks per side")
    _say("| stage | seconds |\n|---|---|")
    for k in ("record", "produce", "gate", "apply"):
        if k in s:
            _say(f"| {k} | {s[k]:.1f} |")
    _say(f"| **loop** (produce + gate + apply) | **{report['loop_seconds']:.1f}** |")
    g = report.get("gate")
    if g:
        _say(f"gate: base {g['base'][0]}/{g['base'][1]} ({g['base'][2]:.1f} actions per solve), "
             f"adapter {g['adapter'][0]}/"
             f"{g['adapter'][1]} — {'promoted' if g['promote'] else 'rejected'}: {g['reason']}")
        b, a = g["base"][0] / max(1, g["base"][1]), g["adapter"][0] / max(1, g["adapter"][1])
        _say(f"success: base {100 * b:.0f}%, adapter {100 * a:.0f}%: "
             f"{100 * (a - b):+.0f} points (target ≥ +30)")
    t = report.get("teacher_on_gate_tasks")
    if t:
        _say(f"teacher (adaptive rule swarm) on the same tasks: {t[0]}/{t[1]} solved, "
             f"{t[2]:.1f} actions per solved task")
    c = report.get("compare")
    if c:
        import statistics

        ratios = [r["ratio"] for r in c["rounds"]]
        ours = statistics.median(r["ours_tokens_per_s"] for r in c["rounds"])
        trl = statistics.median(r["trl_tokens_per_s"] for r in c["rounds"])
        _say(f"trainer, {c['examples']} examples ({c['tokens']} tokens), median of "
             f"{len(ratios)}: ours {ours:.0f} tokens/s, TRL SFTTrainer {trl:.0f} tokens/s, "
             f"ours/TRL {statistics.median(ratios):.2f}x (per round: "
             f"{', '.join(f'{x:.2f}' for x in ratios)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="troubleshooting")
    p.add_argument("--variant", default="heldout")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--gate-tasks", type=int, default=30)
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.add_argument("--max-examples", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--layers", default="")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--max-len", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-threads", type=int, default=None,
                   help="llama.cpp threads of the gate's and the live server (default: half "
                        "the CPUs)")
    p.add_argument("--base", default="")
    p.add_argument("--work", default="")
    p.add_argument("--compare-examples", type=int, default=64)
    p.add_argument("--compare-rounds", type=int, default=2)
    p.add_argument("--reuse", action="store_true",
                   help="gate and apply the newest version in --work (skip record/produce)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--report", default="", help="reprint a saved result")
    p.add_argument("--trl-child", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.trl_child:
        trl_child(args.trl_child)
        return
    if args.report:
        show(json.loads(Path(args.report).read_text()))
        return
    report = loop(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    show(report)
    _say(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
