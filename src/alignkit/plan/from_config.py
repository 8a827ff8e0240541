"""The planner's inputs for a training command's resolved config, and the device it runs on.

:func:`plan_inputs` turns the config of ``alignkit sft``, ``rm``, ``dpo``,
``ppo``, ``rloo`` or ``grpo`` into the model's shape (read from
``config.json`` on the meta device, no weights), the :class:`PlanSettings`
the trainer will run with, and the reward model's shape for online methods.
:func:`training_device` is where the trainers run: the CUDA device when there
is one, else this machine's available memory.

A config the planner does not model (RRHF's ranked sets, PPO with a critic
from another model or a cost model) raises :class:`Unplannable`, naming what.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from alignkit.errors import AlignkitError, ConfigError
from alignkit.plan.architecture import ModelShape
from alignkit.plan.catalogue import GIB, Catalogue, Device, cpu_device, load_catalogue
from alignkit.plan.settings import PlanSettings

MEMORY_ENV = "ALIGNKIT_PLAN_MEMORY_GIB"
"""Overrides the device memory (GiB) a training run's plan is compared with."""

PREFERENCE_METHODS = {"simpo": "simpo", "orpo": "orpo", "kto": "kto"}
"""The planner's method of each ``dpo`` loss type that differs from plain DPO in memory."""


class Unplannable(AlignkitError):
    """A run the planner does not model; the message says what."""


@dataclass(frozen=True)
class PlanInputs:
    """What :func:`~alignkit.plan.planner.make_plan` needs besides the device."""

    model: ModelShape
    settings: PlanSettings
    reward_model: ModelShape | None = None


def plan_inputs(cfg, command: str, *, vocab_size: int | None = None, processes: int = 1,
                catalogue: Catalogue | None = None) -> PlanInputs:
    """The model, settings and reward model of a training command's resolved config.

    Args:
        cfg: the validated config of ``command``.
        command: ``sft``, ``rm``, ``dpo``, ``ppo``, ``rloo`` or ``grpo``.
        vocab_size: the tokenizer's length when the model is built from
            ``model.init_from_config`` (the trainers size its embeddings so).
        processes: data-parallel processes of the run.

    Raises:
        Unplannable: a method or component the planner does not model.
        AlignkitError: an unreadable model config.
    """
    from alignkit.plan.planner import resolve_model

    catalogue = catalogue or load_catalogue()
    fields = _model_fields(cfg, processes)
    if command in ("ppo", "rloo", "grpo"):
        fields.update(_online_fields(cfg, command))
    else:
        fields.update(_offline_fields(cfg, command))
    settings = PlanSettings(**fields)
    source = _local(cfg.model.path or cfg.model.init_from_config, "model")
    shape = resolve_model(source, catalogue, settings.spec.head,
                          vocab_size=vocab_size if cfg.model.init_from_config else None)
    reward = None
    if settings.spec.online and settings.reward_model:
        reward = resolve_model(_local(cfg.reward.source, "reward model"), catalogue, "reward")
    return PlanInputs(shape, settings, reward)


def _local(source: str, what: str) -> str:
    """``source`` when it exists (the trainers take local paths, never the catalogue's presets)."""
    if not Path(source).exists():
        raise AlignkitError(f"{what} '{source}' does not exist")
    return str(source)


def _model_fields(cfg, processes: int) -> dict:
    """Weights, precision, LoRA and checkpointing: the same keys for every command."""
    model = cfg.model
    fields = {"dtype": model.dtype, "precision": cfg.train.precision,
              "gradient_checkpointing": model.gradient_checkpointing,
              "lean_activations": model.lean_activations,
              "cpu_attention": model.cpu_attention,
              "quantization": "4bit" if model.load_in_4bit else "none",
              "optimizer": "adamw", "gpus": processes}
    if cfg.peft.enabled:
        rank, targets = _lora(cfg.peft)
        fields.update(lora_rank=rank, lora_targets=targets)
    return fields


def _lora(peft) -> tuple[int, str | tuple[str, ...]]:
    """Rank and targets of fresh adapters, or of the adapter ``peft.adapter`` continues."""
    if peft.adapter is None:
        targets = peft.target_modules
        return peft.r, targets if isinstance(targets, str) else tuple(targets)
    path = Path(peft.adapter) / "adapter_config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AlignkitError(f"cannot read the adapter's settings in '{path}': {exc}") from None
    targets = raw.get("target_modules")
    if not isinstance(raw.get("r"), int) or not isinstance(targets, list):
        raise Unplannable(f"the adapter in '{path.parent}' does not list its rank and target "
                          "layers (a pattern is not planned)")
    return raw["r"], tuple(sorted(targets))


