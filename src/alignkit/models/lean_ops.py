"""Memory-lean autograd for the element-wise parts of Llama-style layers.

Autograd keeps, for backward, more of a decoder layer than its matrix
products need: each RMSNorm saves both its input and the normalised input
(the operand of the weight multiply), and the SwiGLU MLP saves ``silu(gate)``
next to ``gate`` and ``up``. Per token and layer that is ``2·hidden +
intermediate`` values out of roughly ``6·hidden + 4·intermediate`` plus the
attention's, all cheap to recompute. The two functions here compute the same
forward values, operation for operation, but save only what their
hand-written backward needs:

- RMSNorm saves its input and the per-row scale ``1/rms`` and recomputes the
  normalised input;
- SwiGLU saves ``gate`` and ``up`` and recomputes ``silu(gate)``.

(The rotary embedding needs nothing of this kind: its products are with
``cos`` and ``sin``, which autograd saves alone.)

:func:`make_lean` switches the RMSNorm and MLP modules of a loaded model over,
by replacing ``forward`` on those instances only; nothing global changes.
Where no gradient is wanted (generation, reference passes) they run the plain
operations. The RMSNorm backward computes in float32.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

FAMILIES = ("llama", "mistral", "qwen2")
"""``model_type``s whose RMSNorm and MLP code are Llama's."""


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float):
    """Llama's RMSNorm, operation for operation: ``(output, 1/rms)``."""
    xf = x.to(torch.float32)
    scale = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * (xf * scale).to(x.dtype), scale


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        out, scale = rms_norm(x, weight, eps)
        ctx.save_for_backward(x, weight, scale)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, scale = ctx.saved_tensors
        normed = x.to(torch.float32) * scale
        grad = grad.to(torch.float32)
        grad_weight = None
        if ctx.needs_input_grad[1]:
            rounded = normed.to(x.dtype).to(torch.float32)
            grad_weight = (grad * rounded).reshape(-1, x.shape[-1]).sum(0).to(weight.dtype)
        grad_normed = grad * weight.to(torch.float32)
        mean = (grad_normed * normed).mean(-1, keepdim=True)
        grad_x = torch.addcmul(grad_normed, normed, mean, value=-1) * scale
        return grad_x.to(x.dtype), grad_weight, None


class _SiluMul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        gate, up = ctx.saved_tensors
        grad_up = grad * F.silu(gate)
        grad_gate = torch.ops.aten.silu_backward(grad * up, gate)
        return grad_gate, grad_up


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _norm_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    if _needs_grad(hidden_states, self.weight):
        return _RMSNorm.apply(hidden_states, self.weight, self.variance_epsilon)
    return rms_norm(hidden_states, self.weight, self.variance_epsilon)[0]


def _mlp_forward(self, x: torch.Tensor) -> torch.Tensor:
    gate, up = self.gate_proj(x), self.up_proj(x)
    hidden = _SiluMul.apply(gate, up) if _needs_grad(gate, up) else F.silu(gate) * up
    return self.down_proj(hidden)


LEAN_FORWARDS = (_norm_forward, _mlp_forward)
"""The functions :func:`make_lean` installs as ``forward`` (the same values as the originals)."""


def supports(model) -> bool:
    """Whether :func:`make_lean` knows the model's layers (Llama-style, SiLU MLP)."""
    config = getattr(model, "config", None)
    return (getattr(config, "model_type", None) in FAMILIES
            and getattr(config, "hidden_act", None) == "silu")


def replace_forwards(model, forwards: dict[str, object]) -> None:
    """Set ``forward`` on each module whose class is transformers' own for the model's family
    and whose class name ends with a key of ``forwards`` (to that key's function)."""
    family = model.config.model_type
    home = f"transformers.models.{family}.modeling_{family}"
    for module in model.modules():
        kind = type(module)
        if kind.__module__ != home:
            continue
        for suffix, forward in forwards.items():
            if kind.__name__.endswith(suffix):
                module.forward = types.MethodType(forward, module)


def make_lean(model) -> bool:
    """Switch a Llama-style model to the lean functions; False (and no change) otherwise."""
    if not supports(model):
        return False
    replace_forwards(model, {"RMSNorm": _norm_forward, "MLP": _mlp_forward})
    return True
