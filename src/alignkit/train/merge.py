"""``alignkit merge``: fold a LoRA run's adapter into its base model (policy or reward model).

The base is rebuilt exactly as the run built it, from the run's own
``config.yaml`` (its ``model`` section and ``train.seed``), so runs that
started from ``model.init_from_config`` merge too. A QLoRA run's base is
loaded unquantised (``model.dtype``), so the merged model is a plain full
model rather than a 4-bit one.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from alignkit.atomic import atomic_directory
from alignkit.errors import AlignkitError
from alignkit.models.lora import merge_adapter
from alignkit.rundir import RunDir
from alignkit.train.models_setup import build_policy, build_reward_model, tokenizer_for
from alignkit.train.settings import ModelSettings, PeftSettings


def merge_run(run_path: str | Path, output: str | Path | None = None) -> Path:
    """Write ``RUN/merged`` (or ``output``): the base with the run's adapter folded in."""
    from peft import PeftModel

    run = RunDir(run_path)
    if not run.config_file.is_file():
        raise AlignkitError(f"'{run_path}' is not a run directory (no config.yaml)")
    if not (run.final / "adapter_config.json").is_file():
        raise AlignkitError(f"'{run.final}' holds no adapter (adapter_config.json); only runs "
                            "trained with peft.enabled: true can be merged")
    raw = yaml.safe_load(run.config_file.read_text())
    # A QLoRA adapter folds into the base at its stored precision, not into 4-bit weights.
    model_cfg = ModelSettings(**{**raw["model"], "load_in_4bit": False})
    seed = raw.get("train", {}).get("seed", 0)
    tokenizer = tokenizer_for(model_cfg)
    adapter = json.loads((run.final / "adapter_config.json").read_text())
    # A reward-model run's adapter also carries its trained score head.
    build = build_reward_model if adapter.get("task_type") == "SEQ_CLS" else build_policy
    base = build(model_cfg, PeftSettings(), tokenizer, seed=seed)
    merged = merge_adapter(PeftModel.from_pretrained(base, run.final))
    target = Path(output) if output is not None else run.path / "merged"
    with atomic_directory(target, replace=True) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target
