"""Reward models: a transformer backbone with a scalar head read at the last real token.

Saved as ``AutoModelForSequenceClassification`` with one label, so
``from_pretrained`` loads a trained reward model anywhere. The reward is read
here, not through the class's own pooling, because that pooling finds the
last token by comparing ids with the pad id, which goes wrong when the pad
token is also the end-of-sequence token that ends every response.
"""

from __future__ import annotations

from pathlib import Path

import torch

from alignkit.errors import AlignkitError
from alignkit.models.load import _quiet_transformers, read_config_json, torch_dtype
from alignkit.models.lora import forward_takes
from alignkit.models.paths import check_weights_format, model_directory


def load_reward_model(path: str | Path, *, dtype: str = "fp32", trust_remote_code: bool = False,
                      allow_pickle: bool = False, pad_token_id: int | None = None):
    """Load a one-label sequence classifier; a causal-LM directory gets a fresh head."""
    from transformers import AutoModelForSequenceClassification

    _quiet_transformers()
    directory = model_directory(path, what="reward model")
    check_weights_format(directory, allow_pickle=allow_pickle)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            directory, num_labels=1, local_files_only=True, trust_remote_code=trust_remote_code,
            use_safetensors=None if allow_pickle else True, dtype=torch_dtype(dtype),
        )
    except (OSError, ValueError) as exc:
        raise AlignkitError(f"could not load a reward model from '{directory}': {exc}") from None
    return _finish(model, pad_token_id)


def init_reward_model_from_config(config_path: str | Path, *, vocab_size: int | None = None,
                                  dtype: str = "fp32", seed: int = 0,
                                  pad_token_id: int | None = None):
    """Build a randomly initialised one-label sequence classifier from a ``config.json``."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    _quiet_transformers()
    raw = read_config_json(config_path)
    if vocab_size is not None:
        raw["vocab_size"] = vocab_size
    config = AutoConfig.for_model(raw.pop("model_type"), **raw, num_labels=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config, dtype=torch_dtype(dtype))
    return _finish(model, pad_token_id)


def _finish(model, pad_token_id: int | None):
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    if _head(model) is None:
        raise AlignkitError(f"{type(model).__name__} has no 'score' head; alignkit reads rewards "
                            "from a linear 'score' layer (Llama, Qwen, Mistral, GPT-2 families)")
    return model


def _unwrap(model):
    """The transformers model under a peft wrapper, or the model itself."""
    inner = getattr(model, "base_model", None)
    if inner is not None and hasattr(inner, "model") and hasattr(model, "peft_config"):
        return inner.model
    return model


def _head(model):
    return getattr(_unwrap(model), "score", None)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row, for left or right padding.

    Args:
        attention_mask: (B, T), 1 for real tokens.

    Returns:
        (B,) long: the largest position whose mask is 1 (0 for an all-padding row).
    """
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.long()).argmax(dim=1)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift them.

    Args:
        attention_mask: (B, T), 1 for real tokens.

    Returns:
        (B, T) long; padding positions get 0.
    """
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


def sequence_rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Scalar reward of each sequence, read at its last real token.

    Args:
        model: a one-label sequence classifier (optionally wrapped by peft).
        input_ids: (B, T). attention_mask: (B, T).

    Returns:
        (B,) float32 rewards.
    """
    backbone = _unwrap(model).base_model
    # No KV cache: a scoring pass never decodes further (backbones without the option get none)
    options = {"use_cache": False} if forward_takes(backbone, "use_cache") else {}
    hidden = backbone(
        input_ids=input_ids, attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask), **options,
    ).last_hidden_state
    idx = last_token_index(attention_mask)                           # (B,)
    last_hidden = hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]  # (B, H)
    return _head(model)(last_hidden).squeeze(-1).float()             # (B,)
