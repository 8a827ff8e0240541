"""Bytes per component and per phase, worked out by hand for the tiny Llama.

The tiny model (see test_architecture.py) has P = 98,624 parameters: embeddings
6,144, lm_head 6,144, and 86,016 in the decoder layers' linear layers
(2 x (12,288 + 30,720)); LoRA r=8 on all linear layers adds 17,920.
"""

import pytest

from alignkit.plan.architecture import describe_model
from alignkit.plan.memory import (
    NF4_BYTES,
    gradient_bytes,
    logit_chunk_bytes,
    model_bytes,
    optimizer_bytes,
    stored_weight_bytes,
)
from alignkit.plan.phases import plan_memory
from alignkit.plan.settings import PlanSettings

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            vocab_size=96)
P, LORA = 98_624, 17_920


@pytest.fixture(scope="module")
def shape():
    return describe_model("tiny", TINY)


def _parts(shape, **settings):
    s = PlanSettings("sft", **settings)
    model = model_bytes(shape, s, trains=True)
    return (stored_weight_bytes(model, s), gradient_bytes(model, s), optimizer_bytes(model, s),
            model.trainable)


def test_full_fine_tuning_fp32_and_bf16(shape):
    """fp32: 4 + 4 + 8 = 16 bytes per parameter; bf16 weights: torch's AdamW keeps its
    moments in the parameter's dtype, so 2 + 2 + 4 = 8."""
    assert _parts(shape, dtype="fp32") == (4 * P, 4 * P, 8 * P, P)
    assert _parts(shape, dtype="bf16") == (2 * P, 2 * P, 4 * P, P)
    assert sum(_parts(shape, dtype="fp32")[:3]) == 16 * P == 1_577_984


def test_lora_trains_fp32_adapters_on_a_frozen_base(shape):
    """bf16 base 2P = 197,248 plus fp32 adapters 4 x 17,920 = 71,680; gradients and moments
    only for the adapters: 4 x 17,920 and 8 x 17,920."""
    assert _parts(shape, dtype="bf16", lora_rank=8) == \
        (2 * P + 4 * LORA, 4 * LORA, 8 * LORA, LORA)


def test_eight_bit_adamw(shape):
    """Two 1-byte moments plus an fp32 scale per 256 values for each: 2 + 8/256 = 2.03125
    bytes per parameter, 98,624 x 2.03125 = 200,330."""
    assert _parts(shape, dtype="fp32", optimizer="adamw8bit")[2] == 200_330


def test_zero_stages_shard_states_then_gradients_then_weights(shape):
    """Over 4 GPUs: stage 1 quarters the moments (8P/4 = 197,248), stage 2 also the
    gradients (4P/4 = 98,624), stage 3 also the weights (4P/4)."""
    full = (4 * P, 4 * P, 8 * P, P)
    assert _parts(shape, dtype="fp32", gpus=4) == full
    assert _parts(shape, dtype="fp32", gpus=4, zero=1) == (4 * P, 4 * P, 2 * P, P)
    assert _parts(shape, dtype="fp32", gpus=4, zero=2) == (4 * P, P, 2 * P, P)
    assert _parts(shape, dtype="fp32", gpus=4, zero=3) == (P, P, 2 * P, P)


def test_four_bit_base(shape):
    """NF4 with double quantisation: (4 + 8/64 + 32/(64 x 256)) / 8 = 0.515869140625 bytes per
    weight. The 86,016 linear weights take 44,373 bytes exactly; the other 12,608 stay fp32
    (50,432 bytes); the adapters 71,680. Total 166,485."""
    assert NF4_BYTES == 0.515869140625
    weights, _, _, trainable = _parts(shape, lora_rank=8, quantization="4bit")
    assert (weights, trainable) == (44_373 + 50_432 + 71_680, LORA)


def test_logit_chunks():
    """2 rows x 96 logits per position: 4,194,304 // 192 = 21,845 positions fit a chunk, more
    than the 31 predicted positions, so one chunk of 2 x 31 x 96 fp32 logits (23,808 bytes):
    the backward holds it once; the forward also copies the two-row slice (47,616).
    With a 100,000-word vocabulary and 64 rows a chunk is one position (25,600,000 bytes)
    and there are 511 of them, so the previous chunk is alive too: backward 2 chunks,
    forward 3. One row and one chunk: a contiguous slice, one chunk either way."""
    assert logit_chunk_bytes(2, 32, 96, backward=True) == 23_808
    assert logit_chunk_bytes(2, 32, 96, backward=False) == 47_616
    assert logit_chunk_bytes(64, 512, 100_000, backward=True) == 2 * 25_600_000
    assert logit_chunk_bytes(64, 512, 100_000, backward=False) == 3 * 25_600_000
    assert logit_chunk_bytes(1, 32, 96, backward=False) == 4 * 31 * 96


