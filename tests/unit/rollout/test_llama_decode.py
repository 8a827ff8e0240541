"""The lean Llama decoding step gives what the model's own forward gives, or stands aside."""

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from alignkit.models.attention import float32_decoding_attention as _float32_attention
from alignkit.models.cache_api import returned_cache
from alignkit.models.lean_ops import make_lean
from alignkit.rollout import generate, left_pad
from alignkit.rollout.llama_decode import lean_decoder

PAD, EOS = 0, 2
PROMPTS = [[1, 9, 10, 11], [1, 12], [1, 13, 14, 15, 16, 17, 18], [1, 19, 20]]
SHAPE = {"vocab_size": 40, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
         "num_attention_heads": 4, "max_position_embeddings": 64}


def _model(cls, config, dtype=torch.float64):
    torch.manual_seed(0)
    return cls(config).to(dtype).eval()


def _both(model, **options):
    """The same seeded sampling run with the lean step and with the model's forward."""
    runs = []
    for lean in (True, False):
        generator = torch.Generator().manual_seed(3)
        runs.append(generate(model, PROMPTS, max_new_tokens=12, eos_token_id=EOS,
                             pad_token_id=PAD, generator=generator, lean=lean, **options))
    return runs


def _decoder(model):
    ids, mask = left_pad(PROMPTS, PAD)
    with torch.no_grad():
        cache = returned_cache(model(input_ids=ids, attention_mask=mask, use_cache=True))
    return lean_decoder(model, cache, mask, 12)


def _uses_lean(model) -> bool:
    return _decoder(model) is not None


def _assert_same(lean, plain):
    """Bit for bit: the lean step runs the same operations in the same order."""
    assert torch.equal(lean.response_ids, plain.response_ids)
    assert torch.equal(lean.response_mask, plain.response_mask)
    assert torch.equal(lean.ended, plain.ended)
    assert torch.equal(lean.logps, plain.logps)


