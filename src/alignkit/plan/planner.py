"""A plan: the predicted peak memory of a run, whether it fits, what to change, and time.

:func:`make_plan` is the whole computation; :func:`plan_for_training` builds
one from a training command's config sections, for the trainers to print at
start-up (:meth:`Plan.summary`) and to warn when the peak exceeds the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alignkit.errors import ConfigError
from alignkit.plan.architecture import (
    Head,
    ModelShape,
    adapted_linears,
    describe_model,
    read_model_config,
)
from alignkit.plan.catalogue import GIB, Catalogue, Device, cpu_device, load_catalogue
from alignkit.plan.memory import Memory, model_bytes
from alignkit.plan.phases import plan_memory
from alignkit.plan.settings import PlanSettings, check_settings
from alignkit.plan.step_time import DEFAULT_EFFICIENCY, StepTime, estimate_step_time


@dataclass(frozen=True)
class Suggestion:
    """A change that lowers the peak, with its new figures.

    Attributes:
        change: what to change, as a user would say it.
        effect: what it costs (none, time, or a different training).
        tier: 0 the same result, 1 a small numerical change, 2 a different training.
        settings: the changed settings.
        total: the new peak plus the device's runtime, in bytes.
        fits: whether that fits the device.
        flops: the new FLOPs of a step (ranks changes by their cost in time).
        seconds: the new step time (``None`` without a throughput).
    """

    change: str
    effect: str
    tier: int
    settings: PlanSettings
    total: int
    fits: bool
    flops: float
    seconds: float | None


@dataclass
class Plan:
    """The prediction for one model, method, settings and device."""

    model: ModelShape
    settings: PlanSettings
    device: Device
    memory: Memory
    trainable: int
    time: StepTime
    reward_model: ModelShape | None = None
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def peak(self) -> int:
        """Bytes the run allocates at its peak phase (per GPU)."""
        return self.memory.peak

    @property
    def total(self) -> int:
        """The peak plus the runtime's own memory."""
        return self.peak + self.device.runtime

    @property
    def fits(self) -> bool:
        return self.total <= self.device.memory

    @property
    def headroom(self) -> int:
        """Device memory left at the peak (negative when it does not fit)."""
        return self.device.memory - self.total

    def summary(self) -> str:
        """One line: method, model, peak, device, fit, time."""
        s = self.settings
        what = s.method + (f" (reference {s.reference_mode})" if s.spec.reference else "")
        how = [s.dtype] + (["bf16 autocast"] if s.autocast else [])
        how.append(f"LoRA r{s.lora_rank}" if s.lora else "full")
        if s.quantization != "none":
            how.append(f"{s.quantization} base")
        fit = (f"fits, {gib(self.headroom)} free" if self.fits
               else f"DOES NOT FIT by {gib(-self.headroom)}")
        line = (f"plan: {what} on {self.model.label} ({', '.join(how)}, batch {s.batch_size} x "
                f"{s.row_len} tokens): peak {gib(self.total)} of {gib(self.device.memory)} on "
                f"{self.device.name} ({fit})")
        if self.time.seconds is not None:
            line += f"; ~{self.time.seconds:.2g} s/step"
        return line


def gib(n: float) -> str:
    """Bytes as GiB with two decimals (``1.25 GiB``), or as MiB below one GiB (``3.4 MiB``)."""
    if abs(n) < GIB:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / GIB:.2f} GiB"


def resolve_model(source: str, catalogue: Catalogue, head: Head = "causal_lm",
                  vocab_size: int | None = None) -> ModelShape:
    """The shape of a directory, ``config.json`` or preset, with the head a method needs."""
    label, config = read_model_config(source, catalogue)
    return describe_model(label, config, head, vocab_size=vocab_size)


