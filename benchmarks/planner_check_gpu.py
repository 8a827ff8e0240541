"""The memory planner against measurement on a CUDA GPU: predicted vs allocated peak.

The GPU counterpart of ``planner_check.py``. Each case trains a randomly
initialised Llama-style model of about 0.5B parameters (hidden 1280, 24
layers, a word-level vocabulary of 32,000) for three steps with the real
trainer, in a fresh Python process, on the first CUDA device. Before
training, the process warms up (a forward, backward and AdamW step of a tiny
model on the GPU: the CUDA context and cuBLAS handles exist before the
baseline), then resets the allocator's peak. The peak is read when the
trainer writes its first checkpoint, after the last training step.

Three figures per case:

* allocated: ``torch.cuda.max_memory_allocated()`` above the baseline, the
  bytes of live tensors at their peak; the plan's peak is compared with it
  (the +-20% bound of the CPU check).
* reserved: ``torch.cuda.max_memory_reserved()`` above the baseline,
  what the caching allocator held (fragmentation on top of the tensors).
* device used: the GPU memory in use at the first checkpoint
  (``torch.cuda.mem_get_info``) minus the reserved memory at that moment: the
  CUDA context and library workspaces, which the plan counts as the device's
  runtime figure.

QLoRA cases need bitsandbytes; they are reported as skipped without it.

    python benchmarks/planner_check_gpu.py                   # every case
    python benchmarks/planner_check_gpu.py --cases sft-05b-lora   # some cases
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from planner_check import BOUND, MIB, REWARD_CODE, REWARD_MODULE, STEPS, _rows, _trainer, _words

SIZE = dict(hidden_size=1280, num_hidden_layers=24, num_attention_heads=20,
            num_key_value_heads=4, intermediate_size=3456)
VOCAB_WORDS = 32000


@dataclass(frozen=True)
class GpuCase:
    """One run: method, weights' dtype, autocast, LoRA, 4-bit base and memory options."""

    name: str
    method: str
    dtype: str = "bf16"
    precision: str = "bf16"
    lora_rank: int = 0
    four_bit: bool = False
    reference: str = "auto"
    batch_size: int = 4
    seq_len: int = 512
    checkpointing: bool = False
    in_backward: bool = False
    samples: int = 4
    completion_len: int = 64


CASES = [
    GpuCase("sft-05b-mixed", "sft", dtype="fp32"),
    GpuCase("sft-05b-bf16", "sft"),
    GpuCase("sft-05b-lora", "sft", lora_rank=16),
    GpuCase("sft-05b-qlora", "sft", lora_rank=16, four_bit=True),
    GpuCase("dpo-05b-mixed", "dpo", dtype="fp32", reference="precomputed"),
    GpuCase("dpo-05b-mixed-ckpt-in-backward", "dpo", dtype="fp32", reference="precomputed",
            checkpointing=True, in_backward=True),
    GpuCase("dpo-05b-lora-adapter", "dpo", lora_rank=16, reference="adapter"),
    GpuCase("dpo-05b-qlora-adapter", "dpo", lora_rank=16, four_bit=True, reference="adapter"),
    GpuCase("grpo-05b-lora", "grpo", lora_rank=16, batch_size=4, seq_len=64),
]
CASES_BY_NAME = {case.name: case for case in CASES}


# -- the worker: one case in this process ------------------------------------------------------

def _model_config(case: GpuCase, vocab: int) -> dict:
    return dict(model_type="llama", **SIZE, max_position_embeddings=4 * case.seq_len,
                tie_word_embeddings=False, vocab_size=vocab)


def _model_section(case: GpuCase, root: Path) -> dict:
    if case.four_bit:  # a 4-bit base is quantised while loading saved weights
        return {"path": str(root / "model"), "load_in_4bit": True, "dtype": case.dtype,
                "gradient_checkpointing": case.checkpointing}
    return {"init_from_config": str(root / "config.json"), "tokenizer": str(root / "tokenizer"),
            "dtype": case.dtype, "gradient_checkpointing": case.checkpointing}


def _training_config(case: GpuCase, root: Path) -> dict:
    peft = {"enabled": case.lora_rank > 0, "r": max(case.lora_rank, 1)}
    if case.method == "grpo":
        return {"output_dir": str(root / "run"), "model": _model_section(case, root),
                "data": {"train": str(root / "train.jsonl"), "max_prompt_length": case.seq_len},
                "reward": {"source": f"fn:{REWARD_MODULE}:length"},
                "rollout": {"max_new_tokens": case.completion_len},
                "update": {"epochs": 1, "minibatches": 1}, "group": {"k": case.samples},
                "train": {"prompts_per_iteration": case.batch_size, "max_iterations": STEPS,
                          "precision": case.precision, "save_every": 1000, "log_every": 1000},
                "peft": peft}
    raw = {"output_dir": str(root / "run"), "model": _model_section(case, root),
           "data": {"train": str(root / "train.jsonl"), "max_length": case.seq_len},
           "train": {"batch_size": case.batch_size, "max_steps": STEPS,
                     "precision": case.precision, "save_every": 1000, "log_every": 1000},
           "peft": peft}
    if case.in_backward:
        raw["optim"] = {"update_in_backward": True, "max_grad_norm": 0}
    if case.method == "dpo":
        raw["loss"] = {"type": "dpo"}
        raw["reference"] = {"mode": case.reference}
    return raw


