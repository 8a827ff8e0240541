"""Choosing the next token from a batch of logits: greedy, temperature and nucleus (top-p).

The log-probability reported for a sampled token is taken under
``softmax(logits / T)``, the temperature-scaled distribution *before* the
nucleus cut (for greedy decoding, ``T = 0``, under ``softmax(logits)``). That is
the distribution a trainer's own forward pass computes for the same token (it
scales its logits by the same ``T``), so rollout log-probs and training
log-probs describe one policy. With ``top_p < 1`` the tokens are drawn from the
renormalised nucleus, a slightly different distribution; see
``docs/online-rl.md`` for why the KL estimate can then dip below zero.
"""

from __future__ import annotations

import torch


def nucleus_mask(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which tokens belong to the nucleus: the smallest top set holding ``top_p`` of the mass.

    Tokens are taken in order of decreasing probability while the mass of the
    tokens before them is below ``top_p``, so the most likely token is always
    kept and ``top_p = 1`` keeps every token with a non-zero probability
    (ties at the boundary are broken by ``torch.sort`` order).

    Args:
        probs: (N, V) probabilities, each row summing to 1.
        top_p: in (0, 1].

    Returns:
        (N, V) bool, true for the kept tokens.
    """
    if not 0 < top_p <= 1:
        raise ValueError(f"nucleus_mask: top_p must be in (0, 1], got {top_p}")
    sorted_probs, order = probs.sort(dim=-1, descending=True)      # (N, V) each
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs        # (N, V)
    keep_sorted = mass_before < top_p
    keep_sorted[:, 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def exponential_draws(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Exp(1) draws of ``like``'s shape and dtype, as ``torch.Tensor.exponential_`` makes them.

    On a CPU, ``exponential_`` turns one float64 uniform draw ``u`` per value
    into ``-log1p(-u)`` in a serial loop; drawing the uniforms in one call and
    transforming them as a tensor gives the same values from the same stream
    (tested bit for bit, the generator's state after included) 3-4 times
    faster: 69 µs against 235 µs for a 16 x 1,024 batch, a tenth of a
    small model's decoding step. Other devices use ``exponential_`` itself.
    """
    if like.device.type != "cpu":
        return torch.empty_like(like).exponential_(1, generator=generator)
    uniform = torch.rand(like.shape, dtype=torch.float64, generator=generator)
    return torch.log1p(uniform.neg_()).neg_().to(like.dtype)


def sample_next_token(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row and return it with its log-probability.

    Sampling uses the exponential-race form of the categorical draw
    (``argmax p / E`` with ``E ~ Exp(1)``), which consumes exactly ``N·V``
    draws from ``generator`` per call, so a seeded generator reproduces the
    same tokens whatever the values of the logits.

    Args:
        logits: (N, V) next-token logits (any float dtype; computed in float32).
        temperature: ``T >= 0``; 0 picks the most likely token (greedy).
        top_p: nucleus size in (0, 1]; 1 samples from the whole distribution.
        generator: the random stream to draw from (on the logits' device).

    Returns:
        ``(tokens, logps)``: (N,) long ids, and (N,) float32 log-probs of those
        tokens under ``softmax(logits / T)`` (``softmax(logits)`` when greedy).
    """
    if temperature < 0:
        raise ValueError(f"sample_next_token: temperature must be >= 0, got {temperature}")
    scaled = logits.float()
    if temperature > 0:
        scaled = scaled / temperature
    logps_all = torch.log_softmax(scaled, dim=-1)                   # (N, V)
    if temperature == 0:
        tokens = logps_all.argmax(dim=-1)
    else:
        probs = logps_all.exp()
        if top_p < 1:
            probs = torch.where(nucleus_mask(probs, top_p), probs, 0)
        tokens = (probs / exponential_draws(probs, generator)).argmax(dim=-1)
    return tokens, logps_all.gather(-1, tokens[:, None]).squeeze(-1)