def test_sft_phases_by_hand(shape):
    """fp32, no autocast, batch 2 x 32 tokens without padding, one micro-batch.

    Activations: 4,888 bytes per token per layer (see test_activations.py), two layers,
    plus 780 per token after them: 10,556 x 64 tokens = 675,584. Logits 2 x 32 x 96 x 4 =
    24,576, kept, and as much again for their gradient, plus one 23,808-byte chunk.
    backward = 4P + 8P + 675,584 + 2 x 24,576 + 23,808 = 1,932,032.
    optimizer step = 4P + 8P + 4P + two temporaries of the largest tensor (an MLP weight of
    160 x 64 = 10,240: 2 x 4 x 10,240 = 81,920) = 1,659,904. The peak is the backward.
    """
    memory = plan_memory(shape, PlanSettings("sft", dtype="fp32", precision="fp32",
                                             batch_size=2, seq_len=32, padded=False,
                                             lean_activations=False))
    assert memory.phases["backward"] == 1_932_032
    assert memory.phases["optimizer step"] == 1_659_904
    assert memory.phases["forward"] == 4 * P + 8 * P + 675_584 + 24_576
    assert memory.peak_phase == "backward" and memory.peak == 1_932_032
    assert memory.components == {
        "weights": 4 * P, "gradients": 0, "optimizer": 8 * P, "activations": 675_584,
        "logits": 49_152, "reference": 0, "reward_model": 0, "value_model": 0, "kv_cache": 0,
        "workspace": 23_808}


def test_lean_activations_by_hand(shape):
    """The same run with the lean RMSNorm and SwiGLU (the trainers' default): each norm keeps
    4h + 4 = 260 bytes instead of 516 and each MLP 2 x 4 x 160 = 1,280 instead of 1,920, so a
    layer keeps 4,888 - 2 x 256 - 640 = 3,736 bytes per token and what follows the layers
    524 instead of 780: (2 x 3,736 + 524) x 64 = 511,744, 163,840 less than 675,584."""
    memory = plan_memory(shape, PlanSettings("sft", dtype="fp32", precision="fp32",
                                             batch_size=2, seq_len=32, padded=False))
    assert memory.phases["backward"] == 1_932_032 - 163_840
    assert memory.phases["forward"] == 4 * P + 8 * P + 511_744 + 24_576


def test_accumulation_keeps_gradients_through_later_micro_batches(shape):
    """With 2 micro-batches the first one's gradients (4P) live through the second's backward."""
    one = plan_memory(shape, PlanSettings("sft", dtype="fp32", precision="fp32", batch_size=2,
                                          seq_len=32, padded=False))
    two = plan_memory(shape, PlanSettings("sft", dtype="fp32", precision="fp32", batch_size=2,
                                          seq_len=32, padded=False, grad_accum=2))
    assert two.phases["backward"] - one.phases["backward"] == 4 * P


def test_reference_modes(shape):
    """DPO, fp32, 2 pairs (4 rows) x 32 tokens. copy adds a frozen fp32 model (4P) for the
    whole run; adapter and copy run a no-grad pass during the step whose logits are
    4 x 32 x 96 x 4 = 49,152 bytes; precomputed runs its pass before training, with no
    optimiser states yet."""
    def plan(mode, **extra):
        return plan_memory(shape, PlanSettings("dpo", reference=mode, dtype="fp32",
                                               precision="fp32", batch_size=2, seq_len=32,
                                               **extra))
    pre, copy = plan("precomputed"), plan("copy")
    assert copy.phases["optimizer step"] - pre.phases["optimizer step"] == 4 * P
    assert "reference pass" in copy.phases and "reference pass" not in pre.phases
    assert pre.phases["precompute"] < pre.phases["backward"]
    adapter = plan("adapter", lora_rank=8)
    ref_pass = adapter.phases["reference pass"] - adapter.phases["forward"]
    assert ref_pass > 49_152  # its logits plus one layer's no-grad tensors
    assert plan_memory(shape, PlanSettings("simpo", dtype="fp32", precision="fp32",
                                           batch_size=2, seq_len=32)).phases == \
        {name: total for name, total in pre.phases.items() if name != "precompute"}


def test_online_iteration(shape):
    """GRPO, bf16, 2 prompts x 4 samples, 8 + 16 tokens. KV cache: 8 rows x 24 tokens x
    (keys and values) 2 x kv 32 x 2 bytes = 24,576 per layer, for 2 layers plus one layer's
    copy while it grows: 73,728. With a reward model the fp32 reward model (98,624 x 4) is
    alive in every phase; with a KL term a frozen copy of the policy (2P) too."""
    from alignkit.plan.online import kv_cache_bytes

    s = PlanSettings("grpo", batch_size=2, samples=4, prompt_len=8, completion_len=16,
                     reward_model=False)
    assert kv_cache_bytes(shape, s) == 73_728
    bare = plan_memory(shape, s)
    assert set(bare.phases) == {"generation", "forward", "backward", "optimizer step"}
    assert bare.phases["generation"] == 2 * P + 4 * P + 73_728 + \
        (2 * 2 * 64 + 3 * 2 * 160) * 2 * 8 + 3 * 4 * 8 * 96
    scored = plan_memory(shape, s.but(reward_model=True), reward_shape=shape)
    assert scored.phases["optimizer step"] - bare.phases["optimizer step"] == 4 * P
    kl = plan_memory(shape, s.but(reference="copy"))
    assert kl.phases["optimizer step"] - bare.phases["optimizer step"] == 2 * P
    assert {"old log-probs", "reference pass"} <= set(kl.phases)


