"""Load causal language models and tokenizers from local directories only.

Also builds randomly initialised models from a ``config.json`` (for tests,
benchmarks and the lab), so no weights are needed to try a command.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from alignkit.errors import AlignkitError
from alignkit.models.paths import check_weights_format, model_directory

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    """Map a config name (``fp32``, ``bf16``, ``fp16``) to a torch dtype."""
    try:
        return DTYPES[name]
    except KeyError:
        raise AlignkitError(f"unknown dtype '{name}'; choose one of {', '.join(DTYPES)}") from None


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False):
    """Load a tokenizer from a local directory (a model directory or a run's ``final/``)."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    directory = Path(path)
    if not directory.is_dir():
        raise AlignkitError(f"tokenizer path '{path}' is not a directory")
    if (directory / "final").is_dir() and not (directory / "tokenizer_config.json").exists():
        directory = directory / "final"
    try:
        tok = AutoTokenizer.from_pretrained(
            directory, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise AlignkitError(f"could not load a tokenizer from '{path}': {exc}") from None
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(
    path: str | Path,
    *,
    dtype: str = "fp32",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    gradient_checkpointing: bool = False,
    load_in_4bit: bool = False,
):
    """Load a causal LM from a local Hugging Face directory (or a run directory).

    Args:
        path: model directory, or a run directory whose ``final/`` holds the model.
        dtype: ``fp32``, ``bf16`` or ``fp16``: the dtype the weights are kept in.
        trust_remote_code: allow custom modelling code shipped with the checkpoint.
        allow_pickle: allow ``.bin``/``.pt`` weights (unsafe: pickle runs code).
        gradient_checkpointing: recompute activations in backward to save memory.
        load_in_4bit: keep the weights in 4-bit NF4 with double quantisation
            and bf16 compute (QLoRA; needs CUDA and bitsandbytes). Such a model
            can only be trained through adapters.
    """
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    directory = model_directory(path)
    check_weights_format(directory, allow_pickle=allow_pickle)
    extra = _four_bit_options() if load_in_4bit else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            directory,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            use_safetensors=None if allow_pickle else True,
            dtype=torch_dtype(dtype),
            **extra,
        )
    except (OSError, ValueError) as exc:
        raise AlignkitError(f"could not load a causal LM from '{directory}': {exc}") from None
    if load_in_4bit:
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing)
    return _prepare(model, gradient_checkpointing)


def _four_bit_options() -> dict:
    """from_pretrained options for a QLoRA base: NF4, double quantisation, bf16 compute."""
    from transformers import BitsAndBytesConfig

    from alignkit.models.lora import require_qlora_support

    require_qlora_support()
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    return {"quantization_config": quant, "device_map": {"": torch.cuda.current_device()}}


def read_config_json(path: str | Path) -> dict:
    """Read a ``config.json`` (or a directory holding one) as a dict, with clear errors."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise AlignkitError(f"model config '{p}' does not exist")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AlignkitError(f"model config '{p}' is not valid JSON: {exc}") from None


def init_causal_lm_from_config(
    config_path: str | Path,
    *,
    vocab_size: int | None = None,
    dtype: str = "fp32",
    seed: int = 0,
    gradient_checkpointing: bool = False,
    trust_remote_code: bool = False,
):
    """Build a randomly initialised causal LM from a ``config.json``.

    Args:
        config_path: a ``config.json`` file or a directory holding one.
        vocab_size: when given (the tokenizer's length), overrides the config's
            vocabulary size so embeddings match the tokenizer.
        seed: seeds the initialisation, so the same seed gives the same weights.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    _quiet_transformers()
    raw = read_config_json(config_path)
    if "model_type" not in raw:
        raise AlignkitError(f"model config '{config_path}' has no 'model_type'")
    if vocab_size is not None:
        raw["vocab_size"] = vocab_size
    model_type = raw.pop("model_type")
    try:
        config = AutoConfig.for_model(model_type, **raw)
    except (ValueError, KeyError) as exc:
        raise AlignkitError(f"model config '{config_path}': {exc}") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(
            config, dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code
        )
    return _prepare(model, gradient_checkpointing)


def _prepare(model, gradient_checkpointing: bool):
    if gradient_checkpointing:
        enable_checkpointing(model)
        model.config.use_cache = False
    return model


def enable_checkpointing(model) -> None:
    """Recompute each layer's activations in backward (non-reentrant checkpoints).

    transformers renamed the method; the old name warns from 5.2x and goes in 6,
    the new one is missing before it, and the project supports both.
    """
    options = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
