"""Attention for training short sequences in bf16 on a CPU, and SDPA everywhere else.

On a CPU under bf16 autocast, torch's SDPA kernel is slow at training
lengths of a few hundred tokens: for the 3.7M-parameter Llama of
``benchmarks/trainer_speed.py`` it took over a third of the forward pass,
as long as every linear layer together. The same attention written as two
batched matrix products and a softmax in bf16 (:func:`matmul_attention`)
made that model's forward and backward 17-26% faster from 128 to 768
tokens, and 17% slower at 1,024 (``docs/benchmarks.md``).

:func:`matmul_or_sdpa` is an attention function for transformers' attention
interface with two routes for half precision (bf16 or fp16 inputs, or CPU
autocast) on a CPU, each where it measured faster, and no dropout:

- training passes (gradients wanted, at most :data:`MATMUL_MAX_KEYS` keys:
  a full sequence, or the last positions of one over a cache of the first,
  as when RLOO and GRPO share a prompt between samples) take the
  matrix-product route;
- decoding steps (one query per row, no gradients) run SDPA in float32
  (:func:`float32_decoding_attention`): for 16 rows of 4 heads, SDPA's bf16
  kernel took 124 µs over 40 keys and 242 µs over 90, its float32 kernel 38
  and 61 µs, and the bf16 matrix products 84 and 114 µs, while their oneDNN
  kernels, one per key length, held 0.1-0.2 GB more for a GRPO run's
  sampling. The lean decoding step (:mod:`alignkit.rollout.llama_decode`)
  takes the same route.

Every other call, prefill and scoring passes included, goes to transformers'
SDPA function unchanged. Beyond what SDPA keeps for backward, a training pass
keeps each layer's attention probabilities in half precision: ``2·heads·T``
bytes per token and layer, which the memory planner counts
(:mod:`alignkit.plan.memory`). :func:`install` switches a model over; the
trainers call it on every model they train unless ``model.cpu_attention`` is
false.
"""

from __future__ import annotations

import torch

from alignkit.plan.activations import MATMUL_MAX_KEYS

NAME = "alignkit_cpu"
"""The attention implementation's name in transformers' registries."""

HALF_DTYPES = (torch.bfloat16, torch.float16)


def matmul_attention(query, key, value, allowed, scale: float, *,
                     causal: bool = False) -> torch.Tensor:
    """``softmax(q·kᵀ·scale, masked)·v`` over (B, H, T, D) inputs of one half dtype.

    The scale goes on the queries (T·D values, not T·T), and the softmax runs
    on the half-precision scores (torch accumulates in float32) and returns
    half precision: the probabilities are the only T·T float tensor autograd
    keeps, at 2 bytes each, against 6 for transformers' ``eager`` (its float32
    softmax and the cast). ``where`` keeps the boolean mask, shared by the layers.
    ``causal``: ``allowed`` is a plain causal mask, where every query sees at
    least itself; the backward pass then needs no mask (:class:`_CausalSoftmax`).
    """
    scores = torch.matmul(query * scale, key.transpose(-1, -2))  # (B, H, Q, K)
    if causal and scores.requires_grad:
        return torch.matmul(_CausalSoftmax.apply(scores, allowed), value)
    return torch.matmul(torch.softmax(_masked(scores, allowed), dim=-1), value)


