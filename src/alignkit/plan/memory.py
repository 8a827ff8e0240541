"""Peak memory of a training run: the components, and the phase where they add up the most.

Persistent parts live for the whole run; the rest exist only during one phase
of a step. The peak is the largest phase total:

* ``precompute``: the one no-grad pass that precomputes reference log-probs
  (before the optimiser exists);
* ``forward``: weights, optimiser states, the activations of a micro-batch,
  its saved logits and whatever no-grad pass runs beside them (the reference's
  logits, the conversion of bf16 logits to fp32);
* ``backward``: the same activations with the logits' gradient, and the first
  gradients (the output head's);
* ``optimizer step``: weights, all gradients, optimiser states;
* ``generation`` (online methods): every model's weights and the KV cache.

Bytes per parameter (Rajbhandari et al. 2020, ZeRO, section 3.1): the weights
in their dtype, gradients in the trained parameters' dtype, AdamW's two
moments in the parameters' dtype (``torch.optim.AdamW`` keeps them like the
parameter) or 8-bit AdamW's two 1-byte moments with an fp32 scale per 256
values (Dettmers et al. 2022). fp32 weights trained under bf16 autocast cost
4 + 4 + 8 = 16 bytes per parameter, the ZeRO paper's mixed-precision figure,
plus the 2-byte bf16 copies autocast keeps while a step runs. ZeRO stage 1
divides optimiser states by the GPU count, stage 2 also gradients, stage 3
also weights. A QLoRA base keeps its decoder layers' linear weights in NF4
with double quantisation: 4 + 8/64 + 32/(64·256) bits per weight (Dettmers et
al. 2023, QLoRA, section 3), the rest in fp32 as peft's
``prepare_model_for_kbit_training`` leaves them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alignkit.plan.activations import (
    FP32,
    MATMUL_MAX_KEYS,
    Numerics,
    Trainable,
    activation_bytes,
    head_copy_bytes,
    weight_copy_bytes,
)
from alignkit.plan.architecture import ModelShape, adapted_linears, lora_parameters
from alignkit.plan.settings import PlanSettings

NF4_BYTES = (4 + 8 / 64 + 32 / (64 * 256)) / 8
INT8_BYTES = 1.0
ADAMW8BIT_BYTES = 2 + 2 * FP32 / 256
"""Two 1-byte moments and one fp32 scale per block of 256 values for each."""
ADAM_TEMPORARIES = 2
"""Tensors the size of one parameter that a single-tensor AdamW update allocates at once."""
LOGIT_CHUNK_ELEMENTS = 1 << 22
"""Logits per chunk of ``alignkit.losses.logps`` (a fp32 log-softmax chunk is 16 MiB)."""


@dataclass(frozen=True)
class ModelBytes:
    """One model's persistent memory and how it trains.

    Attributes:
        weights: bytes of its weights (base, quantised parts and adapters).
        trainable: parameters that train (0 for a frozen model).
        param_bytes: bytes per trained parameter (and per gradient element).
        largest: elements of the largest trained tensor.
    """

    weights: int
    trainable: int
    param_bytes: int
    largest: int


@dataclass(frozen=True)
class Memory:
    """The result: components at the peak phase and every phase's total.

    Attributes:
        components: bytes by component name at the peak phase (weights,
            gradients, optimizer, activations, logits, reference, reward_model,
            value_model, kv_cache, workspace).
        phases: the total of each phase.
        peak_phase: the phase with the largest total.
    """

    components: dict[str, int]
    phases: dict[str, int]
    peak_phase: str

    @property
    def peak(self) -> int:
        return self.phases[self.peak_phase]


def trainable_view(shape: ModelShape, s: PlanSettings) -> Trainable:
    """Which weights of ``shape`` train under ``s`` (a reward head always trains)."""
    if not s.lora:
        return Trainable.everything()
    names = frozenset(lin.name for lin in adapted_linears(shape, s.lora_targets))
    return Trainable(full=False, adapted=names, rank=s.lora_rank, head=shape.head == "reward")


def numerics(s: PlanSettings) -> Numerics:
    """Element sizes of a forward pass; a quantised base keeps its other weights in fp32."""
    weight_bytes = FP32 if s.quantization != "none" else s.weight_bytes
    return Numerics(weight_bytes, s.autocast, four_bit=s.quantization == "4bit")


def model_bytes(shape: ModelShape, s: PlanSettings, *, trains: bool) -> ModelBytes:
    """Weights of ``shape`` stored as ``s`` says, and what of it trains."""
    total = shape.params.total
    if s.quantization == "none":
        weights = total * s.weight_bytes
    else:
        quantised = shape.linear_params
        per_weight = NF4_BYTES if s.quantization == "4bit" else INT8_BYTES
        row_scales = 0 if s.quantization == "4bit" else \
            FP32 * shape.layers * sum(lin.out_features for lin in shape.linears)
        weights = int(quantised * per_weight) + row_scales + (total - quantised) * FP32
    if not s.lora:
        return ModelBytes(weights, total if trains else 0, s.weight_bytes, shape.largest_param)
    adapters = lora_parameters(shape, s.lora_rank, s.lora_targets)
    # A reward head is trained in full beside the adapters (peft keeps a copy of it).
    head = shape.head_params if shape.head == "reward" else 0
    biggest = max((s.lora_rank * max(lin.in_features, lin.out_features)
                   for lin in adapted_linears(shape, s.lora_targets)), default=0)
    return ModelBytes(weights + adapters * FP32 + head * s.weight_bytes,
                      (adapters + head) if trains else 0, FP32, biggest)


def optimizer_bytes(model: ModelBytes, s: PlanSettings) -> int:
    """AdamW's moments (two per trained parameter), sharded by ZeRO stage >= 1."""
    per_param = ADAMW8BIT_BYTES if s.optimizer == "adamw8bit" else 2 * model.param_bytes
    return int(model.trainable * per_param / (s.gpus if s.zero >= 1 else 1))