def _offline_fields(cfg, command: str) -> dict:
    """Method, reference, micro-batch and row length of ``sft``, ``rm`` and ``dpo``."""
    fields = {"method": command, "batch_size": cfg.train.batch_size,
              "grad_accum": cfg.train.grad_accum, "seq_len": cfg.data.max_length,
              "update_in_backward": cfg.optim.update_in_backward}
    if command == "dpo":
        from alignkit.train.dpo_config import reference_mode

        loss = cfg.loss.type
        if loss == "rrhf":
            raise Unplannable("the planner does not model rrhf (ranked sets of responses)")
        fields.update(method=PREFERENCE_METHODS.get(loss, "dpo"), reference=reference_mode(cfg))
    return fields


def _online_fields(cfg, command: str) -> dict:
    """Prompts, samples, lengths, passes, reference and reward model of an online run."""
    separate = command == "ppo" and cfg.value.model == "separate"
    if separate and cfg.value.path not in (None, cfg.model.path):
        raise Unplannable("the planner models a separate PPO critic only when it starts "
                          "from the policy's model (value.path unset)")
    if command == "ppo" and cfg.constraint.cost is not None and _is_model(cfg.constraint.cost):
        raise Unplannable("the planner does not model a cost model (constraint.cost)")
    samples = 1 if command == "ppo" else cfg.group.k
    rows = cfg.train.prompts_per_iteration * samples
    return {"method": command, "batch_size": cfg.train.prompts_per_iteration,
            "samples": samples, "prompt_len": cfg.data.max_prompt_length,
            "completion_len": cfg.rollout.max_new_tokens,
            "grad_accum": -(-rows // _rows_per_pass(cfg, rows)),
            "reference": _online_reference(cfg, command),
            "reward_model": _is_model(cfg.reward.source), "separate_critic": separate}


def _rows_per_pass(cfg, rows: int) -> int:
    """Rows of one training forward pass: a minibatch, or its micro-batches."""
    minibatch = -(-rows // min(cfg.update.minibatches, rows))
    return min(cfg.train.micro_batch_size or minibatch, minibatch)


def _online_reference(cfg, command: str) -> str:
    """PPO always has a reference; RLOO and GRPO only with a KL term (``kl.coef > 0``).

    It is the policy with its adapter off under fresh LoRA adapters, else a frozen copy.
    """
    if command != "ppo" and cfg.kl.coef == 0:
        return "none"
    return "adapter" if cfg.peft.enabled and cfg.peft.adapter is None else "copy"


def _is_model(source: str) -> bool:
    """Whether a reward or cost source is a model (not ``gold`` or a ``fn:`` function)."""
    return not (source == "gold" or source.startswith(("gold:", "fn:")))


def training_device(processes: int = 1) -> Device:
    """Where a training run's tensors live, as the planner compares them.

    The first CUDA device (its total memory) when CUDA is available, as the
    trainers then train on it; else this machine's available memory
    (``MemAvailable``, read now, so this process's own memory is already
    taken out: no runtime is added), shared by ``processes`` processes.
    ``ALIGNKIT_PLAN_MEMORY_GIB`` replaces the memory.

    Raises:
        ConfigError: ``ALIGNKIT_PLAN_MEMORY_GIB`` is not a positive number.
    """
    import torch

    if torch.cuda.is_available():
        from alignkit.plan.planner import detect_device

        device = detect_device()
    else:
        device = replace(cpu_device(available_memory() // processes), runtime=0,
                         source="this machine's available memory (MemAvailable)")
    forced = os.environ.get(MEMORY_ENV)
    if forced is None:
        return device
    try:
        memory = float(forced)
    except ValueError:
        memory = -1.0
    if not memory > 0:
        raise ConfigError(f"{MEMORY_ENV}={forced!r} must be a positive number of GiB")
    return replace(device, memory=int(memory * GIB), source=f"{MEMORY_ENV}={forced}")


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes of memory available to new allocations; the physical memory without ``meminfo``."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
