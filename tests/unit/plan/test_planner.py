"""plan_for_training from a trainer's config sections, and the one-line summary."""

import json

from alignkit.plan.catalogue import GIB, Device
from alignkit.plan.planner import gib, plan_for_training
from alignkit.train.dpo_config import DPOConfig
from alignkit.train.sft_config import SFTConfig

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            vocab_size=96)


def _config(tmp_path, schema, **sections):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    raw = {"model": {"init_from_config": str(tmp_path / "config.json"),
                     "tokenizer": str(tmp_path)},
           "data": {"train": "unused.jsonl", "max_length": 32}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return schema.model_validate(raw)


def test_sections_become_settings(tmp_path):
    """The trainer's vocabulary (the tokenizer's length) replaces the config's 96."""
    cfg = _config(tmp_path, DPOConfig, peft={"enabled": True, "r": 4,
                                             "target_modules": ["q_proj", "v_proj"]},
                  train={"batch_size": 3, "grad_accum": 2, "precision": "bf16"},
                  model={"gradient_checkpointing": True, "lean_activations": False})
    plan = plan_for_training(cfg.model, "dpo", peft=cfg.peft, train=cfg.train, data=cfg.data,
                             reference="adapter", vocab_size=100,
                             device=Device("box", 8 * GIB, None, None, 0))
    s = plan.settings
    assert (s.method, s.reference_mode, s.dtype, s.precision, s.lora_rank, s.lora_targets) == \
        ("dpo", "adapter", "fp32", "bf16", 4, ("q_proj", "v_proj"))
    assert (s.batch_size, s.grad_accum, s.seq_len, s.gradient_checkpointing) == (3, 2, 32, True)
    assert not s.lean_activations
    assert plan.model.vocab == 100
    assert plan.trainable == 2 * (4 * (64 + 64) + 4 * (64 + 32))
    assert plan.fits and plan.headroom == 8 * GIB - plan.total


def test_summary_says_whether_it_fits(tmp_path):
    """Sizes below a GiB are shown in MiB; the time only when the device states TFLOPS."""
    cfg = _config(tmp_path, SFTConfig)
    small = Device("box", 2 * 1024**2, 1.0, None, 1024**2)
    plan = plan_for_training(cfg.model, "sft", train=cfg.train, data=cfg.data, device=small)
    assert plan.total == plan.peak + 1024**2 and plan.peak > 1024**2
    assert not plan.fits
    over = (plan.total - 2 * 1024**2) / 2**20
    assert plan.summary() == (
        f"plan: sft on {tmp_path / 'config.json'} (fp32, full, batch 8 x 32 tokens): peak "
        f"{plan.total / 2**20:.1f} MiB of 2.0 MiB on box (DOES NOT FIT by {over:.1f} MiB); "
        f"~{plan.time.seconds:.2g} s/step")
    big = plan_for_training(cfg.model, "sft", train=cfg.train, data=cfg.data,
                            device=Device("cpu", 64 * GIB, None, None, 0))
    assert big.summary().endswith(f"of 64.00 GiB on cpu (fits, {gib(big.headroom)} free)")
    bf16 = _config(tmp_path, SFTConfig, train={"precision": "bf16"})
    autocast = plan_for_training(bf16.model, "sft", train=bf16.train, data=bf16.data,
                                 device=small)
    assert "(fp32, bf16 autocast, full, batch 8 x 32 tokens)" in autocast.summary()


def test_online_sections_and_bad_lora_targets(tmp_path):
    """An online run's prompts per iteration and prompt length fill batch and prompt_len;
    the rest comes as keywords. LoRA targets that match no layer are refused by name."""
    import pytest

    from alignkit.errors import ConfigError
    from alignkit.train.group_config import GRPOConfig

    (tmp_path / "config.json").write_text(json.dumps(TINY))
    cfg = GRPOConfig.model_validate({
        "model": {"init_from_config": str(tmp_path / "config.json"), "tokenizer": str(tmp_path)},
        "data": {"train": "prompts.jsonl", "max_prompt_length": 48},
        "reward": {"source": "gold"},
        "train": {"prompts_per_iteration": 5}})
    device = Device("box", 8 * GIB, None, None, 0)
    plan = plan_for_training(cfg.model, "grpo", train=cfg.train, data=cfg.data, device=device,
                             samples=cfg.group.k, completion_len=cfg.rollout.max_new_tokens,
                             reward_model=False)
    s = plan.settings
    assert (s.batch_size, s.samples, s.prompt_len, s.completion_len, s.rows) == (5, 4, 48, 64, 20)
    assert "kv_cache" in plan.memory.components and plan.memory.phases["generation"] > 0
    with pytest.raises(ConfigError, match="LoRA targets wq, wv match no linear layer of .*; its "
                                          "layers: q_proj, k_proj, v_proj, o_proj"):
        plan_for_training(cfg.model, "grpo", train=cfg.train, data=cfg.data, device=device,
                          lora_rank=8, lora_targets=("wq", "wv"))
