"""alignkit's side of ``trainer_speed.py``: one SFT or DPO run, timed per step.

Run by the harness with the project's Python, once per measurement, in a fresh
process::

    .venv/bin/python benchmarks/ours_side.py SPEC.json RESULT.json

SPEC.json (written by the harness) names the task (``sft`` or ``dpo``), the
precision, the saved model and tokenizer, the data file, batch size, steps and
optimiser settings. The run goes through the library exactly as ``alignkit sft``
/ ``alignkit dpo`` do: a config validated by ``SFTConfig`` / ``DPOConfig``, a
run directory from ``RunDir.create``, then ``train_sft`` / ``train_dpo``.

Step times come from the ``time`` of each ``metrics.jsonl`` row (``log_every: 1``,
written right after each optimiser step). The peak RSS of the training steps is
the ``peak_memory_mb`` of the last row, logged before the final checkpoint and
``final/`` are written; the whole process's peak (saving included) is reported
too. The one-off reference pass (DPO, ``reference.mode: precomputed``) is timed
from its two ``events.jsonl`` notices.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import sys
import time
from pathlib import Path

STARTED = time.time()
LOAD_AT_START = os.getloadavg()

import torch  # noqa: E402  (timed: the imports are part of the start-up cost)

# The libraries the run loads, imported before the baseline as the TRL side imports its
# trainers: the memory compared is the run's, not the code's.
from accelerate import Accelerator  # noqa: E402, F401
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM  # noqa: E402, F401

from alignkit.config import dump_config  # noqa: E402
from alignkit.rundir import RunDir  # noqa: E402
from alignkit.train.dpo_config import DPOConfig  # noqa: E402
from alignkit.train.preference import train_dpo  # noqa: E402
from alignkit.train.sft import train_sft  # noqa: E402
from alignkit.train.sft_config import SFTConfig  # noqa: E402

NEVER = 10**9
"""A checkpoint interval no benchmark run reaches."""


def rss_mib() -> float:
    """The resident set size of this process now, in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_config(spec: dict, out_dir: Path) -> SFTConfig | DPOConfig:
    """The run's config: the same settings the TRL side gets, in alignkit's keys."""
    raw = {
        "output_dir": str(out_dir),
        "model": {"path": spec["model_dir"], "dtype": "fp32",
                  "gradient_checkpointing": spec["gradient_checkpointing"]},
        "data": {"train": spec["data_path"], "max_length": spec["max_length"]},
        "optim": {"lr": spec["lr"], "weight_decay": 0.0, "schedule": "linear",
                  "warmup_steps": 0, "max_grad_norm": spec["max_grad_norm"],
                  "update_in_backward": spec.get("update_in_backward", False)},
        "train": {"batch_size": spec["batch_size"], "grad_accum": 1,
                  "max_steps": spec["steps"], "seed": spec["seed"],
                  "precision": spec["precision"], "log_every": 1, "eval_every": 0,
                  "save_every": NEVER, "keep_last": 1},
    }
    if spec["task"] == "sft":
        return SFTConfig.model_validate(raw)
    raw["loss"] = {"type": "dpo", "beta": spec["beta"]}
    raw["reference"] = {"mode": "precomputed"}
    raw["alarms"] = {"enabled": False}
    return DPOConfig.model_validate(raw)


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reference_seconds(events: list[dict]) -> float | None:
    """Seconds between the 'computing reference' and 'saved' notices, if both exist."""
    times = [e["time"] for e in events if e.get("kind") == "reference"]
    return times[-1] - times[0] if len(times) >= 2 else None


def main(spec_path: str, result_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    baseline = rss_mib()
    imported = time.time()
    out_dir = Path(spec["work_dir"]) / "run"
    cfg = build_config(spec, out_dir)
    run = RunDir.create(out_dir, dump_config(cfg), overwrite=True)
    (train_sft if spec["task"] == "sft" else train_dpo)(cfg, run)
    finished = time.time()
    rows = [row for row in read_jsonl(out_dir / "metrics.jsonl") if "loss" in row]
    result = {
        "side": "alignkit",
        "task": spec["task"],
        "precision": spec["precision"],
        "process_start": STARTED,
        "imports_done": imported,
        "finished": finished,
        "step_end_times": [row["time"] for row in rows],
        "tokens_per_step": _tokens_per_step(rows),
        "losses": [row["loss"] for row in rows],
        "rss_after_imports_mib": baseline,
        "peak_rss_training_mib": rows[-1]["peak_memory_mb"] if rows else None,
        "peak_rss_process_mib": peak_rss_mib(),
        "reference_precompute_s": reference_seconds(read_jsonl(out_dir / "events.jsonl")),
        "load_start": LOAD_AT_START,
        "load_end": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__},
    }
    Path(result_path).write_text(json.dumps(result, indent=1))


def _tokens_per_step(rows: list[dict]) -> list[int]:
    """Tokens of each step (attention-mask ones), from the running ``tokens_seen``."""
    seen = [0] + [int(row["tokens_seen"]) for row in rows]
    return [b - a for a, b in itertools.pairwise(seen)]


if __name__ == "__main__":
    main(*sys.argv[1:3])
