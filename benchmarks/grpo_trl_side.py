"""TRL's side of ``grpo_throughput.py``: one ``GRPOTrainer`` run, timed per step.

Run by the harness with the TRL environment's Python (``benchmarks/setup_trl.sh``), in
a fresh process; it does not import alignkit::

    benchmarks/.envs/trl/bin/python benchmarks/grpo_trl_side.py SPEC.json RESULT.json

TRL's settings, stated exactly (everything else is TRL 1.16's default):
``per_device_train_batch_size=16`` completions, ``num_generations=4``,
``max_completion_length=64``, ``temperature=1.0``, ``beta=0.0`` (no reference),
``num_iterations=1``, ``gradient_checkpointing=False`` (alignkit's default; TRL's is
on), ``learning_rate`` and ``max_steps`` from the spec, ``use_cpu=True``,
``save_strategy="no"``, ``report_to="none"``, ``logging_steps=1``, ``seed``,
``bf16`` when the spec's precision is bf16; the model
is the same saved directory alignkit loads. The reward is the harness's constant-cost
function (length of the completion modulo 3).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

STARTED = time.time()

import datasets  # noqa: E402
import torch  # noqa: E402
import trl  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402


def cheap_reward(completions, **kwargs):
    """The same cost-free reward alignkit's side uses."""
    return [float(len(c) % 3) for c in completions]


class StepClock(TrainerCallback):
    """Wall-clock time at the end of every optimiser step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.time())


def main(spec_path: str, result_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    rows = [json.loads(line) for line in Path(spec["prompts"]).read_text().splitlines()]
    dataset = datasets.Dataset.from_list([{"prompt": r["prompt"]} for r in rows])
    args = trl.GRPOConfig(
        output_dir=str(Path(spec["work_dir"]) / "trl_out"), per_device_train_batch_size=16,
        num_generations=4, max_completion_length=64, temperature=1.0, beta=0.0,
        num_iterations=1, gradient_checkpointing=False, learning_rate=spec["lr"],
        max_steps=spec["steps"], use_cpu=True, save_strategy="no", report_to="none",
        logging_steps=1, disable_tqdm=True, seed=spec["seed"],
        bf16=spec.get("precision") == "bf16")
    clock = StepClock()
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[cheap_reward], args=args,
                              train_dataset=dataset, processing_class=tokenizer,
                              callbacks=[clock])
    began = time.time()
    trainer.train()
    lengths = [row["completions/mean_length"] for row in trainer.state.log_history
               if "completions/mean_length" in row]
    result = {"side": "trl", "process_start": STARTED, "train_start": began,
              "step_end_times": clock.times, "mean_completion_length": lengths,
              "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
              "torch_threads": torch.get_num_threads(), "load_end": os.getloadavg(),
              "trl": trl.__version__}
    Path(result_path).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
