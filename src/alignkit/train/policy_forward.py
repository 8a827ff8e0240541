"""One forward pass over a stacked batch, and the loss of one micro-batch from its log-probs.

:func:`forward_logps` runs every row of a collated batch (a pair batch's
chosen and rejected rows together) through the model once and returns each
row's summed response log-probability and its response-token count; the
length-averaged log-probability is their ratio. :func:`preference_loss` turns
those, and the reference's, into the loss of one micro-batch of the chosen
objective, normalised over the whole accumulated step (:class:`StepTotals`),
so that micro-batch losses add up to the loss of one large batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from alignkit.data.packing import forward_inputs
from alignkit.losses import PREFERENCE_LOSSES, sequence_logps
from alignkit.train.scored_logits import scored_logits

Batch = dict[str, torch.Tensor]
Stats = dict[str, tuple[float, float]]
"""Metric name -> (weighted sum, weight) over a micro-batch; a step's metric is sum / weight."""

SUMMED_PAIR_LOSSES = frozenset({"dpo", "cdpo", "robust", "hinge"})
"""Pair losses on per-sequence sums of log-probs (the others use length averages)."""


@dataclass(frozen=True)
class SequenceLogps:
    """Per-row response log-probabilities of a batch of N rows.

    Attributes:
        sums: (N,) float32, the summed log-probability of each row's response tokens.
        counts: (N,) long, the number of response tokens scored in each row.
    """

    sums: torch.Tensor
    counts: torch.Tensor

    @property
    def averages(self) -> torch.Tensor:
        """(N,) length-averaged log-probabilities (0 for a row with no response token)."""
        return self.sums / self.counts.clamp_min(1)


@dataclass(frozen=True)
class StepTotals:
    """Quantities of the whole accumulated step (all micro-batches, all processes).

    Attributes:
        examples: pairs, ranked sets or unpaired rows in the step: every
            per-example loss is divided by it.
        nll_tokens: response tokens of the supervised part (ORPO's chosen
            responses, RRHF's best-scored ones), which is token-normalised.
        kl_ref: KTO's reference point ``z``, the mean of policy minus
            reference log-prob over the step's mismatched (KL) rows.
    """

    examples: float
    nll_tokens: float = 1.0
    kl_ref: float = 0.0


def scored_counts(batch: Batch) -> torch.Tensor:
    """(N,) response tokens scored per row (position 0 is never predicted)."""
    return batch["loss_mask"][:, 1:].sum(-1)


def forward_logps(model, batch: Batch) -> SequenceLogps:
    """Run the N rows of ``batch`` through ``model`` once; their response log-probs.

    Args:
        model: a causal LM (possibly wrapped by accelerate or peft).
        batch: ``input_ids``, ``attention_mask``, ``labels``, ``loss_mask``, each (N, T).
    """
    inputs = dict(forward_inputs(batch), use_cache=False)
    logits, labels, mask = scored_logits(model, batch, inputs)  # (N, K, V), (N, K), (N, K)
    sums = sequence_logps(logits, labels, mask)  # (N,)
    return SequenceLogps(sums, scored_counts(batch))


