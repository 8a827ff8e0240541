"""A lean decoding step for Llama-style models (Llama, Mistral, Qwen2 layouts).

For a small model a good share of each decoding step is overhead:
transformers' forward builds masks, position embeddings and cache objects and
walks a dozen Python modules per layer for one token per row (about a fifth
of a rollout of a 3.7M-parameter Llama, a quarter of the lab model's; see
``docs/online-rl.md``). :class:`LlamaDecoder` runs the
same arithmetic straight from the model's weights: RMSNorm, the q/k/v
projections, rotary embedding (the model's own cos/sin tables, computed once),
attention over a cache with room reserved for the whole response (SDPA, in
float32 for a half-precision step on a CPU when the model runs
:mod:`alignkit.models.attention`'s implementation, as its forward then does),
the output projection and the SwiGLU MLP. It copies no weight, except under
half-precision CPU autocast the copies autocast itself would keep
(:func:`~alignkit.rollout.decode_weights.half_copies`); a LoRA adapter (peft)
is applied as its two low-rank products, exactly as peft's forward does.

:func:`lean_decoder` builds one from a transformers prefill cache, or returns
``None`` when the model is anything it does not reproduce exactly (another
architecture or a subclass, a sliding window shorter than the sequence, a
dynamic rope, attention other than SDPA or ``alignkit_cpu``, quantised or
DoRA layers, a forward hook or a replaced ``forward`` on any module...);
:func:`~alignkit.rollout.generate` then decodes through the model's own forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from alignkit.models import attention
from alignkit.models.amp_forward import runs_as_wrapped
from alignkit.models.causal_attention import attention_forward
from alignkit.models.lean_ops import FAMILIES, LEAN_FORWARDS, rms_norm
from alignkit.models.lora import base_of
from alignkit.rollout.decode_weights import (
    Layer,
    PackedProjection,
    Projection,
    autocast_keeps,
    cpu_autocast_dtype,
    half_copies,
    half_projection,
    layer_of,
    projection_of,
)
from alignkit.rollout.kv_cache import window_cuts, with_room

SAME_VALUE_FORWARDS = (*LEAN_FORWARDS, attention_forward)
"""Replaced ``forward`` functions after which a decoding step computes what the model's would."""


def _plain_modules(base) -> bool:
    """transformers' own classes of the model's family, with no hook and no replaced forward.

    A hook or a patched ``forward`` (a test's logit shift, accelerate's device
    placement) changes what the model computes in ways this step cannot see;
    :func:`~alignkit.models.lean_ops.make_lean`'s replacements compute the same values,
    :func:`~alignkit.models.causal_attention.install`'s runs the module's own forward in
    every pass without gradients, and so does accelerate's mixed-precision wrapper on the
    model while its autocast is in force (the online trainers sample inside it).
    """
    hooks = torch.nn.modules.module
    if getattr(hooks, "_global_forward_hooks", None) or \
            getattr(hooks, "_global_forward_pre_hooks", None):
        return False
    family = base.config.model_type
    home = f"transformers.models.{family}.modeling_{family}"
    if type(base).__module__ != home or any(type(layer).__module__ != home
                                            for layer in base.model.layers):
        return False
    for module in base.modules():
        if module._forward_hooks or module._forward_pre_hooks:
            return False
        replaced = module.__dict__.get("forward")
        if replaced is None or getattr(replaced, "__func__", None) in SAME_VALUE_FORWARDS:
            continue
        if module is not base or not runs_as_wrapped(module):
            return False
    return True


def _supported_config(config, total_length: int) -> bool:
    if window_cuts(config, total_length) or \
            getattr(config, "_attn_implementation", None) not in ("sdpa", attention.NAME):
        return False
    return (config.model_type in FAMILIES and getattr(config, "hidden_act", None) == "silu"
            and getattr(config, "pretraining_tp", 1) == 1)