@pytest.mark.parametrize("config", [
    LlamaConfig(**SHAPE, num_key_value_heads=4),
    LlamaConfig(**SHAPE, num_key_value_heads=2, attention_bias=True, mlp_bias=True,
                tie_word_embeddings=True),
    LlamaConfig(**SHAPE, num_key_value_heads=4, rope_parameters={
        "rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}),
], ids=["plain", "gqa-biases-tied", "linear-rope"])
def test_llama_samples_and_logps_equal_the_model_forward(config):
    model = _model(LlamaForCausalLM, config)
    assert _uses_lean(model)
    lean, plain = _both(model, temperature=0.9, top_p=0.8, num_samples=3)
    _assert_same(lean, plain)
    assert lean.response_lengths.min() < 12 < lean.response_lengths.max() + 1, \
        "the case needs rows that stop early and rows that run on"


def test_qwen2_projection_biases_are_reproduced():
    model = _model(Qwen2ForCausalLM, Qwen2Config(**SHAPE, num_key_value_heads=2))
    assert _uses_lean(model)
    _assert_same(*_both(model, temperature=1.0))


def test_float32_and_bfloat16_models_give_the_same_results():
    config = LlamaConfig(**SHAPE, num_key_value_heads=4)
    for dtype in (torch.float32, torch.bfloat16):
        _assert_same(*_both(_model(LlamaForCausalLM, config, dtype), temperature=0.0))


def test_lora_adapters_are_applied_and_can_be_switched_off():
    from peft import LoraConfig, get_peft_model

    base = _model(LlamaForCausalLM, LlamaConfig(**SHAPE, num_key_value_heads=4))
    plain_base = _both(base, temperature=1.0)[1]
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=[
        "q_proj", "v_proj", "down_proj", "lm_head"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    assert _uses_lean(model)
    lean, plain = _both(model, temperature=1.0)
    _assert_same(lean, plain)
    assert not torch.equal(lean.logps, plain_base.logps), "the adapter must change the policy"
    with model.disable_adapter():
        lean_off, _ = _both(model, temperature=1.0)
    _assert_same(lean_off, plain_base)


def test_models_it_does_not_reproduce_decode_through_their_forward():
    mistral = _model(MistralForCausalLM, MistralConfig(**SHAPE, num_key_value_heads=4,
                                                       sliding_window=8))
    gpt2 = _model(GPT2LMHeadModel, GPT2Config(vocab_size=40, n_embd=32, n_layer=2, n_head=4,
                                               n_positions=64))
    for model in (mistral, gpt2):
        assert not _uses_lean(model)
        _assert_same(*_both(model, temperature=1.0))


def test_the_lean_training_functions_are_accepted():
    from alignkit.models import attention, causal_attention

    model = _model(LlamaForCausalLM, LlamaConfig(**SHAPE, num_key_value_heads=4))
    model.config._attn_implementation = "sdpa"
    assert make_lean(model) and attention.install(model) and causal_attention.install(model)
    assert _uses_lean(model)
    _assert_same(*_both(model, temperature=1.0))


def test_a_hooked_module_sends_decoding_through_the_forward():
    """A hook changes what the model computes; the lean step would not see it."""
    model = _model(LlamaForCausalLM, LlamaConfig(**SHAPE, num_key_value_heads=4))
    unhooked = _both(model, temperature=1.0)[0]

    def favour_token_7(module, inputs, output):
        return output + 4.0 * torch.nn.functional.one_hot(torch.tensor(7), 40)

    model.lm_head.register_forward_hook(favour_token_7)
    assert not _uses_lean(model)
    hooked = generate(model, PROMPTS, max_new_tokens=12, eos_token_id=EOS, pad_token_id=PAD,
                      generator=torch.Generator().manual_seed(3))
    sevens = int((hooked.response_ids == 7).sum())
    assert sevens > 3 * int((unhooked.response_ids == 7).sum()) and sevens > 10


def test_an_accelerate_bf16_model_decodes_lean_inside_its_autocast():
    """accelerate's mixed-precision wrapper on forward is the autocast the trainers sample in."""
    from accelerate import Accelerator

    from alignkit.train.engine import allow_precision

    allow_precision("bf16")
    accelerator = Accelerator(mixed_precision="bf16", cpu=True)
    config = LlamaConfig(**SHAPE, num_key_value_heads=4)
    model = accelerator.prepare(_model(LlamaForCausalLM, config, torch.float32))
    assert "forward" in model.__dict__, "accelerate wraps forward on the instance"
    assert not _uses_lean(model), "outside the autocast the lean step would compute in fp32"
    with accelerator.autocast():
        assert _uses_lean(model)
        lean, plain = _both(model, temperature=1.0)
    _assert_same(lean, plain)
    with torch.autocast("cpu", dtype=torch.float16):
        assert not _uses_lean(model), "another autocast than the wrapper's"
    allow_precision("no")


def test_the_cpu_attention_s_decoding_steps_are_reproduced_under_autocast(monkeypatch):
    from alignkit.models import attention

    taken = []
    monkeypatch.setattr(attention, "float32_decoding_attention",
                        lambda *a: taken.append(a[0].shape[2]) or _float32_attention(*a))
    model = _model(LlamaForCausalLM, LlamaConfig(**SHAPE, num_key_value_heads=2), torch.float32)
    assert attention.install(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _uses_lean(model)
        lean, plain = _both(model, temperature=1.0)
    _assert_same(lean, plain)
    assert taken and set(taken) == {1}, "both runs' decoding steps take the float32 route"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sdpa_run = _both(_model(LlamaForCausalLM, LlamaConfig(**SHAPE, num_key_value_heads=2),
                                torch.float32), temperature=1.0)[0]
    assert not torch.equal(lean.logps, sdpa_run.logps)


def test_other_attention_implementations_decode_through_their_forward():
    model = _model(LlamaForCausalLM, LlamaConfig(**SHAPE, num_key_value_heads=4,
                                                 attn_implementation="eager"))
    assert not _uses_lean(model)


@pytest.mark.parametrize("family", ["llama", "qwen2-biases"])
def test_bf16_autocast_decoding_with_half_copies_equals_the_model_forward(family):
    """Under CPU autocast the step joins and packs the trainable projections itself."""
    if family == "llama":
        model = _model(LlamaForCausalLM, LlamaConfig(**SHAPE, num_key_value_heads=4),
                       torch.float32)
    else:
        model = _model(Qwen2ForCausalLM, Qwen2Config(**SHAPE, num_key_value_heads=2),
                       torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer = _decoder(model).layers[0]
        assert layer.qkv is not None and layer.gate_up is not None
        lean, plain = _both(model, temperature=1.0, num_samples=2)
    _assert_same(lean, plain)
