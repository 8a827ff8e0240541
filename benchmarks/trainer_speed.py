"""alignkit's SFT and DPO steps against TRL's ``SFTTrainer`` and ``DPOTrainer``.

Both sides train the same randomly initialised Llama (saved once with
``save_pretrained``), with the same byte-level BPE tokenizer (saved once; TRL
loads it with ``AutoTokenizer``), on the same synthetic conversations, with the
same batch, optimiser and precision; no gradient accumulation, no evaluation,
no checkpoints during the timed steps. Every measurement is a fresh process:
``ours_side.py`` with this Python, ``trl_side.py`` with the TRL environment's
(``bash benchmarks/setup_trl.sh`` creates it). Repeats are interleaved (ours,
TRL, ours, TRL, ...) so both sides see the same machine load, and the tables
give medians over repeats, with ratios ours / TRL measured in this run.

Seconds per step are steady-state: the mean interval between step-end
timestamps after ``--warmup`` steps. Peak memory is the peak RSS minus the RSS
after imports, per run. The 1-minute load average is recorded at the start and
end of each run.

    bash benchmarks/setup_trl.sh
    .venv/bin/python benchmarks/trainer_speed.py --repeats 3 --steps 8 --warmup 2

Prints Markdown tables; ``--json FILE`` also writes every run's raw result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TRL_PYTHON = HERE / ".envs" / "trl" / "bin" / "python"
SIDES = ("alignkit", "trl")
SIDE_SCRIPTS = {"alignkit": "ours_side.py", "trl": "trl_side.py"}

SMALL_LLAMA = {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
               "num_attention_heads": 4, "num_key_value_heads": 4}
"""The ~3M-parameter speed model."""
LARGE_LLAMA = {"hidden_size": 1024, "intermediate_size": 2752, "num_hidden_layers": 8,
               "num_attention_heads": 16, "num_key_value_heads": 16}
"""The ~100M-parameter memory model, where weights, gradients and Adam states dominate."""
VOCAB_SIZE = 1024
PROMPT_SHARE = 0.2
"""Share of each sequence's tokens in the prompt; the rest is the response."""
OPTIMISER = {"lr": 1e-6, "beta": 0.1, "seed": 0, "max_length": 1024, "max_grad_norm": 1.0}
MEMORY_MODES = {
    "default": {},
    # Both sides recompute activations (TRL's own default) and do not clip; ours also applies
    # each gradient during backward and frees it.
    "lean": {"gradient_checkpointing": True, "max_grad_norm": 0.0, "update_in_backward": True},
}
"""Settings of the memory runs; ``update_in_backward`` only reaches alignkit's side."""


# -- assets: tokenizer, model, data -------------------------------------------------------

def synthetic_words(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct lower-case pseudo-words of 2 to 7 letters."""
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice("abcdefghijklmnoprstuvw") for _ in range(rng.randint(2, 7))))
    return sorted(words)


def sentence(words: list[str], length: int, rng: random.Random) -> str:
    return " ".join(rng.choice(words) for _ in range(length))


def build_tokenizer(out_dir: Path) -> Path:
    """Train a 1,024-token byte-level BPE on synthetic text and save it."""
    from alignkit.data.tokenizer_build import train_tokenizer

    rng = random.Random(0)
    words = synthetic_words(600, rng)
    tokenizer = train_tokenizer([sentence(words, 60, rng) for _ in range(2000)], VOCAB_SIZE)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "words.json").write_text(json.dumps(words))
    return out_dir


def build_model(out_dir: Path, tokenizer_dir: Path, shape: dict, seed: int = 0) -> dict:
    """Initialise a Llama of ``shape`` at random, save it (with the tokenizer); describe it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=1024,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **shape)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    embedding = model.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters())
    # The input embedding is a lookup, not a matmul: it costs no FLOPs per token.
    return {"dir": str(out_dir), "params": total, "matmul_params": total - embedding, **shape}


