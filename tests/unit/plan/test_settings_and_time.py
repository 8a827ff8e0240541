"""Settings checks, rows per method, and FLOPs-based step times worked out by hand."""

import pytest

from alignkit.errors import ConfigError
from alignkit.plan.architecture import describe_model
from alignkit.plan.catalogue import Device
from alignkit.plan.settings import PlanSettings, check_settings
from alignkit.plan.step_time import estimate_step_time, matmul_params

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            vocab_size=96)


@pytest.mark.parametrize("settings, message", [
    (PlanSettings("simpo", reference="copy"), "method 'simpo' uses no reference policy"),
    (PlanSettings("dpo", reference="none"), "method 'dpo' needs a reference policy"),
    (PlanSettings("dpo", reference="adapter"), "'adapter' needs LoRA"),
    (PlanSettings("grpo", reference="precomputed"), "impossible for 'grpo'"),
    (PlanSettings("sft", quantization="4bit"), "a 4bit base cannot be trained directly"),
    (PlanSettings("sft", zero=2), "ZeRO stage 2 shards over GPUs: give gpus >= 2"),
    (PlanSettings("sft", dtype="fp8"), "dtype 'fp8' is not one of fp32, bf16, fp16"),
    (PlanSettings("sft", batch_size=0), "batch_size must be at least 1"),
])
def test_contradictions_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        check_settings(settings)


def test_reference_auto_and_rows():
    """auto: none without a reference (and for RLOO/GRPO, whose KL term is off by default),
    adapter with LoRA, precomputed offline, a copy for PPO. Rows: a pair is two sequences;
    online, prompts x samples (PPO samples one)."""
    assert PlanSettings("simpo").reference_mode == "none"
    assert PlanSettings("dpo").reference_mode == "precomputed"
    assert PlanSettings("dpo", lora_rank=8).reference_mode == "adapter"
    assert PlanSettings("ppo").reference_mode == "copy"
    assert PlanSettings("grpo").reference_mode == "none"
    assert PlanSettings("grpo", reference="copy").reference_mode == "copy"
    assert check_settings(PlanSettings("rloo", reference="none"))
    assert PlanSettings("sft", batch_size=3).rows == 3
    assert PlanSettings("dpo", batch_size=3).rows == 6
    grpo = PlanSettings("grpo", batch_size=3, samples=4, grad_accum=5, prompt_len=10,
                        completion_len=20)
    assert (grpo.rows, grpo.train_rows, grpo.row_len) == (12, 3, 30)
    assert PlanSettings("ppo", batch_size=3, samples=4).rows == 3


def test_training_step_flops_and_seconds():
    """N = 98,624 - 6,144 input embeddings = 92,480 weights in matrix products. Attention
    forward per token: 4 x L x (heads x head_dim) x T = 4 x 2 x 64 x 32 = 16,384.
    SFT, 2 rows x 32 tokens, accumulation 3: 192 tokens x (6N + 3 x 16,384) = 192 x 604,032
    = 115,974,144 FLOPs. At 1 TFLOPS x 50%: 115,974,144 / 5e11 = 2.31948288e-4 s.
    LoRA: 4N instead of 6N (no weight gradients): 192 x 419,072. Checkpointing adds a
    forward: 192 x (604,032 + 2N + 16,384)."""
    shape = describe_model("tiny", TINY)
    assert matmul_params(shape) == 92_480
    device = Device("test", 10**9, 1.0, None, 0)
    s = PlanSettings("sft", batch_size=2, seq_len=32, grad_accum=3)
    t = estimate_step_time(shape, s, device, weight_bytes=0, efficiency=0.5)
    assert t.flops == {"training": 115_974_144}
    assert t.tokens == 192
    assert t.seconds == pytest.approx(2.31948288e-4, rel=1e-12)
    lora = estimate_step_time(shape, s.but(lora_rank=8), device, weight_bytes=0)
    assert lora.flops["training"] == 192 * 419_072
    ckpt = estimate_step_time(shape, s.but(gradient_checkpointing=True), device, weight_bytes=0)
    assert ckpt.flops["training"] == 192 * (604_032 + 2 * 92_480 + 16_384)
    dpo = estimate_step_time(shape, PlanSettings("dpo", lora_rank=8, batch_size=1, seq_len=32),
                             device, weight_bytes=0)
    assert dpo.flops == {"training": 64 * 419_072, "reference": 64 * (2 * 92_480 + 16_384)}


def test_generation_is_bound_by_reading_the_weights():
    """GRPO, 2 prompts x 4 samples, 8 + 16 tokens. Sampling FLOPs: 2N x (2 x 8 prompt tokens +
    8 x 16 sampled) = 184,960 x 144 = 26,634,240: 2.66e-5 s at 1 TFLOPS. Reading 1 MB of
    weights per sampled token at 1 GB/s: 16 x 1e6 / 1e9 = 0.016 s, the larger, so the
    generation takes 0.016 s. Without a throughput there are no seconds at all."""
    shape = describe_model("tiny", TINY)
    s = PlanSettings("grpo", batch_size=2, samples=4, prompt_len=8, completion_len=16)
    t = estimate_step_time(shape, s, Device("test", 10**9, 1.0, 1e9, 0), weight_bytes=10**6,
                           efficiency=1.0)
    assert t.flops["generation"] == 26_634_240
    assert t.generation_seconds == pytest.approx(0.016)
    assert t.seconds > t.generation_seconds
    assert estimate_step_time(shape, s, Device("cpu", 10**9, None, None, 0),
                              weight_bytes=10**6).seconds is None


def test_a_separate_ppo_critic_adds_its_passes():
    """PPO, 2 prompts, 8 + 16 tokens: 48 tokens. The critic's matrix weights are N without the
    output head: 92,480 - 6,144 = 86,336; attention 4 x 2 x 64 x 24 = 12,288 per token. Its
    no-grad pass 2 x 86,336 + 12,288 = 184,960 and 4 update epochs of 6 x 86,336 + 3 x 12,288
    = 554,880 give 2,404,480 per token: 115,415,040 FLOPs."""
    shape = describe_model("tiny", TINY)
    device = Device("test", 10**9, 1.0, None, 0)
    s = PlanSettings("ppo", batch_size=2, prompt_len=8, completion_len=16)
    shared = estimate_step_time(shape, s, device, weight_bytes=0).flops
    separate = estimate_step_time(shape, s.but(separate_critic=True), device,
                                  weight_bytes=0).flops
    assert "critic" not in shared
    assert separate == dict(shared, critic=115_415_040)
