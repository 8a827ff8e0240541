"""Models and tokenizers for evaluation: local paths or run directories, in eval mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignkit.errors import AlignkitError
from alignkit.rundir import resolve_model_dir


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise AlignkitError(f"unknown device '{name}': {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AlignkitError(f"device '{name}' asked for, but CUDA is not available here")
    return device


@dataclass
class LoadedModel:
    """A model ready to evaluate.

    Attributes:
        model: the model, in eval mode, on ``device``.
        tokenizer: its tokenizer.
        path: the directory the weights came from (a run's ``final/`` for a run).
    """

    model: Any
    tokenizer: Any
    path: Path


def _directory(path: str | Path) -> Path:
    directory = resolve_model_dir(path)
    if not (directory / "config.json").is_file():
        raise AlignkitError(f"'{path}' holds a LoRA adapter, not a full model; run "
                            "`alignkit merge RUN_DIR` and evaluate RUN_DIR/merged")
    return directory


def load_policy(path: str | Path, *, dtype: str = "fp32",
                device: torch.device | str = "cpu") -> LoadedModel:
    """A causal LM and its tokenizer from a model directory or a finished run."""
    from alignkit.models.load import load_causal_lm, load_tokenizer

    directory = _directory(path)
    tokenizer = load_tokenizer(directory)
    model = load_causal_lm(directory, dtype=dtype).to(device).eval()
    return LoadedModel(model, tokenizer, directory)


def load_scorer(path: str | Path, *, dtype: str = "fp32",
                device: torch.device | str = "cpu") -> LoadedModel:
    """A reward model (one-label sequence classifier) and its tokenizer."""
    from alignkit.models.load import load_tokenizer
    from alignkit.models.reward import load_reward_model

    directory = _directory(path)
    check_is_reward_model(directory)
    tokenizer = load_tokenizer(directory)
    model = load_reward_model(directory, dtype=dtype, pad_token_id=tokenizer.pad_token_id)
    return LoadedModel(model.to(device).eval(), tokenizer, directory)


def check_is_reward_model(directory: Path) -> None:
    """Refuse a causal LM: its reward head would be freshly random, its rewards noise."""
    from alignkit.models.load import read_config_json

    architectures = read_config_json(directory).get("architectures") or []
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise AlignkitError(f"'{directory}' is a {architectures[0]}, not a reward model (a "
                            "sequence classifier, as `alignkit rm` saves); its reward head "
                            "would be random")