def build_data(out_dir: Path, tokenizer_dir: Path, *, rows: int, seq_tokens: int) -> dict:
    """Conversational DPO pairs and SFT prompt/completion rows of about ``seq_tokens`` tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    words = json.loads((tokenizer_dir / "words.json").read_text())
    rng = random.Random(1)
    probe = sentence(words, 400, rng)
    tokens_per_word = len(tokenizer(probe, add_special_tokens=False)["input_ids"]) / 400
    prompt_words = max(1, round(seq_tokens * PROMPT_SHARE / tokens_per_word))
    response_words = max(1, round(seq_tokens * (1 - PROMPT_SHARE) / tokens_per_word))
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs, sft = [], []
    for _ in range(rows):
        prompt = [{"role": "user", "content": sentence(words, prompt_words, rng)}]
        chosen, rejected = (sentence(words, response_words, rng) for _ in range(2))
        pairs.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                      "rejected": [{"role": "assistant", "content": rejected}]})
        sft.append({"prompt": prompt, "completion": [{"role": "assistant", "content": chosen}]})
    paths = {"dpo": out_dir / "pairs.jsonl", "sft": out_dir / "sft.jsonl"}
    for task, records in (("dpo", pairs), ("sft", sft)):
        paths[task].write_text("".join(json.dumps(r) + "\n" for r in records))
    return {task: str(path) for task, path in paths.items()}


# -- runs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Runner:
    """How to start each side's process."""

    pythons: dict[str, str]
    timeout: float
    threads: int | None = None
    gradient_checkpointing: bool = False


