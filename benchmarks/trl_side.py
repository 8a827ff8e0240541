"""TRL's side of ``trainer_speed.py``: one ``SFTTrainer`` or ``DPOTrainer`` run, timed per step.

Run by the harness with the TRL environment's Python (``benchmarks/setup_trl.sh``),
once per measurement, in a fresh process; it does not import alignkit::

    benchmarks/.envs/trl/bin/python benchmarks/trl_side.py SPEC.json RESULT.json

TRL's settings, stated exactly (everything else is TRL 1.16's default):
``per_device_train_batch_size`` = the batch, ``gradient_accumulation_steps=1``,
``max_steps`` = the steps, ``learning_rate`` = the harness's,
``lr_scheduler_type="linear"``, ``warmup_steps=0``, ``weight_decay=0.0``,
``max_grad_norm=1.0``, ``gradient_checkpointing`` as the harness says (TRL's
default is ``True``; the harness's is off on both sides), ``bf16=True`` for the
bf16 runs and ``bf16=False`` otherwise (TRL's default ``None`` means bf16 on),
``use_cpu=True``, ``save_strategy="no"``, ``eval_strategy="no"``,
``report_to="none"``, ``logging_steps=1``, ``max_length`` = the harness's,
``dataloader_num_workers=0``, ``seed``; the model is loaded from its path with
``model_init_kwargs={"dtype": "float32"}``. DPO: ``loss_type=["sigmoid"]``,
``beta``, and ``precompute_ref_log_probs=False`` (TRL's default), so TRL loads a
second copy of the model as the reference and runs it on every step. SFT:
``packing=False`` and the default ``completion_only_loss`` (loss on the
completion only, as alignkit).

Step times come from a ``TrainerCallback`` recording ``on_step_end``; the peak RSS
of the training steps is read in the callback at the last step.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

STARTED = time.time()
LOAD_AT_START = os.getloadavg()

import datasets  # noqa: E402  (timed: the imports are part of the start-up cost)
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from transformers import AutoTokenizer, LlamaForCausalLM, TrainerCallback  # noqa: E402, F401
from trl import DPOTrainer, SFTTrainer  # noqa: E402, F401  (loaded before the baseline)


def rss_mib() -> float:
    """The resident set size of this process now, in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepClock(TrainerCallback):
    """Wall-clock time at the end of every optimiser step; peak RSS at the last one."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.peak_at_last_step: float | None = None

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.time())
        if state.global_step >= state.max_steps:
            self.peak_at_last_step = peak_rss_mib()


def trainer_args(spec: dict, out_dir: Path) -> dict:
    """The ``TrainingArguments`` both trainers share (see the module docstring)."""
    return {
        "output_dir": str(out_dir),
        "per_device_train_batch_size": spec["batch_size"],
        "gradient_accumulation_steps": 1,
        "max_steps": spec["steps"],
        "learning_rate": spec["lr"],
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": spec["max_grad_norm"],
        # On by default in TRL 1.16; the harness sets it the same on both sides.
        "gradient_checkpointing": spec["gradient_checkpointing"],
        "bf16": spec["precision"] == "bf16",
        "use_cpu": True,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "logging_steps": 1,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": spec["seed"],
        "max_length": spec["max_length"],
        "model_init_kwargs": {"dtype": "float32"},
    }


def build_trainer(spec: dict, clock: StepClock):
    out_dir = Path(spec["work_dir"]) / "trl_out"
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    dataset = datasets.load_dataset("json", data_files=spec["data_path"], split="train")
    common = {"model": spec["model_dir"], "processing_class": tokenizer,
              "train_dataset": dataset, "callbacks": [clock]}
    if spec["task"] == "sft":
        args = trl.SFTConfig(**trainer_args(spec, out_dir), packing=False)
        return trl.SFTTrainer(args=args, **common)
    args = trl.DPOConfig(**trainer_args(spec, out_dir), loss_type=["sigmoid"],
                         beta=spec["beta"], precompute_ref_log_probs=False)
    return trl.DPOTrainer(args=args, **common)


def tokens_per_example(dataset) -> float:
    """Mean token count over the tokenised dataset's id columns (prompt and responses)."""
    columns = [name for name in dataset.column_names
               if name.endswith("ids") and "attention" not in name]
    total = sum(len(ids) for name in columns for ids in dataset[name])
    return total / max(len(dataset), 1)


def main(spec_path: str, result_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    baseline = rss_mib()
    imported = time.time()
    clock = StepClock()
    trainer = build_trainer(spec, clock)
    output = trainer.train()
    finished = time.time()
    result = {
        "side": "trl",
        "task": spec["task"],
        "precision": spec["precision"],
        "process_start": STARTED,
        "imports_done": imported,
        "finished": finished,
        "step_end_times": clock.times,
        "losses": [row["loss"] for row in trainer.state.log_history if "loss" in row],
        "final_train_loss": output.training_loss,
        "tokens_per_example": tokens_per_example(trainer.train_dataset),
        "dataset_columns": trainer.train_dataset.column_names,
        "has_reference_model": getattr(trainer, "ref_model", None) is not None,
        "rss_after_imports_mib": baseline,
        "peak_rss_training_mib": clock.peak_at_last_step,
        "peak_rss_process_mib": peak_rss_mib(),
        "load_start": LOAD_AT_START,
        "load_end": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "trl": trl.__version__,
                     "transformers": transformers.__version__},
    }
    Path(result_path).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
