"""Config sections shared by the training commands (``sft``, ``rm``, ``dpo``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from alignkit.config import Section

Tracker = Literal["tensorboard"]
PLAN_HELP = (
    "Before loading the model, print the memory planner's prediction of the peak against the "
    "device's memory (and record it in events.jsonl), with a warning and the top suggestion "
    "when it does not fit. Never stops the run.")
TRACKERS_HELP = (
    "Experiment trackers (through accelerate) that receive the metrics.jsonl scalars too: "
    "[tensorboard] writes RUN/tensorboard/ (needs pip install tensorboard).")


class ModelSettings(Section):
    """Which model to train and how to hold it in memory."""

    path: str | None = Field(None, description=(
        "Local model directory in Hugging Face format, or a run directory (its final/ is "
        "used). Never downloaded. Give this or init_from_config."))
    init_from_config: str | None = Field(None, description=(
        "A config.json (or a directory holding one) to build a randomly initialised model "
        "from, for tests and benchmarks; needs model.tokenizer."))
    tokenizer: str | None = Field(None, description=(
        "Tokenizer directory; defaults to model.path."))
    dtype: Literal["fp32", "bf16"] = Field("fp32", description=(
        "dtype the weights are stored in. fp32 with train.precision=bf16 is mixed precision."))
    gradient_checkpointing: bool = Field(False, description=(
        "Recompute activations during backward: less memory, about a third more compute."))
    lean_activations: bool = Field(True, description=(
        "Llama, Mistral and Qwen2 models: RMSNorm and SwiGLU keep only what their backward "
        "needs (a fifth to a quarter less activation memory, the same forward values, no "
        "extra matrix work). Other architectures are left as they are."))
    cpu_attention: bool = Field(True, description=(
        "Models on SDPA attention: bf16 training passes of at most 512 tokens on a CPU take "
        "alignkit's matrix-product attention (faster there than SDPA's CPU kernel; keeps the "
        "bf16 attention probabilities), and for Llama, Mistral and Qwen2 a causal pass "
        "without mask or cache runs as one function from the projections to the output "
        "projection. Every other pass runs SDPA as before."))
    trust_remote_code: bool = Field(False, description=(
        "Allow modelling code shipped inside the checkpoint to run. Off by default."))
    allow_pickle: bool = Field(False, description=(
        "Allow .bin/.pt (pickle) weights, which can run code when loaded. Off by default."))
    load_in_4bit: bool = Field(False, description=(
        "QLoRA: keep the frozen base in 4-bit NF4 (needs CUDA and bitsandbytes, and peft)."))

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.init_from_config is None):
            raise ValueError("give exactly one of model.path and model.init_from_config")
        if self.init_from_config is not None and self.tokenizer is None:
            raise ValueError("model.init_from_config needs model.tokenizer (a tokenizer "
                             "directory)")
        return self


class PeftSettings(Section):
    """LoRA adapters (through peft). With LoRA only the adapters train."""

    enabled: bool = Field(False, description="Train LoRA adapters instead of all weights.")
    r: int = Field(16, gt=0, le=1024, description="Adapter rank.")
    alpha: float = Field(32.0, gt=0, description="Adapter scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | Literal["all-linear"] = Field("all-linear", description=(
        "Module names to adapt, e.g. [q_proj, v_proj], or all-linear."))
    adapter: str | None = Field(None, description=(
        "An existing adapter directory to continue training from (instead of a fresh one)."))


class DataSettings(Section):
    """Training and evaluation data."""

    train: str = Field(description="Training data file or datasets directory (local path).")
    eval: str | None = Field(None, description="Held-out evaluation data (same format).")
    eval_fraction: float = Field(0.0, ge=0, lt=1, description=(
        "When data.eval is not given, hold out this share of the training rows for evaluation."))
    format: Literal["jsonl", "json", "csv", "parquet", "hf"] | None = Field(None, description=(
        "File format; detected from the suffix when not given."))
    map: dict[str, str] = Field(default_factory=dict, description=(
        "Column mapping from schema field to the file's column, e.g. {prompt: question}."))
    mode: Literal["strict", "skip"] = Field("strict", description=(
        "strict: stop on the first bad rows and list them; skip: drop them, count them by "
        "reason and write them to a rejects file in the run directory."))
    max_length: int = Field(512, gt=1, description="Longest tokenised row (prompt + response).")
    max_prompt_length: int | None = Field(None, gt=0, description=(
        "Longest prompt part; longer prompts keep their end. Default: no separate limit."))


class OptimSettings(Section):
    """AdamW and its learning-rate schedule."""

    lr: float = Field(1e-5, gt=0, le=1, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay (AdamW).")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam betas.")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")
    schedule: Literal["constant", "linear", "cosine"] = Field("linear", description=(
        "Decay after warm-up: none, linear to zero, or cosine to zero."))
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm; 0 disables.")


class OfflineOptimSettings(OptimSettings):
    """The ``optim`` section of ``sft``, ``rm`` and ``dpo``."""

    update_in_backward: bool = Field(False, description=(
        "Apply AdamW to each weight tensor as soon as backward completes its gradient, then "
        "free that gradient, so the gradients of the whole model never exist at once: saves "
        "about the trained weights' size in memory, with the same updates. Needs "
        "train.grad_accum 1, optim.max_grad_norm 0 and a single process."))


class TrainSettings(Section):
    """Batching, length, precision and bookkeeping of a run."""

    batch_size: int = Field(8, gt=0, description=(
        "Examples per micro-batch per process (pairs count once for preference data)."))
    grad_accum: int = Field(1, gt=0, description="Micro-batches accumulated per optimiser step.")
    epochs: int = Field(1, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimiser "
                                                          "steps (overrides epochs).")
    seed: int = Field(0, ge=0, description="Seeds initialisation, data order and dropout.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description=(
        "Compute precision: bf16 runs matmuls under autocast (fast on CPUs with AVX-512 "
        "BF16 or AMX)."))
    log_every: int = Field(10, gt=0, description="Write a metrics row every N steps.")
    eval_every: int = Field(0, ge=0, description="Evaluate on held-out data every N steps; "
                                                 "0 only at the end.")
    save_every: int = Field(100, gt=0, description="Write a checkpoint every N steps.")
    keep_last: int = Field(2, gt=0, description="Checkpoints kept on disk.")
    nan_abort_after: int = Field(5, gt=0, description=(
        "Stop after this many consecutive steps with a NaN/Inf loss or gradient."))
    plan: bool = Field(True, description=PLAN_HELP)
    trackers: list[Tracker] = Field(default_factory=list, description=TRACKERS_HELP)


class OfflineConfig(Section):
    """Base of the ``sft``, ``rm`` and ``dpo`` configs: checks across ``optim`` and ``train``."""

    @model_validator(mode="after")
    def _update_in_backward_fits(self):
        optim, train = self.optim, self.train
        if not optim.update_in_backward:
            return self
        if train.grad_accum > 1:
            raise ValueError(
                f"optim.update_in_backward needs train.grad_accum 1 (it is {train.grad_accum}): "
                "each gradient is applied as soon as one micro-batch's backward completes it")
        if optim.max_grad_norm:
            raise ValueError(
                f"optim.update_in_backward needs optim.max_grad_norm 0 (it is "
                f"{optim.max_grad_norm}): clipping scales by the norm of every gradient, and "
                "the first are applied before the last exist")
        return self
