"""Optimiser and learning-rate schedule from the ``optim`` config section."""

from __future__ import annotations

import math

import torch

SCHEDULES = ("constant", "linear", "cosine")


def build_optimizer(params: list[torch.nn.Parameter], *, lr: float, weight_decay: float,
                    betas: tuple[float, float], eps: float) -> torch.optim.Optimizer:
    """AdamW, with no weight decay on biases and norm weights (1-D tensors)."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=eps,
                             foreach=False)


def allocate_states(optimizer: torch.optim.Optimizer) -> None:
    """Create AdamW's state of every parameter now, as its first step would.

    Allocated before the first forward pass, the moments (two copies of the
    trained weights) sit together at the start of the heap; created lazily in
    the first step, they interleave with that step's freed activations and
    leave holes that keep the process's resident memory high.
    """
    # torch keeps ``step`` on the CPU in its default float precision unless the group is
    # fused or capturable; those groups are left to create their own state.
    step_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for group in optimizer.param_groups:
        if group.get("fused") or group.get("capturable") or group.get("amsgrad"):
            continue
        for param in group["params"]:
            state = optimizer.state[param]
            if state:
                continue
            state["step"] = torch.tensor(0.0, dtype=step_dtype)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)


def lr_factor(step: int, *, schedule: str, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``, then constant, linear decay to 0 or
    cosine decay to 0 at ``total_steps``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, *, schedule: str, warmup_steps: int,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR applying :func:`lr_factor`."""
    def factor(step: int) -> float:
        return lr_factor(step, schedule=schedule, warmup_steps=warmup_steps,
                         total_steps=total_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
