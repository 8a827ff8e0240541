"""A Llama-style layer's causal self-attention in a training pass, as one autograd function.

Transformers' attention module, run under bf16 autocast on a CPU, spends
much of its time between the projections and the matrix products: the
rotary embedding multiplies the bf16 query and key by float32 ``cos`` and
``sin`` (float32 results, cast back to bf16 for the products), the
transposed head layouts are copied to contiguous ones before each batched
product, and autograd adds, in backward, a cast and a copy for each of
those steps. :class:`CausalSelfAttention` does the same work from the three
projections' outputs to the output projection's input with the fewest
passes over memory:

- the rotary embedding, ``x·cos + rotate_half(x)·sin``, is written in
  ``rotate_half``'s other form, ``swap(x)·sin'`` with ``swap`` the exchange
  of the two halves and ``sin'`` the sine with its first half negated (the
  same products, so the same values), computed in float32 and written once,
  rounded, into the layout the products read;
- the causal mask is added to the scores as ``-inf`` (every query sees
  itself, so no row is all ``-inf``) and the softmax and its gradient run in
  place, in the scores' buffers: the values of ``where`` and softmax (bit
  for bit), without a fresh (B·H, T, T) tensor for each;
- backward computes each gradient directly in the layout its consumer needs.

It keeps for backward what the matrix-product route of
:mod:`alignkit.models.attention` keeps (the scaled query, the key, the value
and the probabilities in the half dtype), but grouped key and value heads at
their own width (the memory planner's count).

:func:`attention_forward` replaces ``forward`` on a model's attention modules
(:func:`install`); it takes this path for a training pass without a cache or
a padding mask (the causal case: SFT and preference batches, which are
right-padded and go without a mask) and the module's own forward for
everything else.
"""

from __future__ import annotations

import torch

from alignkit.models.attention import NAME, half_precision_call
from alignkit.models.lean_ops import replace_forwards
from alignkit.plan.activations import MATMUL_MAX_KEYS

FAMILIES = ("llama", "mistral", "qwen2")
"""``model_type``s whose attention modules compute Llama's attention."""


def swap_halves(x: torch.Tensor) -> torch.Tensor:
    """The last dimension's two halves exchanged."""
    half = x.shape[-1] // 2
    return torch.cat((x[..., half:], x[..., :half]), dim=-1)


