"""GRPO throughput: ``alignkit grpo`` against TRL 1.16's ``GRPOTrainer``, and where time goes.

Both sides train the same saved, randomly initialised Llama of about 3.7M
parameters (hidden 256, 4 layers, intermediate 688, vocabulary 1024) on the
same prompts (16-32 words), 16 completions of up to 64 tokens per step (4
prompts x k = 4), one update per batch, no KL term, temperature 1, and a
reward that costs nothing. A random model rarely emits its end token, so
nearly every completion runs the full 64 tokens.

    .venv/bin/python benchmarks/grpo_throughput.py --steps 20 --repeats 3
    .venv/bin/python benchmarks/grpo_throughput.py --no-trl       # alignkit only
    .venv/bin/python benchmarks/grpo_throughput.py --threads 1    # both sides on one thread
    .venv/bin/python benchmarks/grpo_throughput.py --precision bf16  # both under bf16 autocast

Each side runs ``--repeats`` times in fresh processes, alternating; a run's step
time is the median interval between step ends after ``--warmup`` steps (ours:
the ``time`` of each ``metrics.jsonl`` row; TRL: a callback at ``on_step_end``).
The table gives medians over runs, the ratio measured in the same run, ours'
split into generation / scoring / training (from its metrics), and peak RSS.
TRL lives in ``benchmarks/.envs/trl`` (``bash benchmarks/setup_trl.sh``); the
load average is printed because the machine may be shared.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRL_PYTHON = HERE / ".envs" / "trl" / "bin" / "python"
MODEL = dict(model_type="llama", hidden_size=256, intermediate_size=688, num_hidden_layers=4,
             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
             tie_word_embeddings=False)
WORDS = [f"w{i}" for i in range(1016)]  # + 8 special tokens = 1024


def constant_reward(prompt, response):
    """A reward that costs nothing, so that only generation and training are timed."""
    return float(len(response) % 3)


def build_setup(root: Path, steps: int, seed: int) -> dict:
    """Tokenizer, saved model and prompts shared by both sides."""
    from alignkit.data.tokenizer_build import word_level_tokenizer
    from alignkit.models.load import init_causal_lm_from_config

    tokenizer = word_level_tokenizer(WORDS)
    (root / "config.json").write_text(json.dumps(dict(MODEL, vocab_size=len(tokenizer))))
    model = init_causal_lm_from_config(root / "config.json", seed=seed)
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        setattr(model.config, name, getattr(tokenizer, name))
        setattr(model.generation_config, name, getattr(tokenizer, name))
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    rng = random.Random(seed)
    rows = [{"prompt": " ".join(rng.choice(WORDS) for _ in range(rng.randint(16, 32)))}
            for _ in range(4 * (steps + 1))]
    (root / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"model_dir": str(root / "model"), "prompts": str(root / "prompts.jsonl"),
            "steps": steps, "lr": 1e-5, "seed": seed}


def ours(spec: dict, result_path: str) -> None:
    """alignkit's side, in this (fresh) process."""
    import torch

    from alignkit.config import dump_config, validate_config
    from alignkit.rundir import RunDir, read_metrics
    from alignkit.train.group import train_group
    from alignkit.train.group_config import GRPOConfig

    sys.path.insert(0, str(HERE))  # for fn:grpo_throughput:constant_reward
    out = Path(spec["work_dir"]) / "ours_run"
    cfg = validate_config(GRPOConfig, {
        "output_dir": str(out), "model": {"path": spec["model_dir"]},
        "data": {"train": spec["prompts"]},
        "reward": {"source": "fn:grpo_throughput:constant_reward"},
        "rollout": {"max_new_tokens": 64}, "group": {"k": 4, "aggregate": "token_mean"},
        "optim": {"lr": spec["lr"], "schedule": "constant"},
        "train": {"prompts_per_iteration": 4, "max_iterations": spec["steps"],
                  "save_every": 10_000, "seed": spec["seed"],
                  "precision": spec["precision"]}})
    train_group(cfg, RunDir.create(out, dump_config(cfg), overwrite=True), "grpo")
    rows = read_metrics(out)
    result = {"side": "ours", "step_end_times": [r["time"] for r in rows],
              "split": {k: [r[k] for r in rows] for k in
                        ("generation_s", "scoring_s", "training_s", "response_length")},
              "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
              "torch_threads": torch.get_num_threads(), "load_end": os.getloadavg()}
    Path(result_path).write_text(json.dumps(result))


def step_seconds(result: dict, warmup: int) -> float:
    times = result["step_end_times"][warmup:]
    return statistics.median(b - a for a, b in itertools.pairwise(times))


def run_side(side: str, spec_path: Path, work: Path, index: int, threads: int | None) -> dict:
    result_path = work / f"{side}-{index}.json"
    python = str(TRL_PYTHON) if side == "trl" else sys.executable
    script = HERE / ("grpo_trl_side.py" if side == "trl" else "grpo_throughput.py")
    command = [python, str(script)] + ([] if side == "trl" else ["--side", "ours"])
    env = dict(os.environ, PYTHONPATH=str(HERE))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run([*command, str(spec_path), str(result_path)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(result_path.read_text())


def report(results: dict[str, list[dict]], warmup: int) -> None:
    rows = {}
    for side, runs in results.items():
        seconds = statistics.median(step_seconds(r, warmup) for r in runs)
        rows[side] = seconds
        rss = max(r["peak_rss_gb"] for r in runs)
        print(f"{side:>5}: {seconds:.3f} s/step, {16 / seconds:.1f} completions/s, "
              f"peak RSS {rss:.2f} GB, threads {runs[0]['torch_threads']}")
    if "trl" in rows:
        print(f"ratio: alignkit is {rows['trl'] / rows['ours']:.2f}x TRL's completions/s")
    split = {k: statistics.median(v for r in results["ours"] for v in r["split"][k][warmup:])
             for k in results["ours"][0]["split"]}
    print("ours, median per step: " + ", ".join(f"{k} {v:.3f}" for k, v in split.items()))
    print(f"load average at the end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help=(
        "OMP_NUM_THREADS for both sides (default: torch's choice, one per core)."))
    parser.add_argument("--no-trl", action="store_true", help="Time alignkit only.")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help=(
        "bf16: both sides under bf16 autocast (ours train.precision: bf16, which covers "
        "sampling too; TRL bf16=True)."))
    args = parser.parse_args()
    if args.side == "ours":
        ours(json.loads(Path(args.paths[0]).read_text()), args.paths[1])
        return
    with tempfile.TemporaryDirectory(prefix="grpo-bench-") as scratch:
        report(measure(args, Path(scratch)), args.warmup)


def measure(args: argparse.Namespace, work: Path) -> dict[str, list[dict]]:
    """Every run of every side, alternating; models, prompts and runs under ``work``."""
    spec = dict(build_setup(work, args.steps, args.seed), work_dir=str(work),
                precision=args.precision)
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    sides = ["ours"] + ([] if args.no_trl or not TRL_PYTHON.exists() else ["trl"])
    results: dict[str, list[dict]] = {side: [] for side in sides}
    print(f"precision {args.precision}; load average at the start: {os.getloadavg()}")
    for index in range(args.repeats):
        for side in sides:
            results[side].append(run_side(side, spec_path, work, index, args.threads))
    return results


if __name__ == "__main__":
    main()