def gradient_bytes(model: ModelBytes, s: PlanSettings) -> int:
    """One gradient per trained parameter, sharded by ZeRO stage >= 2."""
    return model.trainable * model.param_bytes // (s.gpus if s.zero >= 2 else 1)


def stored_weight_bytes(model: ModelBytes, s: PlanSettings) -> int:
    """Weights held per GPU (ZeRO stage 3 shards them)."""
    return model.weights // (s.gpus if s.zero == 3 else 1)


def logit_chunk_bytes(rows: int, seq_len: int, vocab: int, *, backward: bool) -> int:
    """fp32 temporaries of the chunked log-prob computation (see ``alignkit.losses.logps``).

    One chunk-sized result is alive, plus the previous chunk's when there are
    several chunks (the loop variable still holds it); the forward pass also
    copies a slice that spans several rows into a contiguous chunk before
    ``log_softmax`` (the backward's ``softmax`` reads the slice as it is).
    """
    positions = max(1, LOGIT_CHUNK_ELEMENTS // max(1, rows * vocab))
    predicted = max(1, seq_len - 1)
    chunk = FP32 * rows * vocab * min(positions, predicted)
    count = 1 + (predicted > positions) + (0 if backward else rows > 1)
    return count * chunk


def nograd_layer_bytes(shape: ModelShape, num: Numerics, tokens: int) -> int:
    """Largest set of tensors alive inside one layer of a no-grad forward pass (estimate).

    Inside the MLP: the residual, its normalised copy, and three ``i``-wide
    tensors (up, act(gate) and their product).
    """
    return tokens * (2 * num.weight_bytes * shape.hidden + 3 * num.compute_bytes
                     * shape.intermediate)


def critic_bytes(shape: ModelShape, s: PlanSettings) -> ModelBytes:
    """A separate critic: ``shape`` without its output head, in the weights' dtype, all trained."""
    params = shape.params.total - (0 if shape.params.tied else shape.head_params)
    return ModelBytes(params * s.weight_bytes, params, s.weight_bytes, shape.largest_param)


def _trained_pass(shape: ModelShape, s: PlanSettings, num: Numerics, train: Trainable, *,
                  weight_copies: bool = True) -> int:
    """Activations of one training forward pass of ``shape``, plus its autocast weight copies
    (the output head's excluded), with the lean functions where the trainers apply them."""
    num = replace(num, lean=s.lean_activations and shape.lean_ops)
    acts = _pass_activations(shape, s, num, train)
    if not weight_copies:
        return acts
    layers = 1 if s.gradient_checkpointing else None
    return acts + weight_copy_bytes(shape, num, train, layers=layers)


def _pass_activations(shape: ModelShape, s: PlanSettings, num: Numerics,
                      train: Trainable) -> int:
    """Activations of one training pass; shared prompts count once per group.

    With shared prompts the prompts but their last token run once, and every
    row runs its last prompt token and its completion on top of their cache.
    That second pass always has an attention mask (its queries are fewer than
    its keys), so SDPA expands grouped key/value heads, as the matrix-product
    attention always does, and each row's attention keeps its own copy of the
    prompt's keys and values.
    """
    options = dict(checkpointing=s.gradient_checkpointing, eager=s.attention == "eager")
    if not s.shares_prompts:
        return activation_bytes(shape, num, train, rows=s.train_rows, seq_len=s.row_len,
                                padded=s.masked, matmul=_matmul(s, num, s.row_len),
                                fused=shape.causal_attention, **options)
    prompts = -(-s.train_rows // s.samples)
    prompt_part = activation_bytes(shape, num, train, rows=prompts, seq_len=s.prompt_len - 1,
                                   padded=s.padded, matmul=_matmul(s, num, s.prompt_len - 1),
                                   **options)
    row_part = activation_bytes(shape, num, train, rows=s.train_rows,
                                seq_len=s.completion_len + 1, key_len=s.row_len, padded=True,
                                matmul=_matmul(s, num, s.row_len), **options)
    width = shape.q_dim if shape.kv_heads < shape.heads else shape.kv_dim
    kv_copies = s.train_rows * (s.prompt_len - 1) * shape.layers * 2 * width * num.compute_bytes
    return prompt_part + row_part + kv_copies


def _matmul(s: PlanSettings, num: Numerics, keys: int) -> bool:
    """Whether a pass attending over ``keys`` positions takes the matrix-product attention."""
    return (s.on_cpu and s.cpu_attention and s.attention == "sdpa" and num.compute_bytes < FP32
            and 1 < keys <= MATMUL_MAX_KEYS)


def critic_activations(shape: ModelShape, s: PlanSettings) -> int:
    """Activations and autocast weight copies of a separate critic's training pass.

    Every weight of the backbone (not quantised) trains; its last hidden state
    feeds the value head (counted like a trained output head's input).
    """
    return _trained_pass(shape, s, Numerics(s.weight_bytes, s.autocast), Trainable.everything())


def policy_activations(shape: ModelShape, s: PlanSettings) -> int:
    """Activations and autocast weight copies of one training micro-batch."""
    num = numerics(s)
    if s.quantization == "8bit":  # bitsandbytes keeps the quantised weight, no dequantised copy
        return _trained_pass(shape, s, num, trainable_view(shape, s), weight_copies=False)
    return (_trained_pass(shape, s, num, trainable_view(shape, s))
            + head_copy_bytes(shape, num))
