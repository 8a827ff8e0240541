"""A rough time per optimiser step, from FLOPs and a stated device throughput.

FLOPs per token (Kaplan et al. 2020, section 2.1; the attention term is that
of Chowdhery et al. 2022, PaLM, appendix B):

* training: ``6 N + 12 L H Q T`` (forward 2N, backward 4N); with LoRA the
  frozen weights need no weight gradient, so ``4 N + 12 L H Q T``; gradient
  checkpointing adds one more forward, ``2 N + 4 L H Q T``;
* a no-grad pass (reference, reward model, old log-probs): ``2 N + 4 L H Q T``;

where ``N`` counts the weights that take part in matrix products (input
embeddings are a lookup and left out; a tied output head is counted), ``L``
layers, ``H`` heads of size ``Q``, ``T`` tokens per sequence. Seconds are
FLOPs divided by ``throughput x efficiency``. Generation is counted apart:
it is usually bound by reading the weights once per sampled token, so its
time is the larger of its FLOPs time and ``completion tokens x weight bytes /
memory bandwidth``.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignkit.plan.architecture import ModelShape
from alignkit.plan.catalogue import Device
from alignkit.plan.settings import PlanSettings

DEFAULT_EFFICIENCY = 0.4
"""Share of the peak throughput a training step reaches (model FLOPs utilisation)."""


@dataclass(frozen=True)
class StepTime:
    """FLOPs and estimated seconds of one optimiser step on one GPU.

    Attributes:
        flops: FLOPs by part (``training``, ``reference``, ``generation``, ...).
        tokens: training tokens per step per GPU.
        tflops: the device's stated peak (``None``: unknown, no seconds).
        efficiency: the assumed share of that peak.
        generation_seconds: time of sampling (online methods), or ``None``.
        seconds: the whole step, or ``None`` without a throughput.
    """

    flops: dict[str, float]
    tokens: int
    tflops: float | None
    efficiency: float
    generation_seconds: float | None
    seconds: float | None

    @property
    def assumption(self) -> str:
        if self.tflops is None:
            return ("no throughput stated for this device: give --tflops to get seconds; "
                    "FLOPs: 6N per trained token (4N with LoRA), 2N per no-grad token")
        return (f"{self.tflops:g} TFLOPS peak bf16 x {self.efficiency:.0%} efficiency; "
                "6N FLOPs per trained token (4N with LoRA), 2N per no-grad token")


def matmul_params(shape: ModelShape) -> int:
    """N: weights used in matrix products (input embeddings out, a tied head in)."""
    tied_head = shape.head_params if shape.params.tied else 0
    return shape.params.total - shape.params.embeddings + tied_head


def _attention(shape: ModelShape, seq_len: int) -> int:
    """Forward FLOPs per token of the attention scores and values (PaLM's 4 L H Q T)."""
    return 4 * shape.layers * shape.q_dim * seq_len


def train_flops_per_token(shape: ModelShape, s: PlanSettings, seq_len: int) -> int:
    n = matmul_params(shape)
    flops = (4 if s.lora else 6) * n + 3 * _attention(shape, seq_len)
    if s.gradient_checkpointing:
        flops += 2 * n + _attention(shape, seq_len)
    return flops


def nograd_flops_per_token(shape: ModelShape, seq_len: int) -> int:
    return 2 * matmul_params(shape) + _attention(shape, seq_len)


def critic_flops_per_token(shape: ModelShape, s: PlanSettings) -> int:
    """A separate PPO critic (no output head, trained in full): its no-grad pass for the
    old values, then one training pass per update epoch."""
    n, attention = matmul_params(shape) - shape.head_params, _attention(shape, s.row_len)
    train = 6 * n + 3 * attention
    if s.gradient_checkpointing:
        train += 2 * n + attention
    return 2 * n + attention + s.spec.update_epochs * train


def _seconds(flops: float, device: Device, efficiency: float) -> float | None:
    return None if device.tflops is None else flops / (device.tflops * 1e12 * efficiency)


def offline_flops(shape: ModelShape, s: PlanSettings) -> dict[str, float]:
    tokens = s.rows * s.row_len * s.grad_accum
    parts = {"training": tokens * train_flops_per_token(shape, s, s.row_len)}
    if s.reference_mode in ("adapter", "copy"):
        parts["reference"] = tokens * nograd_flops_per_token(shape, s.row_len)
    if s.method == "kto":
        parts["KL pre-pass"] = 2 * tokens * nograd_flops_per_token(shape, s.row_len)
    return parts


def online_flops(shape: ModelShape, s: PlanSettings, reward: ModelShape) -> dict[str, float]:
    """One iteration: sampling, three no-grad passes, and the trainer's update epochs."""
    tokens = s.rows * s.row_len
    n = matmul_params(shape)
    generation = 2 * n * (s.batch_size * s.prompt_len + s.rows * s.completion_len)
    parts = {"generation": float(generation),
             "old log-probs": tokens * nograd_flops_per_token(shape, s.row_len),
             "reference": tokens * nograd_flops_per_token(shape, s.row_len),
             "reward model": tokens * nograd_flops_per_token(reward, s.row_len),
             "training": s.spec.update_epochs * tokens
             * train_flops_per_token(shape, s, s.row_len)}
    if s.separate_critic and s.spec.value_model:
        parts["critic"] = tokens * critic_flops_per_token(shape, s)
    return parts


def estimate_step_time(shape: ModelShape, s: PlanSettings, device: Device, *,
                       weight_bytes: int, reward: ModelShape | None = None,
                       efficiency: float = DEFAULT_EFFICIENCY) -> StepTime:
    """FLOPs and seconds of one optimiser step (online: one iteration) per GPU.

    ``weight_bytes``: the policy's, read once per sampled token.
    """
    if s.spec.online:
        flops = online_flops(shape, s, reward or shape)
        tokens = s.rows * s.row_len
    else:
        flops = offline_flops(shape, s)
        tokens = s.rows * s.row_len * s.grad_accum
    generation = None
    if "generation" in flops and device.tflops is not None:
        compute = _seconds(flops["generation"], device, efficiency)
        reads = s.completion_len * weight_bytes / device.bandwidth \
            if device.bandwidth else 0.0
        generation = max(compute, reads)
    rest = _seconds(sum(v for k, v in flops.items() if k != "generation"), device, efficiency)
    seconds = None if rest is None else rest + (generation or 0.0)
    return StepTime(flops, tokens, device.tflops, efficiency, generation, seconds)
