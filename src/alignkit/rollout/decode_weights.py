"""The weights the lean decoding step reads, as plain tensors.

A :class:`Projection` is one linear map (a LoRA adapter's terms included),
read from an ``nn.Linear`` or a peft LoRA linear without copying a weight; a
:class:`Layer` holds one decoder layer's. :func:`half_copies` prepares a
layer for a rollout under half-precision CPU autocast: autocast casts each
weight at every product and, for a trainable weight, keeps that copy for the
whole autocast region. The step makes those copies itself, once per rollout,
in oneDNN's own layout where it takes bf16 (:class:`PackedProjection`), and
joins q/k/v into one product and gate/up into another
(for the 3.7M-parameter benchmark Llama, 16 rows in bf16: 50 µs against 25
for q/k/v, 46 against 32 for gate/up). The joined products' columns are the
separate products' bit for bit on the kernels tested
(``tests/unit/rollout/test_decode_weights.py``, ``test_llama_decode.py``).
Frozen weights (a LoRA base), weights already in the half dtype and adapters
are left to autocast: copies of them would be memory that autocast does not
hold.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Projection:
    """A linear map as weights: ``x @ W.T + b`` plus each LoRA term ``s · (x @ A.T) @ B.T``."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    lora: tuple[tuple[torch.Tensor, torch.Tensor, float], ...] = ()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        if not self.lora:
            return out
        total = out  # peft adds in the wider dtype and casts back once
        for down, up, scale in self.lora:
            total = total + F.linear(F.linear(x.to(down.dtype), down), up) * scale
        return total.to(out.dtype)


@dataclass(frozen=True)
class PackedProjection:
    """A plain linear map in half precision, its weight laid out once for oneDNN's kernels.

    Plain ``F.linear`` in bf16 goes through the same kernels but prepares the
    weight at every call: 16 rows through the 3.7M-parameter benchmark Llama's
    q/k/v took 17.5 µs against 24.8, its head 19.8 against 27.0, with equal results.
    """

    packed: torch.Tensor
    bias: torch.Tensor | None
    dtype: torch.dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x.to(self.dtype), self.packed, self.bias,
                                                  "none", [], "")


def projection_of(module) -> Projection | None:
    """The :class:`Projection` of a plain ``nn.Linear`` or a peft LoRA linear; else ``None``."""
    if type(module) is torch.nn.Linear:
        return Projection(module.weight, module.bias)
    base = getattr(module, "base_layer", None)
    if type(base) is not torch.nn.Linear or not hasattr(module, "lora_A"):
        return None
    if getattr(module, "merged", False) or getattr(module, "disable_adapters", False):
        return Projection(base.weight, base.bias)  # merged: the base already holds the update
    if getattr(module, "fan_in_fan_out", False):
        return None
    terms = []
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        if module.use_dora.get(name, False) or getattr(module, "lora_variant", {}).get(name):
            return None
        down, up = module.lora_A[name], module.lora_B[name]
        if type(down) is not torch.nn.Linear or type(up) is not torch.nn.Linear:
            return None
        terms.append((down.weight, up.weight, float(module.scaling[name])))
    return Projection(base.weight, base.bias, tuple(terms))


@dataclass(frozen=True)
class Layer:
    """One decoder layer's weights: norms, projections, and how attention is shaped."""

    input_norm: torch.Tensor
    q: Projection
    k: Projection
    v: Projection
    o: Projection | PackedProjection
    post_norm: torch.Tensor
    gate: Projection
    up: Projection
    down: Projection | PackedProjection
    eps: float
    head_dim: int
    scaling: float
    qkv: Projection | PackedProjection | None = None      # q, k and v joined (half_copies)
    gate_up: Projection | PackedProjection | None = None  # gate and up joined

    def query_key_value(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(n, hidden) -> the q, k and v projections of ``x``."""
        if self.qkv is None:
            return self.q(x), self.k(x), self.v(x)
        widths = [p.weight.shape[0] for p in (self.q, self.k, self.v)]
        return self.qkv(x).split(widths, dim=-1)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The SwiGLU MLP: ``down(silu(gate(x)) · up(x))``."""
        if self.gate_up is None:
            gate, up = self.gate(x), self.up(x)
        else:
            gate, up = self.gate_up(x).split([self.gate.weight.shape[0],
                                              self.up.weight.shape[0]], dim=-1)
        return self.down(F.silu(gate) * up)


def layer_of(layer) -> Layer | None:
    self_attn, mlp = layer.self_attn, layer.mlp
    parts = [projection_of(getattr(self_attn, f"{n}_proj")) for n in "qkvo"]
    parts += [projection_of(getattr(mlp, f"{n}_proj")) for n in ("gate", "up", "down")]
    if any(p is None for p in parts):
        return None
    q, k, v, o, gate, up, down = parts
    return Layer(layer.input_layernorm.weight, q, k, v, o, layer.post_attention_layernorm.weight,
                  gate, up, down, float(layer.input_layernorm.variance_epsilon),
                  int(self_attn.head_dim), float(self_attn.scaling))


def cpu_autocast_dtype() -> torch.dtype | None:
    """The half dtype of the CPU autocast in force, or ``None``."""
    if not torch.is_autocast_enabled("cpu"):
        return None
    dtype = torch.get_autocast_dtype("cpu")
    return dtype if dtype in (torch.bfloat16, torch.float16) else None


def half_copies(layer: Layer, dtype: torch.dtype, rows: int) -> Layer:
    """``layer`` with q/k/v and gate/up joined into one product each, in ``dtype``.

    Groups (and the output and down projections, alone) are copied only where
    autocast keeps a copy of every member (:func:`autocast_keeps`) and all or
    none have a bias; the others stay as they are. ``rows``: the batch the
    copies are laid out for.
    """
    copies = {}
    groups = {"qkv": (layer.q, layer.k, layer.v), "gate_up": (layer.gate, layer.up),
              "o": (layer.o,), "down": (layer.down,)}
    for name, parts in groups.items():
        if not all(autocast_keeps(p, dtype) for p in parts) or \
                len({p.bias is None for p in parts}) != 1:
            continue
        weight = _stacked([p.weight for p in parts])
        bias = None if parts[0].bias is None else _stacked([p.bias for p in parts])
        copies[name] = half_projection(weight, bias, dtype, rows)
    return replace(layer, **copies)


def _stacked(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat([t.detach() for t in tensors])


def autocast_keeps(projection: Projection, dtype: torch.dtype) -> bool:
    """Whether autocast in ``dtype`` keeps a cast copy of the projection's weights.

    It does for a leaf tensor that wants gradients and is not in ``dtype``
    already, for the whole autocast region.
    """
    tensors = [projection.weight] + ([] if projection.bias is None else [projection.bias])
    return not projection.lora and all(t.requires_grad and t.dtype != dtype for t in tensors)


def half_projection(weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype,
                    rows: int) -> Projection | PackedProjection:
    """``x @ W.T + b`` in ``dtype``: packed for oneDNN where it takes bf16, else plain."""
    weight = weight.detach().to(dtype)
    bias = None if bias is None else bias.detach().to(dtype)
    if dtype == torch.bfloat16 and _onednn_bf16():
        try:
            return PackedProjection(torch.ops.mkldnn._reorder_linear_weight(weight, rows),
                                    bias, dtype)
        except (RuntimeError, AttributeError):  # a torch without the op: plain products
            pass
    return Projection(weight, bias)


@functools.cache
def _onednn_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (RuntimeError, AttributeError):
        return False
