"""Phases of an online iteration (PPO, RLOO, GRPO), as alignkit's online trainers run it.

One iteration samples ``k`` completions for each of ``batch_size`` prompts
(PPO: one), all rows at once with a KV cache; scores them with a frozen reward
model (loaded in fp32, 32 rows per pass); runs no-grad passes for the
sampling policy's log-probs (and PPO's values) and for the reference's; then
trains on the rows in ``grad_accum`` forward passes, logging the entropy of
every completion token after each. Only the logits of the completion
positions are computed (``logits_to_keep``).

PPO's critic is a value head on the policy's last hidden state (``shared``,
the default), which makes the forward pass keep every layer's output, or a
separate backbone (``separate``: the policy's starting model without its
output head), trained in full beside the policy: its weights, gradients and
Adam moments, its activations in every training pass, and one layer's
tensors of its no-grad pass after the policy's.
"""

from __future__ import annotations

from alignkit.plan.activations import FP32
from alignkit.plan.architecture import ModelShape
from alignkit.plan.memory import (
    ADAM_TEMPORARIES,
    critic_activations,
    critic_bytes,
    gradient_bytes,
    model_bytes,
    nograd_layer_bytes,
    numerics,
    optimizer_bytes,
    policy_activations,
    stored_weight_bytes,
)
from alignkit.plan.phases import largest, nograd_pass, training_logits
from alignkit.plan.settings import PlanSettings

REWARD_ROWS_PER_PASS = 32
"""Rows per reward-model forward pass (``reward.batch_size``'s default)."""
ENTROPY_CHUNK_ELEMENTS = 1 << 22
ENTROPY_TEMPORARIES = 3
"""log-softmax, its exp and their product, one chunk each (``response_entropy``)."""


def entropy_bytes(rows: int, width: int, vocab: int) -> int:
    """fp32 temporaries of the per-token entropy the trainers log after each forward pass.

    ``alignkit.train.online_forward.response_entropy`` works on chunks of whole
    rows holding at most 2^22 logits (at least one row).
    """
    chunk_rows = max(1, ENTROPY_CHUNK_ELEMENTS // max(1, width * vocab))
    return ENTROPY_TEMPORARIES * FP32 * min(chunk_rows, rows) * width * vocab


def kv_cache_bytes(shape: ModelShape, s: PlanSettings) -> int:
    """Keys and values of every row at full length, in the compute dtype.

    The cache grows by concatenation, so one layer briefly holds two copies.
    """
    per_layer = s.rows * s.row_len * 2 * shape.kv_dim * numerics(s).compute_bytes
    return per_layer * (shape.layers + 1)


def online_phases(shape: ModelShape, s: PlanSettings, reward: ModelShape,
                  value: ModelShape | None) -> dict[str, dict[str, int]]:
    """Phases of one iteration; ``value``: the model PPO's value head reads (None: no critic)."""
    policy = model_bytes(shape, s, trains=True)
    critic = critic_bytes(shape, s) if value is not None and s.separate_critic else None
    grads = gradient_bytes(policy, s)
    critic_grads = gradient_bytes(critic, s) if critic else 0
    num = numerics(s)
    base = {"weights": stored_weight_bytes(policy, s), "optimizer": optimizer_bytes(policy, s)}
    if s.reward_model:
        base["reward_model"] = reward.params.total * FP32
    if s.reference_mode == "copy":
        base["reference"] = model_bytes(shape, s, trains=False).weights
    if value is not None:  # the value head (hidden + 1 weights): weights, gradient, 2 moments
        base["value_model"] = 4 * (value.hidden + 1) * FP32
        if critic:
            base["value_model"] += stored_weight_bytes(critic, s) + optimizer_bytes(critic, s)
    rows, pass_rows, tokens = s.rows, s.train_rows, s.train_rows * s.row_len
    # PPO's value head asks for every layer's output; a no-grad pass keeps them all, a
    # training pass keeps fp32 residuals anyway (the norms keep them), bf16 ones as copies.
    hidden_states = (shape.layers + 1) * tokens * shape.hidden * num.weight_bytes \
        if value is not None and not critic else 0
    kept_hidden = hidden_states if num.weight_bytes < FP32 else 0
    phases = {"generation": dict(base, kv_cache=kv_cache_bytes(shape, s), workspace=(
        nograd_layer_bytes(shape, num, s.batch_size * s.prompt_len)
        + 3 * FP32 * rows * shape.vocab))}
    if s.reward_model:
        score_rows = min(rows, REWARD_ROWS_PER_PASS)
        phases["scoring"] = dict(base, workspace=nograd_layer_bytes(reward, num,
                                                                    score_rows * s.row_len))
    positions = s.completion_len + 1
    if value is not None or s.reference_mode != "none":  # the sampling policy's log-probs
        logits, work = nograd_pass(shape, s, pass_rows, s.row_len, prepared=True,
                                   logit_positions=positions)
        if critic:  # the critic's no-grad pass runs while the policy's logits are alive
            work = max(work, nograd_layer_bytes(shape, num, pass_rows * s.row_len))
        phases["old log-probs"] = dict(base, logits=logits, activations=hidden_states,
                                       workspace=work)
    if s.reference_mode != "none":
        # PPO's reference reads the bare policy; RLOO's and GRPO's the prepared one.
        prepared = s.reference_mode == "adapter" and value is None
        logits, work = nograd_pass(shape, s, pass_rows, s.row_len, prepared=prepared,
                                   logit_positions=positions)
        phases["reference pass"] = dict(base, reference=base.get("reference", 0) + logits,
                                        workspace=work)
    live = dict(base, gradients=grads + critic_grads if s.grad_accum > 1 else 0,
                activations=policy_activations(shape, s) + kept_hidden
                + (critic_activations(shape, s) if critic else 0))
    logits = training_logits(shape, s, pass_rows, positions)
    phases["forward"] = largest(
        dict(live, logits=logits.saved + logits.converted),
        dict(live, logits=logits.saved,
             workspace=entropy_bytes(pass_rows, s.completion_len, shape.vocab)))
    phases["backward"] = dict(live, logits=logits.saved + logits.grad, workspace=logits.chunks)
    largest_trained = max(policy.largest * policy.param_bytes,
                          critic.largest * critic.param_bytes if critic else 0)
    phases["optimizer step"] = dict(base, gradients=grads + critic_grads,
                                    workspace=ADAM_TEMPORARIES * largest_trained)
    return phases
