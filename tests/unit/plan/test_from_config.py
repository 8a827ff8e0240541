"""A training command's resolved config as the planner's inputs, and the device it runs on."""

import json

import pytest

from alignkit.errors import ConfigError
from alignkit.plan.from_config import (
    MEMORY_ENV,
    Unplannable,
    available_memory,
    plan_inputs,
    training_device,
)
from alignkit.plan.settings import PlanSettings
from alignkit.train.dpo_config import DPOConfig
from alignkit.train.group_config import GRPOConfig
from alignkit.train.ppo_config import PPOConfig
from alignkit.train.sft_config import SFTConfig

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            vocab_size=96)


def _write_config(directory, **changes):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(dict(TINY, **changes)))
    return directory


def _random_model(tmp_path) -> dict:
    _write_config(tmp_path)
    return {"init_from_config": str(tmp_path / "config.json"), "tokenizer": str(tmp_path)}


def test_sft_config_becomes_settings_and_the_tokenizer_sizes_the_vocabulary(tmp_path):
    """init_from_config with a tokenizer of 100 entries: the model planned has 100 rows of
    embeddings and of lm_head. Parameters: 2 layers x (attention 12,288 + MLP 30,720 + norms
    128) + final norm 64 + embeddings 100 x 64 + lm_head 100 x 64 = 99,136."""
    cfg = SFTConfig.model_validate({
        "model": dict(_random_model(tmp_path), dtype="bf16", gradient_checkpointing=True,
                      lean_activations=False),
        "data": {"train": "sft.jsonl", "max_length": 48},
        "train": {"batch_size": 3, "grad_accum": 4, "precision": "bf16"}})
    inputs = plan_inputs(cfg, "sft", vocab_size=100, processes=2)
    assert inputs.settings == PlanSettings(
        method="sft", reference="auto", dtype="bf16", precision="bf16", lora_rank=0,
        lora_targets="all-linear", quantization="none", batch_size=3, grad_accum=4,
        seq_len=48, gradient_checkpointing=True, lean_activations=False, optimizer="adamw",
        zero=0, gpus=2)
    assert inputs.model.vocab == 100 and inputs.model.head == "causal_lm"
    assert inputs.model.params.total == 99_136
    assert inputs.reward_model is None


def test_dpo_config_with_a_precomputed_reference_and_lora(tmp_path):
    """Full fine-tuning settles reference auto as precomputed; the family's losses map to the
    planner's methods; LoRA rank and targets come from peft; a model.path keeps its own
    vocabulary whatever the tokenizer says."""
    model_dir = _write_config(tmp_path / "policy")
    raw = {"model": {"path": str(model_dir)}, "data": {"train": "pairs.jsonl", "max_length": 64},
           "train": {"batch_size": 2, "grad_accum": 8}}
    inputs = plan_inputs(DPOConfig.model_validate(raw), "dpo", vocab_size=5)
    assert inputs.settings == PlanSettings(
        method="dpo", reference="precomputed", dtype="fp32", precision="fp32", batch_size=2,
        grad_accum=8, seq_len=64, gradient_checkpointing=False, gpus=1)
    assert inputs.settings.rows == 4 and inputs.model.vocab == 96

    cdpo = DPOConfig.model_validate(dict(raw, loss={"type": "cdpo"}))
    assert plan_inputs(cdpo, "dpo").settings.method == "dpo"
    lora = DPOConfig.model_validate(dict(raw, loss={"type": "kto"}, peft={
        "enabled": True, "r": 4, "target_modules": ["q_proj", "v_proj"]}))
    s = plan_inputs(lora, "dpo").settings
    assert (s.method, s.reference, s.lora_rank, s.lora_targets) == \
        ("kto", "adapter", 4, ("q_proj", "v_proj"))
    simpo = plan_inputs(DPOConfig.model_validate(dict(raw, loss={"type": "simpo"})), "dpo")
    assert (simpo.settings.method, simpo.settings.reference_mode) == ("simpo", "none")
    rrhf = DPOConfig.model_validate(dict(raw, loss={"type": "rrhf"}))
    with pytest.raises(Unplannable, match="does not model rrhf"):
        plan_inputs(rrhf, "dpo")


