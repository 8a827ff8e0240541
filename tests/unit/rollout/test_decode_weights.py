"""The lean decoding step's weights: joined half-precision products where autocast keeps copies."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from alignkit.rollout.decode_weights import cpu_autocast_dtype, half_copies, layer_of

SHAPE = {"vocab_size": 40, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}


def _layer_module():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**SHAPE)).model.layers[0]


def test_joined_products_equal_autocast_s_separate_ones_bit_for_bit():
    module = _layer_module()
    plain = layer_of(module)
    joined = half_copies(plain, torch.bfloat16)
    assert joined.qkv.weight.dtype == torch.bfloat16 and joined.qkv.weight.shape == (64, 32)
    mlp = module.mlp
    assert torch.equal(joined.gate_up.weight,
                       torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).bfloat16())
    x = torch.randn(5, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for a, b in zip(joined.query_key_value(x), plain.query_key_value(x), strict=True):
            assert a.shape == b.shape and torch.equal(a, b)
        assert torch.equal(joined.mlp(x), plain.mlp(x))
        assert torch.equal(plain.mlp(x), module.mlp(x))


def test_adapters_and_frozen_weights_are_left_to_autocast():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(LlamaForCausalLM(LlamaConfig(**SHAPE)),
                           LoraConfig(r=2, target_modules=["q_proj"]))
    layer = half_copies(layer_of(model.base_model.model.model.layers[0]), torch.bfloat16)
    assert layer.qkv is None, "q carries an adapter"
    assert layer.gate_up is None, "the base weights are frozen: autocast keeps no copy of them"
    module = _layer_module()
    module.mlp.up_proj.weight.requires_grad_(False)
    layer = half_copies(layer_of(module), torch.bfloat16)
    assert layer.qkv is not None and layer.gate_up is None


def test_the_autocast_dtype_is_read_only_from_a_half_cpu_autocast():
    assert cpu_autocast_dtype() is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cpu_autocast_dtype() == torch.bfloat16
        with torch.autocast("cpu", enabled=False):
            assert cpu_autocast_dtype() is None