def test_separate_ppo_critic(shape):
    """PPO, fp32, 2 prompts, 8 + 16 tokens, against the shared value head. The critic is the
    model without its untied output head: P - 96 x 64 = 92,480 parameters, whose weights and
    two moments (12 bytes each: 1,109,760) are alive in every phase and whose gradients
    (369,920) join the optimiser step. Its training pass keeps, per token, two lean padded
    layers of 4,888 + 256 (expanded k, v) + 4 x 24 (the mask copy) - 2 x 256 - 640 = 4,088
    bytes and 260 + 256 + 8 = 524 after them: 8,700 x 48 tokens = 417,600. The no-grad pass
    no longer keeps the shared head's (2 + 1) x 48 x 64 x 4 = 36,864 bytes of hidden states."""
    from alignkit.plan.memory import critic_activations

    s = PlanSettings("ppo", dtype="fp32", precision="fp32", batch_size=2, prompt_len=8,
                     completion_len=16, reward_model=False)
    separate = s.but(separate_critic=True)
    assert critic_activations(shape, separate) == 417_600
    shared = plan_memory(shape, s, value_shape=shape).phases
    own = plan_memory(shape, separate, value_shape=shape).phases
    diff = {name: own[name] - shared[name] for name in shared}
    assert diff == {"generation": 1_109_760, "reference pass": 1_109_760,
                    "old log-probs": 1_109_760 - 36_864,
                    "forward": 1_109_760 + 417_600, "backward": 1_109_760 + 417_600,
                    "optimizer step": 1_109_760 + 369_920}


def test_updates_in_backward_hold_one_gradient_and_no_optimizer_step(shape):
    """The sft case above with optim.update_in_backward: no optimizer-step phase; the backward
    phase's second moment holds, beside the activations and the logits' gradient, one gradient
    of the largest tensor (the MLP weight, 4 x 10,240 = 40,960) and its two AdamW temporaries
    (81,920): 12P + 675,584 + 24,576 + 40,960 + 81,920 = 2,006,528, which now tops the first
    moment's 1,932,032 (on this tiny model the gradients weigh little against the rest)."""
    memory = plan_memory(shape, PlanSettings("sft", dtype="fp32", precision="fp32",
                                             batch_size=2, seq_len=32, padded=False,
                                             lean_activations=False, update_in_backward=True))
    assert "optimizer step" not in memory.phases
    assert memory.phases["backward"] == 2_006_528
    assert memory.components["gradients"] == 40_960


@pytest.mark.parametrize(("change", "method"), [({"grad_accum": 2}, "sft"),
                                                ({"gpus": 2}, "dpo"), ({}, "grpo")])
def test_updates_in_backward_only_offline_in_one_process_without_accumulation(change, method):
    from alignkit.errors import ConfigError
    from alignkit.plan.settings import check_settings

    check_settings(PlanSettings("dpo", update_in_backward=True))
    with pytest.raises(ConfigError, match="update_in_backward is for offline methods"):
        check_settings(PlanSettings(method, update_in_backward=True, **change))


def test_cpu_half_precision_passes_count_the_matmul_attention(shape):
    """On a CPU, a bf16 DPO pass of 2 pairs x 32 tokens takes the matrix-product attention,
    in its causal form for a Llama. Per token and layer it keeps, against SDPA on unmasked rows
    (C = 2, q = 64, kv = 32, 4 heads): the probabilities 4 x 32 x 2 = 256, and not SDPA's
    log-sum-exp, 4 x 4 = 16 (o_proj's input replaces SDPA's output): +240, so 128 tokens x
    2 layers x 240 = 61,440 bytes more. The general route, for families without the causal
    form, also expands k and v: 2 x 2 x (64 - 32) = 128 more, +368 in all (94,208 bytes)."""
    from dataclasses import replace

    from alignkit.plan.memory import policy_activations

    s = PlanSettings(method="dpo", dtype="bf16", precision="bf16", batch_size=2, seq_len=32)
    assert not s.masked  # right-padded rows go without a mask
    assert shape.causal_attention
    assert policy_activations(shape, s.but(on_cpu=True)) - policy_activations(shape, s) \
        == 128 * 2 * 240 == 61_440
    general = replace(shape, causal_attention=False)
    assert policy_activations(general, s.but(on_cpu=True)) - policy_activations(general, s) \
        == 128 * 2 * 368 == 94_208
    for other in (s.but(seq_len=513), s.but(dtype="fp32", precision="fp32"),
                  s.but(attention="eager"), s.but(cpu_attention=False)):
        assert policy_activations(shape, other.but(on_cpu=True)) \
            == policy_activations(shape, other)


def test_only_the_right_padded_methods_drop_the_mask():
    assert [m for m in ("sft", "rm", "dpo", "simpo", "orpo", "kto", "ppo", "grpo")
            if not PlanSettings(method=m).masked] == ["sft", "dpo", "simpo", "orpo", "kto"]
    assert not PlanSettings(method="rm", padded=False).masked
