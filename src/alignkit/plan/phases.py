"""The phases of a training step and what each holds, for offline and online methods.

Each phase is a mapping from component to bytes; :func:`plan_memory` returns
them all, and the components of the largest (see :mod:`alignkit.plan.memory`
for the formulas of each component).
"""

from __future__ import annotations

from dataclasses import dataclass

from alignkit.plan.architecture import ModelShape
from alignkit.plan.memory import (
    ADAM_TEMPORARIES,
    FP32,
    Memory,
    gradient_bytes,
    logit_chunk_bytes,
    model_bytes,
    nograd_layer_bytes,
    numerics,
    optimizer_bytes,
    policy_activations,
    stored_weight_bytes,
)
from alignkit.plan.settings import PlanSettings

COMPONENTS = ("weights", "gradients", "optimizer", "activations", "logits", "reference",
              "reward_model", "value_model", "kv_cache", "workspace")
Phase = dict[str, int]


@dataclass(frozen=True)
class Logits:
    """Bytes of the logits of one forward pass over ``rows`` sequences.

    Attributes:
        saved: the logits kept for the log-prob backward (fp32 when accelerate
            converts the bf16 output of an autocast forward, else ``C``).
        converted: the bf16 original alive while it is converted to fp32.
        grad: the gradient of the saved logits.
        cast: that gradient cast back to bf16 for the output head's backward.
        chunks: fp32 temporaries of the chunked log-softmax's backward.
    """

    saved: int
    converted: int
    grad: int
    cast: int
    chunks: int


def training_logits(shape: ModelShape, s: PlanSettings, rows: int, seq_len: int) -> Logits:
    """Logits of a training forward pass of the (accelerate-prepared) policy."""
    if shape.head != "causal_lm":
        return Logits(0, 0, 0, 0, 0)
    num = numerics(s)
    elements = rows * seq_len * shape.vocab
    saved = elements * (FP32 if s.autocast else num.compute_bytes)
    lowp = elements * num.compute_bytes if s.autocast else 0
    return Logits(saved, lowp, saved, lowp,
                  logit_chunk_bytes(rows, seq_len, shape.vocab, backward=True))


def nograd_pass(shape: ModelShape, s: PlanSettings, rows: int, seq_len: int, *,
                prepared: bool, logit_positions: int | None = None) -> tuple[int, int]:
    """``(logits, workspace)`` bytes at the fullest moment of a no-grad forward pass.

    Three moments follow one another: inside a layer (its temporaries), the
    output head (logits in the compute dtype, and their fp32 conversion when
    the model is the accelerate-prepared policy under autocast), and the
    chunked log-probs of the kept logits.

    Args:
        rows, seq_len: the sequences passed through the model.
        prepared: the model is the accelerate-prepared policy.
        logit_positions: positions whose logits are computed (all by default;
            online methods keep the completion's only).
    """
    num = numerics(s)
    in_layer = (0, nograd_layer_bytes(shape, num, rows * seq_len))
    if shape.head != "causal_lm":
        return in_layer
    positions = logit_positions or seq_len
    elements = rows * positions * shape.vocab
    lowp = elements * num.compute_bytes
    converted = prepared and s.autocast
    kept = elements * FP32 if converted else lowp
    at_head = (lowp + kept if converted else lowp, 0)
    at_logps = (kept, logit_chunk_bytes(rows, positions, shape.vocab, backward=False))
    return max(in_layer, at_head, at_logps, key=sum)


def largest(*phases: Phase) -> Phase:
    """The phase (of several moments) with the largest total."""
    return max(phases, key=lambda phase: sum(phase.values()))


def offline_phases(shape: ModelShape, s: PlanSettings) -> dict[str, Phase]:
    """Phases of ``sft``, ``rm`` and the preference family (dpo, simpo, orpo, kto)."""
    policy = model_bytes(shape, s, trains=True)
    grads = gradient_bytes(policy, s)
    mode = s.reference_mode
    base = {"weights": stored_weight_bytes(policy, s), "optimizer": optimizer_bytes(policy, s)}
    if mode == "copy":
        base["reference"] = model_bytes(shape, s, trains=False).weights
    live = dict(base, gradients=grads if s.grad_accum > 1 else 0,
                activations=policy_activations(shape, s))
    logits = training_logits(shape, s, s.rows, s.row_len)
    phases = {"forward": dict(live, logits=logits.saved + logits.converted)}
    if mode in ("adapter", "copy"):
        ref_logits, ref_work = nograd_pass(shape, s, s.rows, s.row_len, prepared=mode == "adapter")
        phases["reference pass"] = dict(live, logits=logits.saved,
                                        reference=base.get("reference", 0) + ref_logits,
                                        workspace=ref_work)
    head_trains = not s.lora or shape.head == "reward"
    head_grad = shape.head_params * policy.param_bytes if head_trains and s.grad_accum == 1 else 0
    adam_work = ADAM_TEMPORARIES * policy.largest * policy.param_bytes
    if s.update_in_backward:  # one gradient at a time, applied (with its temporaries) and freed
        head_grad = policy.largest * policy.param_bytes
    phases["backward"] = largest(
        dict(live, logits=logits.saved + logits.grad, workspace=logits.chunks),
        dict(live, logits=logits.grad + logits.cast, gradients=live["gradients"] + head_grad,
             workspace=adam_work if s.update_in_backward else 0))
    if not s.update_in_backward:
        phases["optimizer step"] = dict(base, gradients=grads, workspace=adam_work)
    if mode == "precomputed":  # both sequences of each example, before training starts
        ref_logits, ref_work = nograd_pass(shape, s, 2 * s.batch_size, s.row_len, prepared=False)
        phases["precompute"] = {"weights": base["weights"], "reference": ref_logits,
                                "workspace": ref_work}
    if s.method == "kto":  # the mismatched rows' no-grad pre-pass of every step
        kl_logits, kl_work = nograd_pass(shape, s, s.batch_size, s.row_len, prepared=True)
        phases["KL pre-pass"] = dict(base, gradients=live["gradients"], logits=kl_logits,
                                     workspace=kl_work)
    return phases


def plan_memory(shape: ModelShape, s: PlanSettings, *, reward_shape: ModelShape | None = None,
                value_shape: ModelShape | None = None) -> Memory:
    """Every phase of a step of ``s.method`` on ``shape``, and the largest one's components."""
    if s.spec.online:
        from alignkit.plan.online import online_phases

        phases = online_phases(shape, s, reward_shape or shape, value_shape)
    else:
        phases = offline_phases(shape, s)
    totals = {name: sum(parts.values()) for name, parts in phases.items()}
    peak = max(totals, key=totals.__getitem__)
    components = {name: phases[peak].get(name, 0) for name in COMPONENTS}
    return Memory(components, totals, peak)