def make_plan(model: ModelShape, settings: PlanSettings, device: Device, *,
              reward_model: ModelShape | None = None, advise: bool = True,
              efficiency: float = DEFAULT_EFFICIENCY) -> Plan:
    """Predict memory and time; with ``advise``, rank changes that lower the peak.

    Raises:
        ConfigError: inconsistent settings, or LoRA targets that name no linear
            layer of the model.
    """
    s = check_settings(settings.but(on_cpu=device.name == "cpu"))
    if s.lora and not adapted_linears(model, s.lora_targets):
        raise ConfigError(f"LoRA targets {', '.join(s.lora_targets)} match no linear layer of "
                          f"{model.label}; its layers: "
                          f"{', '.join(lin.name for lin in model.linears)} (or all-linear)")
    value = model if s.spec.value_model else None
    memory = plan_memory(model, s, reward_shape=reward_model, value_shape=value)
    policy = model_bytes(model, s, trains=True)
    time = estimate_step_time(model, s, device, weight_bytes=policy.weights, reward=reward_model,
                              efficiency=efficiency)
    plan = Plan(model, s, device, memory, policy.trainable, time, reward_model)
    if advise:
        from alignkit.plan.advice import suggest

        plan.suggestions = suggest(plan, efficiency=efficiency)
    return plan


def detect_device() -> Device:
    """The first CUDA GPU when there is one (its name and memory), else this machine's RAM."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        # the runtime measured on an H200 (torch 2.11, CUDA 13: 767-777 MiB outside the
        # caching allocator); other GPUs and toolkits may hold more or less
        return Device(props.name, props.total_memory, None, None, int(0.75 * GIB),
                      "torch.cuda.get_device_properties")
    return cpu_device()


def plan_for_training(model_cfg, method: str, *, peft=None, train=None, data=None,
                      reference: str = "auto", device: Device | None = None,
                      vocab_size: int | None = None, catalogue: Catalogue | None = None,
                      **overrides) -> Plan:
    """The plan of a training command's run, from its config sections.

    Args:
        model_cfg: the ``model`` section (``path`` or ``init_from_config``,
            ``dtype``, ``gradient_checkpointing``, ``lean_activations``, ``load_in_4bit``).
        method: ``sft``, ``rm``, ``dpo`` (any preference loss), ``ppo``, ...
        peft: the ``peft`` section (``enabled``, ``r``, ``target_modules``).
        train: the ``train`` section: ``batch_size`` (or an online run's
            ``prompts_per_iteration``), ``grad_accum``, ``precision``.
        data: the ``data`` section: ``max_length`` (or an online run's
            ``max_prompt_length``).
        reference: the settled reference mode.
        device: where it runs; the first CUDA GPU or this machine by default.
        vocab_size: the tokenizer's length when the model is built from a config.
        overrides: any other :class:`PlanSettings` field (``completion_len``,
            ``samples``, ``reward_model``...).
    """
    catalogue = catalogue or load_catalogue()
    source = model_cfg.path or model_cfg.init_from_config
    head: Head = "reward" if method == "rm" else "causal_lm"
    shape = resolve_model(str(source), catalogue, head, vocab_size=vocab_size)
    fields = {"method": method, "reference": reference, "dtype": model_cfg.dtype,
              "gradient_checkpointing": model_cfg.gradient_checkpointing,
              "lean_activations": getattr(model_cfg, "lean_activations", True),
              "cpu_attention": getattr(model_cfg, "cpu_attention", True),
              "quantization": "4bit" if getattr(model_cfg, "load_in_4bit", False) else "none"}
    if peft is not None and peft.enabled:
        targets = peft.target_modules
        fields.update(lora_rank=peft.r,
                      lora_targets=targets if isinstance(targets, str) else tuple(targets))
    fields.update(_section_fields(train, data))
    settings = PlanSettings(**{**fields, **overrides})
    return make_plan(shape, settings, device or detect_device())


def _section_fields(train, data) -> dict:
    """Batch, accumulation, precision and lengths from offline or online sections."""
    fields = {}
    batch = getattr(train, "batch_size", None) or getattr(train, "prompts_per_iteration", None)
    if batch:
        fields["batch_size"] = batch
    for name in ("grad_accum", "precision"):
        if getattr(train, name, None) is not None:
            fields[name] = getattr(train, name)
    if getattr(data, "max_length", None):
        fields["seq_len"] = data.max_length
    elif getattr(data, "max_prompt_length", None):
        fields["prompt_len"] = data.max_prompt_length
    return fields
