"""Forward passes over rollout rows: response log-probs, entropy, the reference, KL and rewards.

Rows are ``cat(prompt, response)`` with the prompt left-padded and the
response right-padded (width ``R``), so the last ``R + 1`` positions hold the
last prompt token and the response: logits there score the response tokens,
and only those logits are computed (``logits_to_keep``) where the model allows.
Rows that share a prompt (a group's ``k`` samples) can compute it once
(``share_prompts``, :mod:`alignkit.train.prompt_sharing`).
Logits are divided by the sampling temperature, so the policy trained is the
one that sampled.
"""

from __future__ import annotations

import contextlib
import copy

import torch

from alignkit.losses import kl_penalty, token_logps
from alignkit.models.lora import adapters_disabled, is_peft_model
from alignkit.models.reward import position_ids_from_mask
from alignkit.rollout import dropout_off
from alignkit.rollout.generation import accepts_logits_to_keep
from alignkit.train.prompt_sharing import shared_prompt_logits

ENTROPY_CHUNK_ELEMENTS = 1 << 22
"""Logits per chunk when computing entropies (16 MiB in float32)."""


def disable_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """Set every dropout probability in ``model`` to 0, for good.

    Online RL compares log-probs of the same tokens computed in different
    passes (sampling, the no-grad pass, each update); dropout would make those
    ratios noisy, so it is off throughout, while the model stays in train mode
    (gradient checkpointing only runs in train mode). This covers
    ``nn.Dropout`` modules and the float ``attention_dropout`` attributes
    attention layers apply themselves.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
    return model


def response_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    response_width: int, *, temperature: float = 1.0, hidden: bool = False,
                    share_prompts: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Temperature-scaled logits of the last ``R + 1`` positions, and optionally hidden states.

    Args:
        model: a causal LM (optionally peft-wrapped).
        input_ids: (N, P + R). attention_mask: (N, P + R).
        response_width: ``R``.
        temperature: the sampling temperature ``T`` (logits are divided by it).
        hidden: also return the final hidden states.
        share_prompts: compute each distinct prompt once
            (:func:`~alignkit.train.prompt_sharing.shared_prompt_logits`); every
            pass whose results are compared with another's must agree on it.

    Returns:
        ``(logits, hidden)``: (N, R + 1, V), position ``j`` predicting token
        ``j + 1`` of ``input_ids[:, -(R + 1):]``; and (N, R, H) hidden states
        at the positions that predict the response tokens (the states a value
        head reads), or ``None``.
    """
    keep = response_width + 1
    logits = None
    if share_prompts and not hidden:
        logits = shared_prompt_logits(model, input_ids, attention_mask, response_width)
    states = None
    if logits is None:
        options = {"logits_to_keep": keep} if accepts_logits_to_keep(model) else {}
        out = model(input_ids=input_ids, attention_mask=attention_mask,
                    position_ids=position_ids_from_mask(attention_mask), use_cache=False,
                    output_hidden_states=hidden, **options)
        logits = out.logits[:, -keep:]
        states = out.hidden_states[-1][:, -keep:-1] if hidden else None
    if temperature != 1.0:
        logits = logits / temperature
    return logits, states


def response_logps(logits: torch.Tensor, input_ids: torch.Tensor,
                   response_mask: torch.Tensor) -> torch.Tensor:
    """Log-probs of the response tokens under ``logits``.

    Args:
        logits: (N, R + 1, V) from :func:`response_logits`.
        input_ids: (N, P + R). response_mask: (N, R) bool.

    Returns:
        (N, R) float32, 0 at padding.
    """
    width = response_mask.shape[1]
    labels = input_ids[:, -(width + 1):]                                   # (N, R + 1)
    scored = torch.cat([response_mask.new_zeros((response_mask.shape[0], 1)), response_mask],
                       dim=1)                                              # (N, R + 1)
    return token_logps(logits, labels, scored)


@torch.no_grad()
def response_entropy(logits: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Entropy of the next-token distribution at each response token, in nats.

    Args:
        logits: (N, R + 1, V). response_mask: (N, R).

    Returns:
        (N, R) float32, 0 at padding.
    """
    rows, width, vocab = logits.shape[0], response_mask.shape[1], logits.shape[2]
    chunk = max(1, ENTROPY_CHUNK_ELEMENTS // max(1, width * vocab))
    parts = []
    for start in range(0, rows, chunk):
        part = logits[start:start + chunk, :width].float()                # (c, R, V)
        logp = torch.log_softmax(part, dim=-1)
        parts.append(-(logp.exp() * logp).sum(dim=-1))
    return torch.where(response_mask, torch.cat(parts), 0.0)


class Reference:
    """The frozen starting policy the KL term is measured against.

    Under LoRA with a fresh adapter it is the policy with its adapter switched
    off (no second copy of the weights); otherwise a frozen copy of the
    starting model, taken when this object is built (before any update).
    """

    def __init__(self, policy, *, continued_adapter: bool = False) -> None:
        self.policy = policy
        self.copy = None
        if not is_peft_model(policy) or continued_adapter:
            self.copy = copy.deepcopy(policy).requires_grad_(False).eval()

    @property
    def mode(self) -> str:
        return "adapter" if self.copy is None else "copy"

    def to(self, device) -> Reference:
        if self.copy is not None:
            self.copy.to(device)
        return self

    @torch.no_grad()
    def logps(self, policy, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              response_mask: torch.Tensor, *, temperature: float = 1.0,
              rows_per_pass: int | None = None, share_prompts: bool = False) -> torch.Tensor:
        """(N, R) reference log-probs of the response tokens.

        Args:
            policy: the policy now (unwrapped); used with its adapter off.
            input_ids, attention_mask: (N, P + R). response_mask: (N, R).
            temperature: the sampling temperature.
            rows_per_pass: rows per forward pass (all at once by default).
            share_prompts: as :func:`response_logits` takes it.
        """
        model = self.copy if self.copy is not None else policy
        off = adapters_disabled(policy) if self.copy is None else contextlib.nullcontext()
        step = rows_per_pass or input_ids.shape[0]
        parts = []
        with dropout_off(model), off:
            for start in range(0, input_ids.shape[0], step):
                rows = slice(start, start + step)
                logits, _ = response_logits(model, input_ids[rows], attention_mask[rows],
                                            response_mask.shape[1], temperature=temperature,
                                            share_prompts=share_prompts)
                parts.append(response_logps(logits, input_ids[rows], response_mask[rows]))
        return torch.cat(parts)


def token_kl(logps: torch.Tensor, ref_logps: torch.Tensor, response_mask: torch.Tensor,
             estimator: str) -> torch.Tensor:
    """Per-token KL estimate (see :func:`~alignkit.losses.kl_penalty`), 0 at padding: (N, R)."""
    return torch.where(response_mask, kl_penalty(logps, ref_logps, estimator), 0.0)


def per_token_rewards(scores: torch.Tensor, kl: torch.Tensor, response_mask: torch.Tensor,
                      kl_coef: float) -> torch.Tensor:
    """RLHF rewards: ``-kl_coef · KL_t`` at every token, plus the score at the last token.

    Args:
        scores: (N,) one score per response.
        kl: (N, R) per-token KL estimates (0 at padding).
        response_mask: (N, R) bool, right-padded.
        kl_coef: the KL coefficient.

    Returns:
        (N, R) float32, 0 at padding.
    """
    rewards = torch.where(response_mask, -kl_coef * kl, 0.0).float()
    last = response_mask.sum(dim=1) - 1                                    # (N,)
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += scores.to(rewards)
    return rewards
