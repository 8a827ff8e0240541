"""The memory planner against measurement: predicted peak vs measured peak on CPU.

Each case trains a randomly initialised Llama-style model (about 1M to 30M
parameters, a word-level tokenizer of a few thousand words) for three steps
with the real trainer (``train_sft``, ``train_reward_model``, ``train_dpo``,
``train_ppo``, ``train_group``), in a fresh Python process. Online cases
sample completions of exactly ``completion_len`` tokens (a random model
almost never samples the end token first) and score them with a length
function. Before training, the process warms up (one
forward, backward and AdamW step of a tiny model of the same family, so that
libraries and thread pools are loaded), resets the peak resident set size
(``/proc/self/clear_refs``) and reads the resident size as its baseline. The
peak is read from ``VmHWM`` when the trainer writes its first checkpoint, which
is after the last training step (checkpoint and model writing are not part of
the plan's peak).

Two measurements per case:

* live: glibc's mmap threshold is fixed at 128 KiB (``MALLOC_MMAP_THRESHOLD_``),
  so every tensor of 128 KiB or more is its own mapping, returned to the
  system when freed: the resident size follows the bytes of live tensors, the
  allocator's peak. The bound of +-20% applies to this column.
* as run: the allocator as the trainer sets it (``alignkit.train.allocator``:
  glibc keeps freed memory for reuse): what a plain run shows, with the
  allocator's retention on top.

    python benchmarks/planner_check.py                 # every case, Markdown table
    python benchmarks/planner_check.py --cases sft-1m  # some cases (comma-separated)

Linux only (reads ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
BOUND = 0.20
LIVE_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}
STEPS = 3

SIZES = {  # name: (hidden, layers, heads, kv heads, intermediate, vocabulary words)
    "1m": (128, 2, 4, 2, 344, 2000),
    "7m": (256, 4, 4, 2, 688, 8000),
    "30m": (512, 6, 8, 4, 1376, 12000),
}


@dataclass(frozen=True)
class Case:
    """One run: method, model size and settings (see ``PlanSettings`` for their meaning)."""

    name: str
    method: str
    size: str
    reference: str = "auto"
    lora_rank: int = 0
    precision: str = "fp32"
    batch_size: int = 4
    seq_len: int = 256
    checkpointing: bool = False
    samples: int = 4
    completion_len: int = 64
    critic: str = "shared"
    in_backward: bool = False


CASES = [
    Case("sft-1m", "sft", "1m", batch_size=8, seq_len=256),
    Case("sft-7m", "sft", "7m"),
    Case("sft-7m-lora", "sft", "7m", lora_rank=16),
    Case("sft-7m-bf16", "sft", "7m", precision="bf16"),
    Case("sft-7m-ckpt", "sft", "7m", checkpointing=True),
    Case("sft-7m-in-backward", "sft", "7m", in_backward=True),
    Case("sft-30m", "sft", "30m", batch_size=2),
    Case("rm-7m", "rm", "7m"),
    Case("rm-7m-lora", "rm", "7m", lora_rank=16),
    Case("dpo-7m-precomputed", "dpo", "7m", reference="precomputed"),
    Case("dpo-7m-copy", "dpo", "7m", reference="copy"),
    Case("dpo-7m-lora-adapter", "dpo", "7m", reference="adapter", lora_rank=16),
    Case("dpo-7m-lora-copy", "dpo", "7m", reference="copy", lora_rank=16),
    Case("dpo-7m-lora-adapter-bf16", "dpo", "7m", reference="adapter", lora_rank=16,
         precision="bf16"),
    Case("dpo-30m-precomputed", "dpo", "30m", reference="precomputed", batch_size=2),
    Case("dpo-30m-lora-adapter", "dpo", "30m", reference="adapter", lora_rank=16,
         batch_size=2),
    Case("dpo-30m-in-backward", "dpo", "30m", reference="precomputed", batch_size=2,
         in_backward=True),
    Case("dpo-30m-ckpt", "dpo", "30m", reference="precomputed", batch_size=2,
         checkpointing=True),
    Case("dpo-30m-ckpt-in-backward", "dpo", "30m", reference="precomputed", batch_size=2,
         checkpointing=True, in_backward=True),
    Case("simpo-7m", "simpo", "7m"),
    Case("simpo-7m-lora", "simpo", "7m", lora_rank=16),
    Case("kto-7m-precomputed", "kto", "7m", reference="precomputed"),
    Case("grpo-7m", "grpo", "7m", batch_size=4, seq_len=64),
    Case("grpo-7m-bf16", "grpo", "7m", precision="bf16", batch_size=4, seq_len=64),
    Case("grpo-7m-kl-copy", "grpo", "7m", reference="copy", batch_size=4, seq_len=64),
    Case("grpo-7m-lora-kl-adapter", "grpo", "7m", reference="adapter", lora_rank=16,
         batch_size=4, seq_len=64),
    Case("ppo-7m", "ppo", "7m", batch_size=8, seq_len=64),
    Case("ppo-7m-lora", "ppo", "7m", lora_rank=16, batch_size=8, seq_len=64),
    Case("ppo-7m-separate-critic", "ppo", "7m", batch_size=8, seq_len=64, critic="separate"),
]
CASES_BY_NAME = {case.name: case for case in CASES}
ONLINE = ("ppo", "rloo", "grpo")
REWARD_MODULE = "planner_check_reward"
REWARD_CODE = "def length(prompt, response):\n    return float(len(response.split()))\n"


# -- the worker: one case in this process ------------------------------------------------------

def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def _words(n: int) -> list[str]:
    return [f"w{i}" for i in range(n)]


def _rows(case: Case, words: list[str], n: int) -> list[dict]:
    """Rows long enough to be cut to ``seq_len``; rejected and undesirable rows are shorter.

    SFT rows all reach ``seq_len`` (batches without padding); a pair's rejected
    response is about a third as long, so every preference batch is padded.
    """
    rng = random.Random(0)

    def text(count: int) -> str:
        return " ".join(rng.choice(words) for _ in range(count))

    s = case.seq_len
    rows = []
    for i in range(n):
        prompt = text(s // 8)
        if case.method in ONLINE:  # seq_len is the prompt length: prompts are cut to it
            rows.append({"prompt": text(2 * s)})
        elif case.method == "sft":
            rows.append({"prompt": prompt, "completion": text(s)})
        elif case.method == "kto":
            rows.append({"prompt": prompt, "completion": text(s if i % 2 else s // 3),
                         "label": bool(i % 2)})
        else:
            rows.append({"prompt": prompt, "chosen": text(s), "rejected": text(s // 3)})
    return rows


def _model_config(case: Case, vocab: int) -> dict:
    hidden, layers, heads, kv, inter, _ = SIZES[case.size]
    return dict(model_type="llama", hidden_size=hidden, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv, intermediate_size=inter,
                max_position_embeddings=4 * case.seq_len, tie_word_embeddings=False,
                vocab_size=vocab)


def _online_config(case: Case, root: Path) -> dict:
    raw = {"output_dir": str(root / "run"),
           "model": {"init_from_config": str(root / "config.json"),
                     "tokenizer": str(root / "tokenizer"),
                     "gradient_checkpointing": case.checkpointing},
           "data": {"train": str(root / "train.jsonl"), "max_prompt_length": case.seq_len},
           "reward": {"source": f"fn:{REWARD_MODULE}:length"},
           "rollout": {"max_new_tokens": case.completion_len},
           "update": {"epochs": 1, "minibatches": 1},
           "train": {"prompts_per_iteration": case.batch_size, "max_iterations": STEPS,
                     "precision": case.precision, "save_every": 1000, "log_every": 1000},
           "peft": {"enabled": case.lora_rank > 0, "r": max(case.lora_rank, 1)}}
    if case.method == "ppo":
        raw["value"] = {"model": case.critic}
    else:
        raw["group"] = {"k": case.samples}
        raw["kl"] = {"coef": 0.0 if case.reference in ("auto", "none") else 0.05}
    return raw


def _training_config(case: Case, root: Path) -> dict:
    if case.method in ONLINE:
        return _online_config(case, root)
    raw = {"output_dir": str(root / "run"),
           "model": {"init_from_config": str(root / "config.json"),
                     "tokenizer": str(root / "tokenizer"),
                     "gradient_checkpointing": case.checkpointing},
           "data": {"train": str(root / "train.jsonl"), "max_length": case.seq_len},
           "train": {"batch_size": case.batch_size, "max_steps": STEPS,
                     "precision": case.precision, "save_every": 1000, "log_every": 1000},
           "peft": {"enabled": case.lora_rank > 0, "r": max(case.lora_rank, 1)}}
    if case.in_backward:
        raw["optim"] = {"update_in_backward": True, "max_grad_norm": 0}
    if case.method in ("dpo", "simpo", "kto"):
        raw["loss"] = {"type": case.method}
        raw["reference"] = {"mode": case.reference}
    return raw


def _trainer(method: str):
    if method == "ppo":
        from alignkit.train.ppo import train_ppo
        from alignkit.train.ppo_config import PPOConfig
        return PPOConfig, train_ppo
    if method in ("rloo", "grpo"):
        from functools import partial

        from alignkit.train import group_config
        from alignkit.train.group import train_group
        schema = group_config.GRPOConfig if method == "grpo" else group_config.RLOOConfig
        return schema, partial(train_group, method=method)
    if method == "sft":
        from alignkit.train.sft import train_sft
        from alignkit.train.sft_config import SFTConfig
        return SFTConfig, train_sft
    if method == "rm":
        from alignkit.train.reward import train_reward_model
        from alignkit.train.rm_config import RMConfig
        return RMConfig, train_reward_model
    from alignkit.train.dpo_config import DPOConfig
    from alignkit.train.preference import train_dpo
    return DPOConfig, train_dpo


def _warm_up(config: dict, root: Path, precision: str) -> None:
    """One step of a tiny model of the same family: loads libraries before the baseline."""
    import gc

    import torch

    from alignkit.models.load import init_causal_lm_from_config

    tiny = dict(config, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1, vocab_size=32)
    (root / "tiny.json").write_text(json.dumps(tiny))
    model = init_causal_lm_from_config(root / "tiny.json")
    optimizer = torch.optim.AdamW(model.parameters(), foreach=False)
    ids = torch.zeros(2, 8, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    logits.float().sum().backward()
    optimizer.step()
    del model, optimizer, logits
    gc.collect()


def measure(case: Case) -> dict:
    """Train ``case`` for three steps here; the peak RSS above the baseline, in MiB."""
    with tempfile.TemporaryDirectory(prefix="planner-check-") as scratch:
        return _measure_in(case, Path(scratch))


def _measure_in(case: Case, root: Path) -> dict:
    """:func:`measure` with its files (model, data, run directory) under ``root``."""
    from alignkit.config import dump_config, validate_config
    from alignkit.data.tokenizer_build import word_level_tokenizer
    from alignkit.rundir import RunDir
    from alignkit.train.engine import Engine

    words = _words(SIZES[case.size][5])
    tokenizer = word_level_tokenizer(words)
    tokenizer.save_pretrained(root / "tokenizer")
    config = _model_config(case, len(tokenizer))
    (root / "config.json").write_text(json.dumps(config))
    rows = _rows(case, words, case.batch_size * STEPS)
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / f"{REWARD_MODULE}.py").write_text(REWARD_CODE)
    sys.path.insert(0, str(root))
    schema, train = _trainer(case.method)
    cfg = validate_config(schema, _training_config(case, root))
    _warm_up(config, root, case.precision)
    run = RunDir.create(cfg.output_dir, dump_config(cfg))
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from the current size
    baseline = _status_kib("VmRSS")
    peaks: list[int] = []
    checkpoint = Engine.checkpoint

    def checkpoint_after_peak(engine) -> None:
        peaks.append(_status_kib("VmHWM"))
        checkpoint(engine)

    Engine.checkpoint = checkpoint_after_peak
    start = time.perf_counter()
    train(cfg, run)
    return {"peak_mib": (peaks[0] - baseline) / 1024, "baseline_mib": baseline / 1024,
            "seconds": time.perf_counter() - start, "vocab": len(tokenizer)}


# -- the driver: predictions and fresh processes --------------------------------------------

def predict(case: Case, vocab: int):
    """The plan of ``case`` on this machine (the peak the run allocates, runtime excluded)."""
    from alignkit.plan.architecture import describe_model
    from alignkit.plan.catalogue import cpu_device
    from alignkit.plan.planner import make_plan
    from alignkit.plan.settings import PlanSettings

    head = "reward" if case.method == "rm" else "causal_lm"
    shape = describe_model(case.name, _model_config(case, vocab), head)
    settings = PlanSettings(case.method, reference=case.reference, dtype="fp32",
                            precision=case.precision, lora_rank=case.lora_rank,
                            batch_size=case.batch_size, seq_len=case.seq_len,
                            prompt_len=case.seq_len, completion_len=case.completion_len,
                            samples=case.samples, gradient_checkpointing=case.checkpointing,
                            padded=case.method not in ("sft", *ONLINE), reward_model=False,
                            separate_critic=case.critic == "separate",
                            update_in_backward=case.in_backward)
    return make_plan(shape, settings, cpu_device(), advise=False)


def run_case(case: Case, env: dict[str, str]) -> dict:
    """Measure ``case`` in a fresh interpreter with ``env`` added to the environment."""
    command = [sys.executable, __file__, "--worker", case.name]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env},
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {case.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(case: Case, *, default_allocator: bool = True) -> dict:
    """Predicted and measured peaks of ``case`` (MiB) and their ratios."""
    live = run_case(case, LIVE_ENV)
    plan = predict(case, live["vocab"])
    row = {"case": case.name, "params": plan.model.params.total, "phase": plan.memory.peak_phase,
           "predicted_mib": plan.peak / MIB, "live_mib": live["peak_mib"],
           "seconds": live["seconds"]}
    row["live_ratio"] = row["predicted_mib"] / row["live_mib"]
    if default_allocator:
        row["default_mib"] = run_case(case, {})["peak_mib"]
        row["default_ratio"] = row["predicted_mib"] / row["default_mib"]
    return row


TABLE_HEAD = ("| case | params | peak phase | predicted MiB | live MiB | predicted / live "
              "| as-run MiB | predicted / as run |\n"
              "|---|---:|---|---:|---:|---:|---:|---:|")


def table_row(r: dict) -> str:
    """One Markdown row of :func:`compare`'s result."""
    mark = "" if abs(r["live_ratio"] - 1) <= BOUND else " **out of bound**"
    default = (f"{r['default_mib']:.0f} | {r['default_ratio']:.2f}" if "default_mib" in r
               else "- | -")
    return (f"| {r['case']} | {r['params'] / 1e6:.1f}M | {r['phase']} | "
            f"{r['predicted_mib']:.0f} | {r['live_mib']:.0f} | {r['live_ratio']:.2f}{mark} | "
            f"{default} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=None, help="comma-separated case names (default all)")
    parser.add_argument("--no-default", action="store_true",
                        help="measure with the fixed mmap threshold only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    by_name = CASES_BY_NAME
    if args.worker:
        print(json.dumps(measure(by_name[args.worker])))
        return
    names = args.cases.split(",") if args.cases else list(by_name)
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d')}\n")
    print(TABLE_HEAD, flush=True)
    rows = []
    for name in names:
        rows.append(compare(by_name[name], default_allocator=not args.no_default))
        print(table_row(rows[-1]), flush=True)
    worst = max(abs(r["live_ratio"] - 1) for r in rows)
    print(f"\nlargest deviation from live: {worst:.1%} (bound {BOUND:.0%}); "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
