"""Recognising accelerate's mixed-precision wrapper around a model's forward.

``Accelerator.prepare`` under bf16 or fp16 replaces ``forward`` on the model
instance: the class's own forward, run under a ``torch.autocast``, with its
outputs converted to fp32. Code that runs a model's arithmetic itself (the
lean decoding step) computes what that wrapped forward computes only while the
same autocast is in force, which :func:`runs_as_wrapped` checks.

The wrapper is read through the attributes accelerate and torch leave on it
(``__wrapped__``, ``model_forward`` and the autocast in the decorator's
closure); anything laid out otherwise is not recognised, and callers fall back
to the model's forward.
"""

from __future__ import annotations

import torch


def wrapped_autocast(module: torch.nn.Module) -> torch.autocast | None:
    """The autocast of accelerate's wrapper on ``module.forward``.

    Returns ``None`` unless ``forward`` is exactly that wrapper around the
    module's class forward.
    """
    replaced = module.__dict__.get("forward")
    converter = getattr(getattr(replaced, "__func__", None), "__wrapped__", None)
    under_autocast = getattr(converter, "model_forward", None)
    if getattr(under_autocast, "__wrapped__", None) is not type(module).forward:
        return None
    for cell in getattr(under_autocast, "__closure__", None) or ():
        if isinstance(cell.cell_contents, torch.autocast):
            return cell.cell_contents
    return None


def runs_as_wrapped(module: torch.nn.Module) -> bool:
    """Whether the autocast now in force is the one accelerate's wrapper on ``module`` enters.

    Inside it, the wrapper's own autocast changes nothing, so the class's
    arithmetic run by hand gives the wrapped forward's values (before the
    wrapper's conversion of the outputs to fp32, which is exact).
    """
    amp = wrapped_autocast(module)
    if amp is None or not getattr(amp, "_enabled", False):
        return False
    device = getattr(amp, "device", None)
    return (isinstance(device, str) and torch.is_autocast_enabled(device)
            and torch.get_autocast_dtype(device) == getattr(amp, "fast_dtype", None))
