"""What a plan is for: the method and the settings that change memory and time.

Light module (no torch): the command line and the trainers build a
:class:`PlanSettings`, and :func:`check_settings` refuses combinations that
make no sense with a message naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from alignkit.errors import ConfigError

Method = Literal["sft", "rm", "dpo", "simpo", "orpo", "kto", "ppo", "rloo", "grpo"]
METHODS: tuple[str, ...] = ("sft", "rm", "dpo", "simpo", "orpo", "kto", "ppo", "rloo", "grpo")
REFERENCE_MODES = ("auto", "precomputed", "adapter", "copy", "none")
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass(frozen=True)
class MethodSpec:
    """How a method uses models and rows.

    Attributes:
        rows_per_example: sequences per example in one forward pass (pairs: 2).
        reference: whether a reference policy is needed (``none`` is refused).
        optional_reference: a reference only for an optional KL term (RLOO, GRPO:
            ``auto`` means none, as the trainers' default KL coefficient is 0).
        online: samples completions (PPO, RLOO, GRPO).
        value_model: trains a value model beside the policy (PPO).
        reward_model: scores samples with a frozen reward model (online methods).
        head: ``causal_lm`` (log-probs over the vocabulary) or ``reward`` (a scalar head).
        one_sample: samples one completion per prompt whatever ``samples`` says (PPO).
        update_epochs: passes over each rollout batch in the trainer's default config.
        right_padded: training rows are right-padded and run without an
            attention mask (``alignkit.data.packing.forward_inputs``).
    """

    rows_per_example: int
    reference: bool
    optional_reference: bool = False
    online: bool = False
    value_model: bool = False
    reward_model: bool = False
    head: Literal["causal_lm", "reward"] = "causal_lm"
    one_sample: bool = False
    update_epochs: int = 1
    right_padded: bool = False


SPECS: dict[str, MethodSpec] = {
    "sft": MethodSpec(1, reference=False, right_padded=True),
    "rm": MethodSpec(2, reference=False, head="reward"),
    "dpo": MethodSpec(2, reference=True, right_padded=True),
    "simpo": MethodSpec(2, reference=False, right_padded=True),
    "orpo": MethodSpec(2, reference=False, right_padded=True),
    "kto": MethodSpec(1, reference=True, right_padded=True),
    "ppo": MethodSpec(1, reference=True, online=True, value_model=True, reward_model=True,
                      one_sample=True, update_epochs=4),
    "rloo": MethodSpec(1, reference=True, optional_reference=True, online=True,
                       reward_model=True),
    "grpo": MethodSpec(1, reference=True, optional_reference=True, online=True,
                       reward_model=True),
}


@dataclass(frozen=True)
class PlanSettings:
    """Everything besides the model and the device that sets a run's memory and time.

    Attributes:
        method: one of :data:`METHODS`.
        reference: where reference log-probs come from (``auto``: ``none`` for
            reference-free methods and for RLOO and GRPO, whose KL term is off by
            default; else ``adapter`` with LoRA, ``precomputed`` offline and
            ``copy`` for PPO).
        dtype: dtype the weights are stored in (``fp32``, ``bf16``, ``fp16``).
        precision: ``bf16`` runs matmuls under autocast; ``fp32`` does not.
        lora_rank: LoRA rank; 0 trains every weight.
        lora_targets: ``all-linear`` or the linear layers' names.
        quantization: ``none``, ``4bit`` (NF4, QLoRA) or ``8bit`` frozen base (needs LoRA).
        batch_size: examples per micro-batch per GPU (a pair is one); online, the
            prompts of one iteration.
        grad_accum: micro-batches per optimiser step; online, the forward passes
            each update's rows are split into.
        seq_len: tokens per row (prompt and response) for offline methods.
        prompt_len: prompt tokens, online methods.
        completion_len: sampled tokens per completion, online methods.
        samples: completions per prompt, online methods.
        gradient_checkpointing: recompute activations in backward.
        lean_activations: the trainers' lean RMSNorm and SwiGLU (``model.lean_activations``),
            for the architectures they apply to.
        optimizer: ``adamw`` or ``adamw8bit``.
        update_in_backward: offline methods, one process, no accumulation: each
            gradient is applied and freed as soon as backward completes it
            (``optim.update_in_backward``).
        zero: ZeRO stage 0-3 (sharding over ``gpus``).
        gpus: data-parallel processes.
        attention: ``sdpa`` or ``eager``.
        padded: batches hold rows of different lengths, so attention gets a
            padding mask (SDPA then keeps a float copy of it in every layer),
            unless the method's rows go right-padded without one.
        on_cpu: the run trains on a CPU, where half-precision passes of at
            most 512 keys take alignkit's matrix-product attention
            (``alignkit.models.attention``); :func:`make_plan` sets it from the device.
        cpu_attention: the trainers may take that attention (``model.cpu_attention``).
        reward_model: online methods score with a reward model (``False``: a
            Python function or the lab's gold reward).
        separate_critic: PPO's critic is its own copy of the policy's starting
            model without the output head (``value.model: separate``), trained
            in full, instead of a value head on the policy.
    """

    method: str
    reference: str = "auto"
    dtype: str = "bf16"
    precision: str = "bf16"
    lora_rank: int = 0
    lora_targets: str | tuple[str, ...] = "all-linear"
    quantization: str = "none"
    batch_size: int = 8
    grad_accum: int = 1
    seq_len: int = 512
    prompt_len: int = 256
    completion_len: int = 256
    samples: int = 4
    gradient_checkpointing: bool = False
    lean_activations: bool = True
    optimizer: str = "adamw"
    update_in_backward: bool = False
    zero: int = 0
    gpus: int = 1
    attention: str = "sdpa"
    padded: bool = True
    reward_model: bool = True
    separate_critic: bool = False
    on_cpu: bool = False
    cpu_attention: bool = True

    @property
    def spec(self) -> MethodSpec:
        return SPECS[self.method]

    @property
    def lora(self) -> bool:
        return self.lora_rank > 0

    @property
    def weight_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def autocast(self) -> bool:
        return self.precision == "bf16"

    @property
    def rows(self) -> int:
        """Sequences of a micro-batch; online, every sampled completion of an iteration."""
        if self.spec.online:
            return self.batch_size * (1 if self.spec.one_sample else self.samples)
        return self.batch_size * self.spec.rows_per_example

    @property
    def train_rows(self) -> int:
        """Sequences in one training forward pass."""
        if self.spec.online:
            return -(-self.rows // self.grad_accum)
        return self.rows

    @property
    def shares_prompts(self) -> bool:
        """RLOO and GRPO run each distinct prompt once per training pass
        (``alignkit.train.prompt_sharing``); they do not with checkpointing or
        several processes."""
        return (self.spec.online and not self.spec.one_sample and self.samples > 1
                and not self.gradient_checkpointing and self.gpus == 1)

    @property
    def masked(self) -> bool:
        """Whether a full training pass gets an attention mask."""
        return self.padded and not self.spec.right_padded

    @property
    def row_len(self) -> int:
        """Tokens per sequence of a training forward pass."""
        return self.prompt_len + self.completion_len if self.spec.online else self.seq_len

    @property
    def reference_mode(self) -> str:
        """``reference`` with ``auto`` settled (see the class docstring)."""
        if not self.spec.reference:
            return "none"
        if self.reference != "auto":
            return self.reference
        if self.spec.optional_reference:
            return "none"
        if self.lora:
            return "adapter"
        return "copy" if self.spec.online else "precomputed"

    def but(self, **changes) -> PlanSettings:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


def _positive(settings: PlanSettings) -> None:
    for name in ("batch_size", "grad_accum", "seq_len", "prompt_len", "completion_len",
                 "samples", "gpus"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(settings, name)}")


def check_settings(settings: PlanSettings) -> PlanSettings:
    """Return ``settings`` when they are consistent.

    Raises:
        ConfigError: an unknown value, or a contradiction (a reference for a
            reference-free method, ``precomputed`` online, an adapter reference
            without LoRA, a quantised base without LoRA, ZeRO on one GPU, updates in
            backward online, with accumulation or over several GPUs).
    """
    s = settings
    choices = {"method": METHODS, "reference": REFERENCE_MODES, "dtype": tuple(DTYPE_BYTES),
               "precision": ("fp32", "bf16"), "quantization": ("none", "4bit", "8bit"),
               "optimizer": ("adamw", "adamw8bit"), "attention": ("sdpa", "eager")}
    for name, allowed in choices.items():
        if getattr(s, name) not in allowed:
            raise ConfigError(f"{name} {getattr(s, name)!r} is not one of {', '.join(allowed)}")
    _positive(s)
    if s.lora_rank < 0 or s.zero not in (0, 1, 2, 3):
        raise ConfigError("lora_rank must be >= 0 and zero one of 0, 1, 2, 3")
    mode = s.reference
    if not s.spec.reference and mode not in ("auto", "none"):
        raise ConfigError(f"reference {mode!r}: method {s.method!r} uses no reference policy")
    if s.spec.reference and not s.spec.optional_reference and mode == "none":
        raise ConfigError(f"reference 'none': method {s.method!r} needs a reference policy")
    if mode == "adapter" and not s.lora:
        raise ConfigError("reference 'adapter' needs LoRA (a LoRA rank above 0)")
    if mode == "precomputed" and s.spec.online:
        raise ConfigError(f"reference 'precomputed' is impossible for {s.method!r}: its "
                          "completions are sampled during training")
    if s.quantization != "none" and not s.lora:
        raise ConfigError(f"a {s.quantization} base cannot be trained directly: it needs LoRA")
    if s.zero and s.gpus < 2:
        raise ConfigError(f"ZeRO stage {s.zero} shards over GPUs: give gpus >= 2")
    if s.update_in_backward and (s.spec.online or s.grad_accum > 1 or s.gpus > 1):
        raise ConfigError("update_in_backward is for offline methods in one process without "
                          "gradient accumulation")
    return s