def _write_inputs(case: GpuCase, root: Path) -> int:
    """Tokenizer, model config (and saved weights for a 4-bit base), data; the vocabulary size."""
    from alignkit.data.tokenizer_build import word_level_tokenizer

    words = _words(VOCAB_WORDS)
    tokenizer = word_level_tokenizer(words)
    tokenizer.save_pretrained(root / "tokenizer")
    (root / "config.json").write_text(json.dumps(_model_config(case, len(tokenizer))))
    rows = _rows(case, words, case.batch_size * STEPS)
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / f"{REWARD_MODULE}.py").write_text(REWARD_CODE)
    if case.four_bit:
        from alignkit.models.load import init_causal_lm_from_config

        model = init_causal_lm_from_config(root / "config.json", dtype=case.dtype)
        model.save_pretrained(root / "model")
        tokenizer.save_pretrained(root / "model")
        del model
    return len(tokenizer)


def _warm_up() -> None:
    """A step of a tiny model on the GPU: the context and cuBLAS exist before the baseline."""
    import torch

    layer = torch.nn.Linear(64, 64, device="cuda")
    optimizer = torch.optim.AdamW(layer.parameters())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        layer(torch.ones(8, 64, device="cuda")).float().sum().backward()
    optimizer.step()
    del layer, optimizer
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def _predict(cfg, case: GpuCase, vocab: int) -> dict:
    from alignkit.plan.from_config import plan_inputs, training_device
    from alignkit.plan.planner import make_plan

    inputs = plan_inputs(cfg, case.method, vocab_size=vocab)
    plan = make_plan(inputs.model, inputs.settings, training_device(), advise=False,
                     reward_model=inputs.reward_model)
    return {"predicted_mib": plan.peak / MIB, "phase": plan.memory.peak_phase,
            "params": plan.model.params.total, "runtime_mib": plan.device.runtime / MIB}


def measure(case: GpuCase) -> dict:
    with tempfile.TemporaryDirectory(prefix="planner-check-gpu-") as scratch:
        return _measure_in(case, Path(scratch))


def _measure_in(case: GpuCase, root: Path) -> dict:
    import torch

    from alignkit.config import dump_config, validate_config
    from alignkit.rundir import RunDir
    from alignkit.train.engine import Engine

    vocab = _write_inputs(case, root)
    sys.path.insert(0, str(root))
    schema, train = _trainer(case.method)
    cfg = validate_config(schema, _training_config(case, root))
    row = _predict(cfg, case, vocab)
    _warm_up()
    run = RunDir.create(cfg.output_dir, dump_config(cfg))
    torch.cuda.reset_peak_memory_stats()
    base_alloc, base_reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    seen: list[dict] = []
    checkpoint = Engine.checkpoint

    def checkpoint_after_peak(engine) -> None:
        if not seen:
            torch.cuda.synchronize()
            free, total = torch.cuda.mem_get_info()
            seen.append({"allocated": torch.cuda.max_memory_allocated() - base_alloc,
                         "reserved": torch.cuda.max_memory_reserved() - base_reserved,
                         "outside": total - free - torch.cuda.memory_reserved()})
        checkpoint(engine)

    Engine.checkpoint = checkpoint_after_peak
    start = time.perf_counter()
    train(cfg, run)
    peak = seen[0]
    return {**row, "allocated_mib": peak["allocated"] / MIB, "reserved_mib": peak["reserved"] / MIB,
            "outside_mib": peak["outside"] / MIB, "seconds": time.perf_counter() - start}


# -- the driver -------------------------------------------------------------------------------

def run_case(case: GpuCase) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", case.name],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"case": case.name, "error": done.stderr[-3000:]}
    return {"case": case.name, **json.loads(done.stdout.strip().splitlines()[-1])}


TABLE_HEAD = ("| case | params | peak phase | predicted MiB | allocated MiB "
              "| predicted / allocated | reserved MiB | context and workspaces MiB (plan) | s |\n"
              "|---|---:|---|---:|---:|---:|---:|---:|---:|")


def table_row(r: dict) -> str:
    if "error" in r:
        last = r["error"].strip().splitlines()[-1:] or ["?"]
        return f"| {r['case']} | failed: {last[0][:120]} |"
    ratio = r["predicted_mib"] / r["allocated_mib"]
    mark = "" if abs(ratio - 1) <= BOUND else " **out of bound**"
    return (f"| {r['case']} | {r['params'] / 1e6:.0f}M | {r['phase']} | "
            f"{r['predicted_mib']:.0f} | {r['allocated_mib']:.0f} | {ratio:.2f}{mark} | "
            f"{r['reserved_mib']:.0f} | {r['outside_mib']:.0f} ({r['runtime_mib']:.0f}) | "
            f"{r['seconds']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=None, help="comma-separated case names (default all)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(CASES_BY_NAME[args.worker])))
        return
    import torch

    if not torch.cuda.is_available():
        sys.exit("planner_check_gpu.py: no CUDA device")
    names = args.cases.split(",") if args.cases else list(CASES_BY_NAME)
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
          f"{time.strftime('%Y-%m-%d')}\n\n{TABLE_HEAD}", flush=True)
    for name in names:
        case = CASES_BY_NAME[name]
        if case.four_bit and not has_bnb:
            print(f"| {name} | skipped: bitsandbytes is not installed |", flush=True)
            continue
        row = run_case(case)
        print(table_row(row), flush=True)
        if "error" in row:
            print(row["error"], file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