def nll_token_count(loss_type: str, batch: Batch) -> int:
    """Response tokens of the supervised term in ``batch`` (0 for losses without one)."""
    counts = scored_counts(batch)
    if loss_type == "orpo":
        return int(counts[: counts.shape[0] // 2].sum())  # the chosen rows
    if loss_type == "rrhf":
        scores = batch["scores"]  # (B, k)
        best = scores.argmax(dim=1)  # the first best on ties, as rrhf_loss picks
        return int(counts.view(scores.shape)[torch.arange(len(best)), best].sum())
    return 0


def preference_loss(loss_cfg, batch: Batch, policy: SequenceLogps,
                    reference: torch.Tensor | None, totals: StepTotals
                    ) -> tuple[torch.Tensor, Stats]:
    """The loss of one micro-batch, already divided by the step's example count.

    Args:
        loss_cfg: the ``loss`` config section (its ``type`` and parameters).
        batch: the collated micro-batch the log-probs came from.
        policy: the policy's log-probs of the batch's N rows.
        reference: (N,) the reference's summed log-probs of the same rows, or
            ``None`` for a reference-free loss.
        totals: the whole step's counts.

    Returns:
        ``(loss, stats)``: ``loss`` is 0-d; ``stats`` maps each metric to its
        weighted sum and weight over this micro-batch.
    """
    params = loss_cfg.model_dump(exclude={"type"})
    if loss_cfg.type == "kto":
        return _unpaired_loss(params, batch, policy, reference, totals)
    if loss_cfg.type == "rrhf":
        return _ranked_loss(batch, policy, totals)
    return _pair_loss(loss_cfg.type, params, policy, reference, totals)


def _halves(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    chosen, rejected = values.chunk(2)  # rows 0..B-1, rows B..2B-1
    return chosen, rejected


def _pair_loss(loss_type: str, params: dict, policy: SequenceLogps,
               reference: torch.Tensor | None, totals: StepTotals) -> tuple[torch.Tensor, Stats]:
    policy_chosen, policy_rejected = _halves(policy.sums)
    avg_chosen, avg_rejected = _halves(policy.averages)
    sft_weight = params.pop("sft_weight", 0.0)
    if loss_type in SUMMED_PAIR_LOSSES:
        inputs = (policy_chosen, policy_rejected, *_halves(reference))
    elif loss_type == "ipo":
        inputs = (avg_chosen, avg_rejected, *_halves(reference / policy.counts.clamp_min(1)))
    elif loss_type == "simpo":
        inputs = (avg_chosen, avg_rejected)
    else:  # orpo: its NLL term is normalised by the step's chosen tokens, not per pair
        chosen_nll = -policy_chosen * (totals.examples / max(totals.nll_tokens, 1.0))
        inputs = (avg_chosen, avg_rejected, chosen_nll)
    per_pair, metrics = PREFERENCE_LOSSES[loss_type](*inputs, **params)  # (B,)
    n_pairs = float(per_pair.shape[0])
    stats = {name: (float(value) * n_pairs, n_pairs) for name, value in metrics.items()}
    if sft_weight > 0:
        # Per pair and length-normalised, so it accumulates over micro-batches like the rest.
        per_pair = per_pair - sft_weight * avg_chosen
        stats["chosen_nll"] = (float(-avg_chosen.detach().sum()), n_pairs)
    stats["policy_chosen_logps"] = (float(policy_chosen.detach().sum()), n_pairs)
    stats["policy_rejected_logps"] = (float(policy_rejected.detach().sum()), n_pairs)
    if reference is not None:
        logratio = policy_chosen.detach() - _halves(reference)[0]
        stats["chosen_logratio"] = (float(logratio.sum()), n_pairs)
    return per_pair.sum() / totals.examples, stats


def _ranked_loss(batch: Batch, policy: SequenceLogps,
                 totals: StepTotals) -> tuple[torch.Tensor, Stats]:
    scores = batch["scores"]  # (B, k)
    shape = scores.shape
    sft_nll = -policy.sums.view(shape) * (totals.examples / max(totals.nll_tokens, 1.0))
    per_set, metrics = PREFERENCE_LOSSES["rrhf"](policy.averages.view(shape), scores, sft_nll)
    n_sets = float(shape[0])
    ordered_pairs = float((scores[:, :, None] < scores[:, None, :]).sum())
    stats = {"ranking_loss": (float(metrics["ranking_loss"]) * n_sets, n_sets),
             "nll": (float(metrics["nll"]) * n_sets, n_sets),
             "ranking_accuracy": (float(metrics["ranking_accuracy"]) * ordered_pairs,
                                  ordered_pairs)}
    return per_set.sum() / totals.examples, stats


def _unpaired_loss(params: dict, batch: Batch, policy: SequenceLogps, reference: torch.Tensor,
                   totals: StepTotals) -> tuple[torch.Tensor, Stats]:
    desirable = batch["label"].bool()  # (B,)
    per_row, metrics = PREFERENCE_LOSSES["kto"](policy.sums, reference, desirable,
                                                totals.kl_ref, **params)
    n_good, n_bad = float(desirable.sum()), float((~desirable).sum())
    sums = policy.sums.detach()
    stats = {"chosen_reward": (float(metrics["chosen_reward"]) * n_good, n_good),
             "rejected_reward": (float(metrics["rejected_reward"]) * n_bad, n_bad),
             "policy_chosen_logps": (float(sums[desirable].sum()), n_good),
             "policy_rejected_logps": (float(sums[~desirable].sum()), n_bad),
             "kl_ref": (float(metrics["kl_ref"]) * len(desirable), float(len(desirable))),
             # z before clamping at 0: the step's mean of policy minus reference on KL rows
             "mismatched_logratio": (totals.kl_ref * len(desirable), float(len(desirable)))}
    return per_row.sum() / totals.examples, stats