def signed_sine(sin: torch.Tensor) -> torch.Tensor:
    """``sin``, first half negated: ``rotate_half(x)·sin == swap_halves(x)·signed_sine(sin)``."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def rotate_into(out: torch.Tensor, x: torch.Tensor, cos: torch.Tensor,
                sine: torch.Tensor) -> torch.Tensor:
    """``out = x·cos + swap_halves(x)·sine``, computed in the promoted dtype, written to ``out``."""
    return torch.add(x * cos, swap_halves(x) * sine, out=out)


def causal_additive_mask(length: int, device, dtype: torch.dtype) -> torch.Tensor:
    """(T, T): 0 where a query sees a key (itself and before), ``-inf`` elsewhere."""
    blocked = torch.ones(length, length, dtype=torch.bool, device=device).triu_(1)
    return torch.zeros(length, length, dtype=dtype, device=device).masked_fill_(
        blocked, float("-inf"))


def _heads_first(x: torch.Tensor, batch: int, length: int, heads: int) -> torch.Tensor:
    """(B, T, heads·D) → contiguous (B·heads, T, D)."""
    return x.view(batch, length, heads, -1).transpose(1, 2).reshape(batch * heads, length, -1)


def _tokens_first(x: torch.Tensor, batch: int, heads: int) -> torch.Tensor:
    """(B·heads, T, D) → contiguous (B, T, heads·D)."""
    length = x.shape[1]
    return x.view(batch, heads, length, -1).transpose(1, 2).reshape(batch, length, -1)


def _expand_groups(x: torch.Tensor, batch: int, groups: int) -> torch.Tensor:
    """(B·kv_heads, T, D) → (B·kv_heads·groups, T, D): each key/value head once per query head."""
    if groups == 1:
        return x
    rows, length, dim = x.shape
    return x[:, None].expand(rows, groups, length, dim).reshape(rows * groups, length, dim)


def _sum_groups(x: torch.Tensor, groups: int) -> torch.Tensor:
    """The inverse of :func:`_expand_groups` for gradients: each head's group summed."""
    if groups == 1:
        return x
    rows, length, dim = x.shape
    return x.view(rows // groups, groups, length, dim).sum(1)


def _rotated_heads_first(x: torch.Tensor, cos: torch.Tensor, sine: torch.Tensor,
                         heads: int) -> torch.Tensor:
    """(B, T, heads·D) projections → rotated (B·heads, T, D) in ``x``'s dtype."""
    batch, length, _ = x.shape
    out = torch.empty(batch, heads, length, cos.shape[-1], dtype=x.dtype, device=x.device)
    rotate_into(out.transpose(1, 2), x.view(batch, length, heads, -1), cos[:, :, None],
                sine[:, :, None])
    return out.view(batch * heads, length, -1)


def _unrotated_tokens_first(grad: torch.Tensor, cos: torch.Tensor, sine: torch.Tensor,
                            batch: int) -> torch.Tensor:
    """Gradient through the rotation: (B·heads, T, D) → (B, T, heads·D).

    The rotation's transpose is ``g·cos + swap_halves(g)·swap_halves(sine)``.
    """
    rows, length, dim = grad.shape
    heads = rows // batch
    out = torch.empty(batch, length, heads, dim, dtype=grad.dtype, device=grad.device)
    rotate_into(out.transpose(1, 2), grad.view(batch, heads, length, dim), cos[:, None],
                swap_halves(sine)[:, None])
    return out.view(batch, length, heads * dim)


class CausalSelfAttention(torch.autograd.Function):
    """``softmax(rope(q)·rope(k)ᵀ·scale + causal)·v`` from and to the projections' layout.

    Inputs: ``q`` (B, T, H·D), ``k`` and ``v`` (B, T, H_kv·D), all of one half
    dtype; ``cos`` and ``sin`` (1 or B, T, D), float32 under autocast; the
    head counts and the scale. Output: (B, T, H·D) in the half dtype.
    """

    @staticmethod
    def forward(ctx, q, k, v, cos, sin, heads: int, kv_heads: int, scale: float):
        batch, length, _ = q.shape
        groups = heads // kv_heads
        sine = signed_sine(sin)
        query = _rotated_heads_first(q, cos, sine, heads).mul_(scale)
        key = _rotated_heads_first(k, cos, sine, kv_heads)
        value = _heads_first(v, batch, length, kv_heads)
        scores = torch.bmm(query, _expand_groups(key, batch, groups).transpose(1, 2))
        scores.add_(causal_additive_mask(length, q.device, scores.dtype))
        probs = torch.softmax(scores, dim=-1, out=scores)
        out = torch.bmm(probs, _expand_groups(value, batch, groups))
        ctx.save_for_backward(query, key, value, probs, cos, sine)
        ctx.shape = (batch, groups, scale)
        return _tokens_first(out, batch, heads)

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, probs, cos, sine = ctx.saved_tensors
        batch, groups, scale = ctx.shape
        heads = query.shape[0] // batch
        grad_out = _heads_first(grad_out, batch, grad_out.shape[1], heads)
        grad_value = _sum_groups(torch.bmm(probs.transpose(1, 2), grad_out), groups)
        grad_probs = torch.bmm(grad_out, _expand_groups(value, batch, groups).transpose(1, 2))
        grad_scores = torch.ops.aten._softmax_backward_data.out(
            grad_probs, probs, -1, probs.dtype, grad_input=grad_probs)
        grad_query = torch.bmm(grad_scores, _expand_groups(key, batch, groups)).mul_(scale)
        grad_key = _sum_groups(torch.bmm(grad_scores.transpose(1, 2), query), groups)
        return (_unrotated_tokens_first(grad_query, cos, sine, batch),
                _unrotated_tokens_first(grad_key, cos, sine, batch),
                _tokens_first(grad_value, batch, heads // groups), None, None, None, None, None)


def fused_path_applies(module, hidden_states: torch.Tensor, attention_mask, past_key_values,
                       position_embeddings, kwargs: dict) -> bool:
    """Whether this call is a causal training pass that :class:`CausalSelfAttention` serves."""
    length = hidden_states.shape[1]
    return (attention_mask is None and past_key_values is None
            and position_embeddings is not None
            and position_embeddings[0].shape[-1] == module.head_dim
            and half_precision_call(module, hidden_states, None, module.attention_dropout,
                                    kwargs)
            and 1 < length <= MATMUL_MAX_KEYS
            and module.config._attn_implementation == NAME
            and window_covers(module, length)
            and torch.is_grad_enabled()
            and (hidden_states.requires_grad
                 or any(p.requires_grad for p in module.parameters())))


def window_covers(module, length: int) -> bool:
    """Whether a sliding attention window, if any, reaches every earlier position."""
    window = getattr(module, "sliding_window", None)
    if window is None and getattr(module.config, "use_sliding_window", True):
        window = getattr(module.config, "sliding_window", None)
    return window is None or window >= length


def attention_forward(self, hidden_states: torch.Tensor, position_embeddings=None,
                      attention_mask=None, past_key_values=None, **kwargs):
    """``forward`` of a Llama-style attention module, :class:`CausalSelfAttention` where it fits."""
    if not fused_path_applies(self, hidden_states, attention_mask, past_key_values,
                              position_embeddings, kwargs):
        return type(self).forward(self, hidden_states=hidden_states,
                                  position_embeddings=position_embeddings,
                                  attention_mask=attention_mask,
                                  past_key_values=past_key_values, **kwargs)
    q, k, v = self.q_proj(hidden_states), self.k_proj(hidden_states), \
        self.v_proj(hidden_states)
    cos, sin = position_embeddings
    heads, kv_heads = q.shape[-1] // self.head_dim, k.shape[-1] // self.head_dim
    with torch.autocast("cpu", enabled=False):
        out = CausalSelfAttention.apply(q, k, v, cos, sin, heads, kv_heads, self.scaling)
    return self.o_proj(out), None


def supports(model) -> bool:
    """Whether :func:`install` knows the model's attention modules (Llama, Mistral, Qwen2)."""
    return getattr(getattr(model, "config", None), "model_type", None) in FAMILIES


def install(model) -> bool:
    """Replace ``forward`` on a Llama-style model's attention modules; whether it was done."""
    if not supports(model):
        return False
    replace_forwards(model, {"Attention": attention_forward})
    return True