def _masked(scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    # The lowest finite value, not -inf: a query with no allowed key (left padding)
    # gets finite outputs instead of NaN, as in transformers' eager attention.
    return torch.where(allowed, scores, torch.finfo(scores.dtype).min)


class _CausalSoftmax(torch.autograd.Function):
    """The masked softmax of scores under a causal mask, differentiated from its output alone.

    Every query sees at least its own key, so a masked score's probability
    underflows to exactly 0 and softmax's own backward gives it a zero
    gradient: the pass that masks the gradient (``where``'s backward) and the
    saved mask are not needed. Values and gradients equal ``where`` then
    ``softmax`` (tested); forward and backward of a (8, 4, 268, 268) bf16 block
    took 2.5-2.8 ms against 3.1-4.7 ms.
    """

    @staticmethod
    def forward(ctx, scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(_masked(scores, allowed), dim=-1)
        ctx.save_for_backward(probs)
        return probs

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (probs,) = ctx.saved_tensors
        return torch._softmax_backward_data(grad, probs, -1, probs.dtype), None


def causal_allowed(queries: int, keys: int, device) -> torch.Tensor:
    """(1, 1, Q, K) bool: the last ``Q`` of ``K`` positions, each attending to itself and before."""
    ones = torch.ones(queries, keys, dtype=torch.bool, device=device)
    return ones.tril_(diagonal=keys - queries)[None, None]


def half_dtype(query: torch.Tensor) -> torch.dtype | None:
    """The half dtype this call computes in: the query's, or CPU autocast's; else ``None``.

    Under autocast a Llama's queries and keys arrive in float32 (the rotary
    embedding's products with float32 ``cos`` and ``sin``) while the values
    are bf16: the dtype autocast would compute the products in is the one
    that counts.
    """
    if query.dtype in HALF_DTYPES:
        return query.dtype
    device = query.device.type
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) in HALF_DTYPES:
        return torch.get_autocast_dtype(device)
    return None


def takes_matmul_route(module, query, key, attention_mask, dropout: float,
                       kwargs: dict) -> bool:
    """Whether this call is one the matrix-product route serves and measured faster on."""
    return route_of(module, query, key, attention_mask, dropout, kwargs) == "matmul"


def takes_float32_decoding_route(module, query, key, attention_mask, dropout: float,
                                 kwargs: dict) -> bool:
    """Whether this call is a half-precision decoding step, run in float32."""
    return route_of(module, query, key, attention_mask, dropout, kwargs) == "float32"


def route_of(module, query, key, attention_mask, dropout: float, kwargs: dict) -> str | None:
    """``"matmul"`` (a training pass), ``"float32"`` (a decoding step) or ``None`` (SDPA)."""
    if not half_precision_call(module, query, attention_mask, dropout, kwargs):
        return None
    q_length, kv_length = query.shape[2], key.shape[2]
    if torch.is_grad_enabled() and query.requires_grad:
        return "matmul" if q_length <= kv_length and 1 < kv_length <= MATMUL_MAX_KEYS else None
    return "float32" if q_length == 1 else None


def half_precision_call(module, query, attention_mask, dropout: float, kwargs: dict) -> bool:
    """A CPU call in half precision, with a boolean or no mask, that neither route excludes."""
    return (query.device.type == "cpu" and half_dtype(query) is not None
            and (attention_mask is None or attention_mask.dtype == torch.bool)
            and (dropout == 0.0 or not module.training)
            and getattr(module, "is_causal", True)
            and not any(kwargs.get(name) is not None
                        for name in ("position_bias", "softcap", "cache", "sliding_window",
                                     "s_aux")))


def matmul_or_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0,
                   scaling: float | None = None, **kwargs):
    """An attention function for transformers' ``AttentionInterface``.

    Args: as transformers' ``sdpa_attention_forward``: query (B, H, Q, D), key
    and value (B, H_kv, K, D), ``attention_mask`` a (B, 1, Q, K) bool mask
    (true where attending is allowed) or ``None`` for a plain causal one.

    Returns:
        ``(output (B, Q, H, D), None)``.
    """
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    route = route_of(module, query, key, attention_mask, dropout, kwargs)
    if route is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    dtype = half_dtype(query)
    if route == "float32":
        out = float32_decoding_attention(query, key, value, attention_mask, scale, dtype)
    else:
        causal = attention_mask is None
        allowed = causal_allowed(query.shape[2], key.shape[2], query.device) if causal \
            else attention_mask
        with torch.autocast("cpu", enabled=False):
            out = matmul_attention(query.to(dtype), key.to(dtype), value.to(dtype), allowed,
                                   scale, causal=causal)
    return out.transpose(1, 2).contiguous(), None


def float32_decoding_attention(query, key, value, allowed: torch.Tensor | None, scale: float,
                               dtype: torch.dtype) -> torch.Tensor:
    """One query per row, attended in float32 outside any autocast; returned in ``dtype``.

    ``allowed`` is a (B, 1, 1, K) bool mask or ``None`` (every key: the query is the
    last position).
    """
    with torch.autocast(query.device.type, enabled=False):
        out = torch.nn.functional.scaled_dot_product_attention(
            query.float(), key.float(), value.float(), attn_mask=allowed, scale=scale)
    return out.to(dtype)


def register() -> str:
    """Register :func:`matmul_or_sdpa` (with SDPA's masks) under :data:`NAME`; return it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, matmul_or_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def install(model) -> bool:
    """Switch a model that runs SDPA to :func:`matmul_or_sdpa`; whether it was switched.

    Models on other implementations (``eager``, flash kernels) and model
    classes that do not take transformers' attention functions keep theirs.
    The choice is not written to a saved ``config.json``.
    """
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" \
            or not hasattr(model, "set_attn_implementation"):
        return False
    try:
        model.set_attn_implementation(register())
    except (ValueError, ImportError):
        return False
    return True
