"""LoRA and QLoRA wiring through peft, and merging an adapter back into its base."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
from collections.abc import Iterator
from pathlib import Path

import torch

from alignkit.errors import AlignkitError


def apply_lora(model, *, r: int, alpha: float, dropout: float, target_modules: list[str] | str,
               task_type: str = "CAUSAL_LM", modules_to_save: list[str] | None = None):
    """Wrap ``model`` with fresh LoRA adapters; only adapter weights stay trainable.

    Args:
        r: adapter rank. alpha: scaling numerator (scale = alpha / r).
        target_modules: module names (e.g. ``["q_proj", "v_proj"]``) or ``"all-linear"``.
        modules_to_save: extra modules trained in full (e.g. a reward head ``score``).
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
        task_type=task_type, modules_to_save=modules_to_save,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise AlignkitError(f"peft.target_modules {target_modules!r}: {exc}") from None


def load_adapter(model, adapter_dir: str | Path, *, trainable: bool = True):
    """Attach an existing adapter (a peft directory) to ``model`` to continue training it."""
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise AlignkitError(f"'{adapter_dir}' holds no adapter_config.json")
    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)


def base_of(model):
    """The transformers model under a peft wrapper (``model`` itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def forward_takes(model, *names: str) -> bool:
    """Whether the transformers model under any DDP and peft wrappers takes every keyword
    of ``names`` (the wrappers' own ``forward`` passes keywords on)."""
    inner = base_of(getattr(model, "module", model))
    taken = inspect.signature(inner.forward).parameters
    return all(name in taken for name in names)


def is_peft_model(model) -> bool:
    """True when ``model`` carries peft adapters."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@contextlib.contextmanager
def adapters_disabled(model) -> Iterator[None]:
    """Run the base model alone: the reference policy of an adapter-trained model."""
    if not is_peft_model(model):
        raise AlignkitError("reference.mode 'adapter' needs LoRA (peft) to be enabled")
    with model.disable_adapter():
        yield


def require_qlora_support() -> None:
    """Raise a clear error when 4-bit loading is impossible here (no CUDA or bitsandbytes)."""
    if not torch.cuda.is_available():
        raise AlignkitError("QLoRA (model.load_in_4bit) needs a CUDA GPU; none is available. "
                            "Use plain LoRA on this machine.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise AlignkitError("QLoRA (model.load_in_4bit) needs the bitsandbytes package: "
                            "pip install bitsandbytes")


def merge_adapter(model):
    """Fold the adapter into the base weights and return the plain model."""
    if not is_peft_model(model):
        raise AlignkitError("this model has no adapter to merge")
    return model.merge_and_unload()