def run_side(runner: Runner, side: str, spec: dict, work: Path) -> dict:
    """One measurement in a fresh process; its result, or ``{"error": ...}``."""
    work.mkdir(parents=True, exist_ok=True)
    spec = dict(spec, work_dir=str(work))
    spec_path, result_path = work / "spec.json", work / "result.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_DISABLED="true",
               HF_DATASETS_CACHE=str(work / "hf_cache"))
    if runner.threads:
        # torch reads these at start-up; both sides get the same intra-op thread count.
        env.update(OMP_NUM_THREADS=str(runner.threads), MKL_NUM_THREADS=str(runner.threads))
    command = [runner.pythons[side], str(HERE / SIDE_SCRIPTS[side]), str(spec_path),
               str(result_path)]
    with open(work / "log.txt", "w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  timeout=runner.timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"side": side, "error": f"timed out after {runner.timeout:.0f} s"}
    if done.returncode != 0 or not result_path.is_file():
        tail = (work / "log.txt").read_text()[-1500:]
        print(f"[{side}] run failed (exit {done.returncode}); log tail:\n{tail}",
              file=sys.stderr)
        return {"side": side, "error": f"exit {done.returncode}", "log": str(work / "log.txt")}
    return json.loads(result_path.read_text())


def run_matrix(runner: Runner, work: Path, model: dict, data: dict, *, tasks: list[str],
               precisions: list[str], repeats: int, batch: int, steps: int,
               modes: tuple[str, ...] = ("default",)) -> list[dict]:
    """Every (task, precision, mode), ``repeats`` times per side, ours and TRL alternating."""
    results = []
    for task in tasks:
        for precision in precisions:
            for mode in modes:
                spec = {"task": task, "precision": precision, "model_dir": model["dir"],
                        "data_path": data[task], "batch_size": batch, "steps": steps,
                        "gradient_checkpointing": runner.gradient_checkpointing, **OPTIMISER,
                        **MEMORY_MODES[mode]}
                for repeat in range(repeats):
                    for side in SIDES:
                        name = f"{task}-{precision}-{mode}-{side}-{repeat}"
                        print(f"  running {name} ...", file=sys.stderr, flush=True)
                        result = run_side(runner, side, spec, work / name)
                        results.append(dict(result, task=task, precision=precision, mode=mode,
                                            side=side, repeat=repeat))
    return results


# -- figures ------------------------------------------------------------------------------

def steady_seconds(result: dict, warmup: int) -> float | None:
    """Mean seconds per step after ``warmup`` steps, from the step-end timestamps."""
    times = result.get("step_end_times") or []
    if len(times) <= warmup:
        return None
    return (times[-1] - times[warmup - 1]) / (len(times) - warmup)


def with_reference(result: dict, warmup: int) -> float | None:
    """Steady seconds per step plus the one-off reference pass spread over all the run's steps.

    The precomputed pass scores exactly the examples the run trains on, so its
    cost per step is its time divided by the number of steps.
    """
    steady = steady_seconds(result, warmup)
    extra = result.get("reference_precompute_s") or 0.0
    steps = len(result.get("step_end_times") or [])
    return None if steady is None else steady + extra / steps


def median_of(results: list[dict], value) -> float | None:
    values = [v for v in (value(r) for r in results if "error" not in r) if v is not None]
    return statistics.median(values) if values else None


def load_range(results: list[dict]) -> str:
    loads = [load[0] for r in results if "error" not in r
             for load in (r["load_start"], r["load_end"])]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"


def fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def speed_rows(results: list[dict], model: dict, warmup: int, peak_gflops: float) -> list[str]:
    """One table row per (task, precision): seconds per step, ratios, FLOP floor share."""
    rows = []
    for task, precision in dict.fromkeys((r["task"], r["precision"]) for r in results):
        group = [r for r in results if (r["task"], r["precision"]) == (task, precision)]
        ours = [r for r in group if r["side"] == "alignkit"]
        trl = [r for r in group if r["side"] == "trl"]
        ours_s = median_of(ours, lambda r: steady_seconds(r, warmup))
        ours_ref_s = median_of(ours, lambda r: with_reference(r, warmup))
        trl_s = median_of(trl, lambda r: steady_seconds(r, warmup))
        ref_s = median_of(ours, lambda r: r.get("reference_precompute_s"))
        tokens = median_of(ours, lambda r: statistics.median(r["tokens_per_step"][1:] or [0]))
        # The step's work: 6·P·T for SFT; DPO adds the reference forward pass, 2·P·T.
        flops = (8 if task == "dpo" else 6) * model["matmul_params"] * (tokens or 0)
        floor_s = flops / (peak_gflops * 1e9)
        ours_total = ours_ref_s if task == "dpo" else ours_s
        rows.append(" | ".join([
            task, precision, fmt(tokens, "{:.0f}"), fmt(ours_s), fmt(ref_s, "{:.2f}"),
            fmt(ours_ref_s if task == "dpo" else None), fmt(trl_s),
            fmt(ratio(trl_s, ours_s), "{:.2f}x"),
            fmt(ratio(trl_s, ours_ref_s) if task == "dpo" else None, "{:.2f}x"),
            fmt(floor_s), fmt(ratio(floor_s, ours_total), "{:.0%}"),
            fmt(ratio(floor_s, trl_s), "{:.0%}"), load_range(group)]))
    return rows


def speed_table(results: list[dict], model: dict, warmup: int, peak_gflops: float) -> str:
    head = ("task | precision | tokens/step | ours s/step | ours ref pass s | "
            "ours s/step incl. ref | TRL s/step | speed-up (TRL/ours) | "
            "speed-up incl. ref | floor s/step | ours % of floor | TRL % of floor | load")
    return "\n".join(["| " + row + " |" for row in
                      [head, " | ".join(["---"] * 13), *speed_rows(results, model, warmup,
                                                                     peak_gflops)]])


def above_baseline(result: dict, key: str) -> float | None:
    return None if result.get(key) is None else result[key] - result["rss_after_imports_mib"]


def memory_table(results: list[dict]) -> str:
    """Peak RSS above the after-imports baseline, per precision and mode, medians over repeats."""
    lines = ["| precision | mode | ours MiB (training) | ours MiB (incl. saving) | TRL MiB | "
             "ratio ours/TRL | ours baseline MiB | TRL baseline MiB | load |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for precision, mode in dict.fromkeys((r["precision"], r["mode"]) for r in results):
        group = [r for r in results if (r["precision"], r["mode"]) == (precision, mode)]
        ours = [r for r in group if r["side"] == "alignkit"]
        trl = [r for r in group if r["side"] == "trl"]
        ours_mib = median_of(ours, lambda r: above_baseline(r, "peak_rss_training_mib"))
        trl_mib = median_of(trl, lambda r: above_baseline(r, "peak_rss_training_mib"))
        lines.append("| " + " | ".join([
            precision, mode, fmt(ours_mib, "{:.0f}"),
            fmt(median_of(ours, lambda r: above_baseline(r, "peak_rss_process_mib")), "{:.0f}"),
            fmt(trl_mib, "{:.0f}"), fmt(ratio(ours_mib, trl_mib), "{:.2f}"),
            fmt(median_of(ours, lambda r: r["rss_after_imports_mib"]), "{:.0f}"),
            fmt(median_of(trl, lambda r: r["rss_after_imports_mib"]), "{:.0f}"),
            load_range(group)]) + " |")
    return "\n".join(lines)


def describe(model: dict) -> str:
    return (f"Llama hidden {model['hidden_size']}, {model['num_hidden_layers']} layers, "
            f"intermediate {model['intermediate_size']}, {model['num_attention_heads']} heads, "
            f"{model['params'] / 1e6:.1f}M parameters ({model['matmul_params'] / 1e6:.1f}M in "
            "matmuls)")


# -- command line -------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--tasks", default="dpo,sft", help="Comma-separated: dpo, sft.")
    add("--precisions", default="fp32,bf16", help="Comma-separated: fp32, bf16.")
    add("--repeats", type=int, default=3, help="Runs per side and setting (interleaved).")
    add("--steps", type=int, default=8, help="Optimiser steps per run, warm-up included.")
    add("--warmup", type=int, default=2, help="Steps left out of the timing (at least 1).")
    add("--batch", type=int, default=8, help="Pairs (DPO) or rows (SFT) per step.")
    add("--seq-tokens", type=int, default=250, help="Approximate tokens per sequence.")
    add("--memory", action=argparse.BooleanOptionalAction, default=True,
        help="Also compare DPO peak memory on the ~100M-parameter model.")
    add("--memory-batch", type=int, default=2, help="Pairs per step of the memory runs.")
    add("--memory-steps", type=int, default=2, help="Steps of each memory run.")
    add("--memory-repeats", type=int, default=1, help="Memory runs per side.")
    add("--memory-precisions", default="fp32", help="Precisions of the memory runs.")
    add("--memory-modes", default="default,lean", help=(
        "Comma-separated settings of the memory runs: default (the speed runs' settings), "
        "lean (gradient checkpointing and no clipping on both sides, and "
        "optim.update_in_backward on ours)."))
    add("--speed", action=argparse.BooleanOptionalAction, default=True,
        help="Run the speed comparison on the ~3M-parameter model (--no-speed: memory only).")
    add("--peak-gflops", type=float, default=300.0,
        help="The CPU's matmul peak for the FLOP floor, in GFLOP/s.")
    add("--trl-python", default=str(DEFAULT_TRL_PYTHON), help="Python of the TRL environment.")
    add("--ours-python", default=sys.executable, help="Python with alignkit installed.")
    add("--gradient-checkpointing", action="store_true",
        help="Recompute activations on both sides (TRL's default is on; alignkit's off).")
    add("--threads", type=int, default=None,
        help="Threads per run (OMP_NUM_THREADS) on both sides; default: torch's choice.")
    add("--timeout", type=float, default=1800.0, help="Seconds before a run is stopped.")
    add("--work-dir", default=None, help="Keep models, data and runs here (default: temporary).")
    add("--json", default=None, help="Also write every run's raw result to this file.")
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace, work: Path) -> dict:
    """Build the assets, run the speed and memory matrices, print the tables."""
    began = time.strftime("%Y-%m-%d %H:%M %Z")
    runner = Runner({"alignkit": args.ours_python, "trl": args.trl_python}, args.timeout,
                    args.threads, args.gradient_checkpointing)
    tokenizer_dir = build_tokenizer(work / "tokenizer")
    data = build_data(work / "data", tokenizer_dir, rows=args.batch * args.steps,
                      seq_tokens=args.seq_tokens)
    small = build_model(work / "model_small", tokenizer_dir, SMALL_LLAMA)
    speed: list[dict] = []
    if args.speed:
        speed = run_matrix(runner, work / "speed", small, data, tasks=args.tasks.split(","),
                           precisions=args.precisions.split(","), repeats=args.repeats,
                           batch=args.batch, steps=args.steps)
        print(f"\nSpeed ({began}): {describe(small)}; batch {args.batch}, {args.steps} steps "
              f"({args.warmup} warm-up), medians of {args.repeats} runs per side\n")
        print(speed_table(speed, small, args.warmup, args.peak_gflops), flush=True)
    memory: list[dict] = []
    if args.memory:
        large = build_model(work / "model_large", tokenizer_dir, LARGE_LLAMA)
        memory_data = build_data(work / "memory_data", tokenizer_dir,
                                 rows=args.memory_batch * args.memory_steps,
                                 seq_tokens=args.seq_tokens)
        memory = run_matrix(runner, work / "memory", large, memory_data, tasks=["dpo"],
                            precisions=args.memory_precisions.split(","),
                            repeats=args.memory_repeats, batch=args.memory_batch,
                            steps=args.memory_steps,
                            modes=tuple(args.memory_modes.split(",")))
        print(f"\nDPO peak RSS above the after-imports baseline: {describe(large)}; batch "
              f"{args.memory_batch}, {args.memory_steps} steps, medians of "
              f"{args.memory_repeats} run(s) per side\n")
        print(memory_table(memory))
    return {"started": began, "args": vars(args), "small_model": small, "speed": speed,
            "memory": memory}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.warmup < 1 or args.steps <= args.warmup:
        sys.exit("--steps must exceed --warmup, and --warmup must be at least 1")
    unknown = set(args.memory_modes.split(",")) - set(MEMORY_MODES)
    if unknown:
        sys.exit(f"--memory-modes: unknown {', '.join(sorted(unknown))}; "
                 f"choose from {', '.join(MEMORY_MODES)}")
    if not Path(args.trl_python).is_file():
        sys.exit(f"no TRL environment at {args.trl_python}: run bash benchmarks/setup_trl.sh")
    with tempfile.TemporaryDirectory(prefix="trainer_speed_") as scratch:
        work = Path(args.work_dir or scratch)
        results = run_all(args, work)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
