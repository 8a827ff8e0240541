"""Changes that make a run fit, each re-planned, ranked from cheapest to dearest.

Every candidate change is planned again from scratch. Those that fit come
first; among them, changes that keep the result (a different reference
strategy, gradient checkpointing, a smaller micro-batch with more
accumulation, ZeRO sharding) before those that change it numerically (bf16
weights, 8-bit AdamW) before those that change the training itself (LoRA, a
4-bit base, shorter sequences, a reference-free loss); within a tier, the
step with fewer FLOPs first (the FLOPs estimate does not need the device's
throughput), then the smaller peak. When no single change fits, the changes
are combined in that order until the run fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from alignkit.errors import ConfigError
from alignkit.plan.settings import PlanSettings

SAME_RESULT, NUMERICS, DIFFERENT_TRAINING = 0, 1, 2
DEFAULT_LORA_RANK = 16
MIN_SEQ_LEN = 64


@dataclass(frozen=True)
class Change:
    """A candidate: what it says, what it costs, its tier, and the settings it gives."""

    change: str
    effect: str
    tier: int
    settings: PlanSettings


def _reference_changes(s: PlanSettings) -> Iterator[Change]:
    mode = s.reference_mode
    if mode == "copy" and s.lora:
        yield Change("reference: adapter (the policy with its LoRA adapter switched off)",
                     "same result; no second model", SAME_RESULT, s.but(reference="adapter"))
    if mode in ("copy", "adapter") and not s.spec.online:
        yield Change("reference: precomputed (one no-grad pass before training)",
                     "same result; reference log-probs cached in the run", SAME_RESULT,
                     s.but(reference="precomputed"))


def _memory_changes(s: PlanSettings) -> Iterator[Change]:
    if not s.gradient_checkpointing:
        yield Change("gradient checkpointing on", "same result; about a third more compute",
                     SAME_RESULT, s.but(gradient_checkpointing=True))
    for batch in sorted({s.batch_size // 2, 1} - {0, s.batch_size}, reverse=True):
        factor = s.batch_size // batch
        yield Change(f"micro-batch {batch} with gradient accumulation {s.grad_accum * factor}",
                     "same effective batch; more, smaller passes", SAME_RESULT,
                     s.but(batch_size=batch, grad_accum=s.grad_accum * factor))
    if s.gpus > 1 and s.zero < 3:
        yield Change(f"ZeRO stage {s.zero + 1}", "same result; more communication",
                     SAME_RESULT, s.but(zero=s.zero + 1))
    if s.dtype == "fp32":
        yield Change("bf16 weights", "small numerical change", NUMERICS, s.but(dtype="bf16"))
    if s.optimizer == "adamw" and not s.lora:
        yield Change("8-bit AdamW", "small numerical change; needs bitsandbytes", NUMERICS,
                     s.but(optimizer="adamw8bit"))
    if not (s.update_in_backward or s.lora or s.spec.online or s.grad_accum > 1 or s.gpus > 1):
        yield Change("optim.update_in_backward (with optim.max_grad_norm 0)",
                     "the same updates without gradient clipping; no gradients held",
                     NUMERICS, s.but(update_in_backward=True))


def _training_changes(s: PlanSettings) -> Iterator[Change]:
    if not s.lora:
        yield Change(f"LoRA r{DEFAULT_LORA_RANK} on all linear layers",
                     "trains adapters only", DIFFERENT_TRAINING,
                     s.but(lora_rank=DEFAULT_LORA_RANK, lora_targets="all-linear",
                           reference="auto" if s.spec.reference else s.reference))
    if s.quantization == "none":
        lora = s if s.lora else s.but(lora_rank=DEFAULT_LORA_RANK, lora_targets="all-linear",
                                      reference="auto" if s.spec.reference else s.reference)
        yield Change("4-bit base (QLoRA)" + ("" if s.lora else f" with LoRA r{DEFAULT_LORA_RANK}"),
                     "frozen NF4 base; needs CUDA and bitsandbytes", DIFFERENT_TRAINING,
                     lora.but(quantization="4bit"))
    if s.spec.online and s.completion_len >= 2 * MIN_SEQ_LEN:
        yield Change(f"completions of {s.completion_len // 2} tokens", "shorter samples",
                     DIFFERENT_TRAINING, s.but(completion_len=s.completion_len // 2))
    elif not s.spec.online and s.seq_len >= 2 * MIN_SEQ_LEN:
        yield Change(f"sequences of {s.seq_len // 2} tokens", "longer rows are cut",
                     DIFFERENT_TRAINING, s.but(seq_len=s.seq_len // 2))
    if s.method in ("dpo", "kto"):
        yield Change("a reference-free loss (SimPO)", "a different objective, no reference",
                     DIFFERENT_TRAINING, s.but(method="simpo", reference="auto"))


def candidate_changes(s: PlanSettings) -> list[Change]:
    """Every change worth planning for ``s``, in no particular order."""
    return [*_reference_changes(s), *_memory_changes(s), *_training_changes(s)]


def _rank_key(suggestion, base_flops: float):
    slowdown = round(suggestion.flops / base_flops, 3) if base_flops else 0.0
    return (not suggestion.fits, suggestion.tier, slowdown, suggestion.total)


def suggest(plan, *, efficiency: float):
    """Ranked :class:`~alignkit.plan.planner.Suggestion` objects for a plan that does not fit.

    Returns an empty list when the plan fits. Only changes that lower the peak
    are kept.
    """
    from alignkit.plan.planner import Suggestion, make_plan

    if plan.fits:
        return []

    def evaluate(change: Change) -> Suggestion:
        new = make_plan(plan.model, change.settings, plan.device,
                        reward_model=plan.reward_model, advise=False, efficiency=efficiency)
        return Suggestion(change.change, change.effect, change.tier, change.settings,
                          new.total, new.fits, sum(new.time.flops.values()), new.time.seconds)

    base_flops = sum(plan.time.flops.values())
    found = [f for f in map(evaluate, candidate_changes(plan.settings)) if f.total < plan.total]
    ranked = sorted(found, key=lambda f: _rank_key(f, base_flops))
    if ranked and not any(f.fits for f in ranked):
        combined = _combine(plan, ranked, evaluate)
        if combined is not None:
            ranked.insert(0, combined)
    return ranked


def _combine(plan, ranked, evaluate):
    """Apply the ranked changes one after another until the run fits (``None`` if never)."""
    settings, names, last = plan.settings, [], None
    for suggestion in sorted(ranked, key=lambda f: (f.tier, f.total)):
        changed = {k: v for k, v in vars(suggestion.settings).items()
                   if getattr(plan.settings, k) != v}
        trial = settings.but(**changed)
        if trial == settings:
            continue
        try:
            result = evaluate(Change(suggestion.change, suggestion.effect, suggestion.tier,
                                     trial))
        except ConfigError:  # two changes that contradict each other
            continue
        if result.total >= (last.total if last else plan.total):
            continue
        settings, last = trial, result
        names.append(suggestion.change)
        if result.fits:
            effect = "; ".join(sorted({f.effect for f in ranked if f.change in names}))
            tier = max(f.tier for f in ranked if f.change in names)
            return replace(result, change=" + ".join(names), effect=effect, tier=tier)
    return None