class LlamaDecoder:
    """Decodes one token per row from a reserved KV cache; built by :func:`lean_decoder`.

    Args:
        model: the (unwrapped) ``*ForCausalLM``.
        layers: each decoder layer's weights.
        head: the output projection (``lm_head``).
        keys, values: per layer, (N, kv_heads, P + max_new_tokens, head_dim)
            buffers whose first ``P`` positions hold the prompt's cache.
        prompt_mask: (N, P) long, 1 at real prompt tokens.
        attention_dtype: the half dtype whose decoding steps the model's forward would
            attend in float32 (returning this dtype), or ``None`` for plain SDPA.
    """

    def __init__(self, model, layers: list[Layer], head: Projection | PackedProjection,
                 keys: list[torch.Tensor], values: list[torch.Tensor],
                 prompt_mask: torch.Tensor, attention_dtype: torch.dtype | None = None) -> None:
        inner = model.model
        self.layers, self.keys, self.values = layers, keys, values
        self.embedding = inner.embed_tokens.weight
        self.final_norm = inner.norm.weight
        self.final_eps = float(inner.norm.variance_epsilon)
        self.head = head
        self.head_dim, self.scaling = layers[0].head_dim, layers[0].scaling
        self.heads = layers[0].q.weight.shape[0] // self.head_dim
        self.attention_dtype = attention_dtype
        self.kv_heads = keys[0].shape[1]
        rows, prompt = prompt_mask.shape
        total = keys[0].shape[2]
        self.column = prompt  # where the next token's key and value go
        self.allowed = torch.zeros((rows, 1, 1, total), dtype=torch.bool,
                                   device=prompt_mask.device)
        self.allowed[:, 0, 0, :prompt] = prompt_mask.bool()
        positions = torch.arange(total + 1, device=prompt_mask.device)[None]
        cos, sin = inner.rotary_emb(keys[0], positions)  # (1, total + 1, head_dim) each
        self.cos, self.sin = cos[0], sin[0]

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every row not in ``rows`` (rows that have finished)."""
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]
        self.allowed = self.allowed[rows]

    @torch.no_grad()
    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """(n,) next tokens at (n,) position ids -> (n, V) logits of the token after them."""
        column = self.column
        self.allowed[:, 0, 0, column] = True
        cos = self.cos[position][:, None, None, :]  # (n, 1, 1, head_dim)
        sin = self.sin[position][:, None, None, :]
        hidden = F.embedding(token, self.embedding)  # (n, hidden)
        for layer, keys, values in zip(self.layers, self.keys, self.values, strict=True):
            hidden = hidden + self._attend(layer, keys, values, hidden, cos, sin, column)
            normed = rms_norm(hidden, layer.post_norm, layer.eps)[0]
            hidden = hidden + layer.mlp(normed)
        self.column = column + 1
        return self.head(rms_norm(hidden, self.final_norm, self.final_eps)[0])

    def _attend(self, layer: Layer, keys: torch.Tensor, values: torch.Tensor,
                hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                column: int) -> torch.Tensor:
        rows = hidden.shape[0]
        normed = rms_norm(hidden, layer.input_norm, layer.eps)[0]
        query, key, value = layer.query_key_value(normed)
        query = _rotate(query.view(rows, self.heads, 1, self.head_dim), cos, sin)
        keys[:, :, column] = _rotate(key.view(rows, self.kv_heads, 1, self.head_dim),
                                     cos, sin)[:, :, 0]
        values[:, :, column] = value.view(rows, self.kv_heads, self.head_dim)
        seen_keys, seen_values = keys[:, :, :column + 1], values[:, :, :column + 1]
        if self.kv_heads != self.heads:
            groups = self.heads // self.kv_heads
            seen_keys = seen_keys.repeat_interleave(groups, dim=1)
            seen_values = seen_values.repeat_interleave(groups, dim=1)
        allowed = self.allowed[..., :column + 1]
        if self.attention_dtype is not None:
            mixed = attention.float32_decoding_attention(query, seen_keys, seen_values, allowed,
                                                         self.scaling, self.attention_dtype)
        else:
            mixed = F.scaled_dot_product_attention(query, seen_keys, seen_values,
                                                   attn_mask=allowed, scale=self.scaling)
        return layer.o(mixed.reshape(rows, self.heads * self.head_dim))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Llama's rotary embedding: ``x·cos + rotate_half(x)·sin``."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin


def lean_decoder(model, cache, prompt_mask: torch.Tensor, max_new_tokens: int
                 ) -> LlamaDecoder | None:
    """A :class:`LlamaDecoder` continuing ``cache`` (a transformers prefill cache of N rows).

    Returns ``None`` (and leaves ``cache`` alone) when the model or cache is not one it
    reproduces exactly.
    """
    base = base_of(model)
    inner = getattr(base, "model", None)
    config = getattr(base, "config", None)
    total = prompt_mask.shape[1] + max_new_tokens
    if inner is None or config is None or not _supported_config(config, total + 1):
        return None
    if type(getattr(inner, "embed_tokens", None)) is not torch.nn.Embedding:
        return None
    head = projection_of(getattr(base, "lm_head", None))
    if head is None:
        return None
    rope = getattr(getattr(inner, "rotary_emb", None), "rope_type", None)
    if rope is None or "dynamic" in rope:
        return None
    try:
        layers = [layer_of(layer) for layer in inner.layers]
    except AttributeError:  # modules laid out differently: not a model this step reproduces
        return None
    if not hasattr(getattr(inner, "norm", None), "variance_epsilon") or \
            not _plain_modules(base):
        return None
    cached = getattr(cache, "layers", None)
    if any(layer is None for layer in layers) or cached is None or len(cached) != len(layers):
        return None
    if not all(getattr(entry, "is_initialized", False) and entry.keys.dim() == 4
               for entry in cached):
        return None
    half = cpu_autocast_dtype() if prompt_mask.is_cpu else None
    if half is not None:
        rows = prompt_mask.shape[0]
        layers = [half_copies(layer, half, rows) for layer in layers]
        if autocast_keeps(head, half):
            head = half_projection(head.weight, head.bias, half, rows)
    keys = [with_room(entry.keys, max_new_tokens) for entry in cached]
    values = [with_room(entry.values, max_new_tokens) for entry in cached]
    return LlamaDecoder(base, layers, head, keys, values, prompt_mask,
                        _decoding_route_dtype(config, inner.layers[0].self_attn, keys[0]))


def _decoding_route_dtype(config, self_attn, keys: torch.Tensor) -> torch.dtype | None:
    """The half dtype of the decoding steps the model's forward would attend in float32.

    Asks :mod:`alignkit.models.attention` about a step of this model: one query
    (the step's queries come out of the same projections and rotary products as
    its keys, so they share the keys' dtype) over the cached keys, no gradients.
    """
    if getattr(config, "_attn_implementation", None) != attention.NAME:
        return None
    with torch.no_grad():
        route = attention.route_of(self_attn, keys[:, :, -1:], keys, None, 0.0, {})
    return attention.half_dtype(keys) if route == "float32" else None