def test_grpo_config_from_run_directories(tmp_path):
    """The policy and the reward model are run directories (their final/ is read). 3 prompts
    x k = 8 samples = 24 rows; 2 minibatches of 12 rows, in micro-batches of 5: a training
    pass holds 5 rows, so the planner's accumulation is ceil(24 / 5) = 5 (and 24 / 5 rows
    rounds up to the 5 of a pass). A KL term with fresh LoRA adapters reads the reference
    with the adapter off. The reward model keeps its own vocabulary of 96 and has a one-output
    score head (64 weights) in place of lm_head: 98,624 - 6,144 + 64 = 92,544 parameters."""
    _write_config(tmp_path / "sft" / "final")
    _write_config(tmp_path / "rm" / "final")
    cfg = GRPOConfig.model_validate({
        "model": {"path": str(tmp_path / "sft")},
        "data": {"train": "prompts.jsonl", "max_prompt_length": 40},
        "reward": {"source": str(tmp_path / "rm")},
        "rollout": {"max_new_tokens": 24},
        "group": {"k": 8}, "kl": {"coef": 0.05},
        "update": {"minibatches": 2},
        "peft": {"enabled": True, "r": 8},
        "train": {"prompts_per_iteration": 3, "micro_batch_size": 5}})
    inputs = plan_inputs(cfg, "grpo")
    assert inputs.settings == PlanSettings(
        method="grpo", reference="adapter", dtype="fp32", precision="fp32", lora_rank=8,
        lora_targets="all-linear", batch_size=3, grad_accum=5, prompt_len=40,
        completion_len=24, samples=8, reward_model=True)
    assert (inputs.settings.rows, inputs.settings.train_rows, inputs.settings.row_len) == \
        (24, 5, 64)
    assert inputs.model.label == str(tmp_path / "sft") and inputs.model.vocab == 96
    assert inputs.reward_model.head == "reward"
    assert inputs.reward_model.params.total == 92_544

    no_kl = GRPOConfig.model_validate(dict(cfg.model_dump(), kl={"coef": 0.0},
                                           reward={"source": "fn:rewards:length"},
                                           train={"prompts_per_iteration": 3}))
    s = plan_inputs(no_kl, "grpo").settings
    assert (s.reference, s.reward_model, s.grad_accum) == ("none", False, 2)


def test_ppo_samples_once_and_plans_a_separate_critic_of_its_own_model(tmp_path):
    """PPO: one sample per prompt, a frozen copy as reference without LoRA, 4 minibatches of
    16 prompts: 4 rows per pass, so accumulation 4. A separate critic is planned when it
    starts from the policy's model, not from another one."""
    raw = {"model": _random_model(tmp_path), "data": {"train": "prompts.jsonl"},
           "reward": {"source": "gold"}}
    s = plan_inputs(PPOConfig.model_validate(raw), "ppo").settings
    assert (s.samples, s.rows, s.reference, s.grad_accum, s.train_rows, s.reward_model) == \
        (1, 16, "copy", 4, 4, False)
    assert not s.separate_critic
    separate = PPOConfig.model_validate(dict(raw, value={"model": "separate"}))
    assert plan_inputs(separate, "ppo").settings.separate_critic
    other = PPOConfig.model_validate(dict(raw, value={"model": "separate",
                                                      "path": str(tmp_path / "critic")}))
    with pytest.raises(Unplannable, match="separate PPO critic only when"):
        plan_inputs(other, "ppo")


def test_continued_adapter_gives_its_own_rank_and_targets(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps(
        {"r": 2, "target_modules": ["v_proj", "q_proj"]}))
    cfg = SFTConfig.model_validate({
        "model": _random_model(tmp_path), "data": {"train": "sft.jsonl"},
        "peft": {"enabled": True, "r": 16, "adapter": str(adapter)}})
    s = plan_inputs(cfg, "sft").settings
    assert (s.lora_rank, s.lora_targets) == (2, ("q_proj", "v_proj"))


def test_cpu_device_is_the_available_memory_shared_by_processes(tmp_path, monkeypatch):
    """MemAvailable 3,000,000 kB = 3,072,000,000 bytes, over 2 processes; no runtime is
    added (this process is already running). The environment variable replaces it."""
    import torch

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemFree:         1000000 kB\n"
                       "MemAvailable:    3000000 kB\n")
    assert available_memory(meminfo) == 3_072_000_000
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("alignkit.plan.from_config.available_memory", lambda: 3_072_000_000)
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    device = training_device(processes=2)
    assert (device.name, device.memory, device.runtime) == ("cpu", 1_536_000_000, 0)
    monkeypatch.setenv(MEMORY_ENV, "0.5")
    assert training_device().memory == 2**29
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(ConfigError, match="ALIGNKIT_PLAN_MEMORY_GIB='lots' must be a positive"):
        training_device()


def test_update_in_backward_reaches_the_plan(tmp_path):
    cfg = SFTConfig.model_validate({
        "model": _random_model(tmp_path), "data": {"train": "sft.jsonl", "max_length": 48},
        "optim": {"update_in_backward": True, "max_grad_norm": 0}})
    inputs = plan_inputs(cfg, "sft", vocab_size=100, processes=1)
    assert inputs.settings.update_in_backward is True
    from alignkit.plan.phases import plan_memory

    assert "optimizer step" not in plan_memory(inputs.model, inputs.settings).phases
