"""Build the model a training command trains, from its ``model`` and ``peft`` sections."""

from __future__ import annotations

import contextlib

import torch

from alignkit.errors import AlignkitError
from alignkit.models.attention import install as install_cpu_attention
from alignkit.models.causal_attention import install as install_causal_attention
from alignkit.models.lean_ops import make_lean
from alignkit.models.load import (
    enable_checkpointing,
    init_causal_lm_from_config,
    load_causal_lm,
    load_tokenizer,
)
from alignkit.models.lora import apply_lora, load_adapter, require_qlora_support
from alignkit.models.reward import init_reward_model_from_config, load_reward_model


def tokenizer_for(model_cfg):
    """The tokenizer named by ``model.tokenizer``, else the one beside ``model.path``."""
    source = model_cfg.tokenizer or model_cfg.path
    return load_tokenizer(source, trust_remote_code=model_cfg.trust_remote_code)


def _check_quantisation(model_cfg, peft_cfg) -> None:
    if model_cfg.load_in_4bit:
        if not peft_cfg.enabled:
            raise AlignkitError("model.load_in_4bit (QLoRA) needs peft.enabled: true; a 4-bit "
                                "base cannot be trained directly")
        if model_cfg.init_from_config is not None:
            raise AlignkitError("model.load_in_4bit needs model.path: a 4-bit base is "
                                "quantised from saved weights")
        require_qlora_support()


def build_policy(model_cfg, peft_cfg, tokenizer, *, seed: int):
    """The causal LM to train, with LoRA adapters when ``peft.enabled``."""
    _check_quantisation(model_cfg, peft_cfg)
    if model_cfg.init_from_config is not None:
        model = init_causal_lm_from_config(
            model_cfg.init_from_config, vocab_size=len(tokenizer), dtype=model_cfg.dtype,
            seed=seed, gradient_checkpointing=model_cfg.gradient_checkpointing,
            trust_remote_code=model_cfg.trust_remote_code)
    else:
        model = load_causal_lm(
            model_cfg.path, dtype=model_cfg.dtype, trust_remote_code=model_cfg.trust_remote_code,
            allow_pickle=model_cfg.allow_pickle,
            gradient_checkpointing=model_cfg.gradient_checkpointing,
            load_in_4bit=model_cfg.load_in_4bit)
    _align_special_tokens(model, tokenizer)
    use_model_options(model, model_cfg)
    return _with_adapters(model, peft_cfg, task_type="CAUSAL_LM")


def build_reward_model(model_cfg, peft_cfg, tokenizer, *, seed: int):
    """A one-label sequence classifier (fresh head on a causal LM, or a trained RM)."""
    if model_cfg.load_in_4bit:
        raise AlignkitError("model.load_in_4bit applies to policies (sft, dpo); reward models "
                            "are loaded in model.dtype")
    if model_cfg.init_from_config is not None:
        model = init_reward_model_from_config(
            model_cfg.init_from_config, vocab_size=len(tokenizer), dtype=model_cfg.dtype,
            seed=seed, pad_token_id=tokenizer.pad_token_id)
    else:
        with _seeded(seed):
            model = load_reward_model(
                model_cfg.path, dtype=model_cfg.dtype,
                trust_remote_code=model_cfg.trust_remote_code,
                allow_pickle=model_cfg.allow_pickle, pad_token_id=tokenizer.pad_token_id)
    if model_cfg.gradient_checkpointing:
        enable_checkpointing(model)
    use_model_options(model, model_cfg)
    return _with_adapters(model, peft_cfg, task_type="SEQ_CLS", modules_to_save=["score"])


def use_model_options(model, model_cfg) -> None:
    """Apply ``model.lean_activations`` and ``model.cpu_attention`` to a model to train."""
    if model_cfg.lean_activations:
        make_lean(model)
    if model_cfg.cpu_attention and install_cpu_attention(model):
        install_causal_attention(model)


def _with_adapters(model, peft_cfg, *, task_type: str, modules_to_save=None):
    if not peft_cfg.enabled:
        return model
    if peft_cfg.adapter is not None:
        return load_adapter(model, peft_cfg.adapter, trainable=True)
    return apply_lora(model, r=peft_cfg.r, alpha=peft_cfg.alpha, dropout=peft_cfg.dropout,
                      target_modules=peft_cfg.target_modules, task_type=task_type,
                      modules_to_save=modules_to_save)


def _align_special_tokens(model, tokenizer) -> None:
    """Make generation and padding use the tokenizer's ids."""
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            setattr(model.config, name, value)
            if getattr(model, "generation_config", None) is not None:
                setattr(model.generation_config, name, value)


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed the fresh reward head without disturbing the global RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
