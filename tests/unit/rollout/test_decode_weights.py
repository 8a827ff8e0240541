"""The lean decoding step's weights: joined half-precision products where autocast keeps copies."""

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from alignkit.rollout import decode_weights
from alignkit.rollout.decode_weights import (
    PackedProjection,
    Projection,
    cpu_autocast_dtype,
    half_copies,
    half_projection,
    layer_of,
)

SHAPE = {"vocab_size": 40, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}


def _layer_module(model_class=LlamaForCausalLM, config_class=LlamaConfig):
    torch.manual_seed(0)
    return model_class(config_class(**SHAPE)).model.layers[0]


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("family", ["llama", "qwen2-biases"])
def test_joined_products_equal_autocast_s_separate_ones_bit_for_bit(family, packed,
                                                                    monkeypatch):
    if not packed:
        monkeypatch.setattr(decode_weights, "_onednn_bf16", lambda: False)
    elif not decode_weights._onednn_bf16():
        pytest.skip("oneDNN takes no bf16 on this CPU")
    classes = (Qwen2ForCausalLM, Qwen2Config) if family == "qwen2-biases" else ()
    module = _layer_module(*classes)
    plain = layer_of(module)
    joined = half_copies(plain, torch.bfloat16, rows=5)
    kind = PackedProjection if packed else Projection
    assert all(type(getattr(joined, n)) is kind for n in ("qkv", "gate_up", "o", "down"))
    assert (joined.qkv.bias is not None) == (family == "qwen2-biases")
    if not packed:
        mlp = module.mlp
        assert torch.equal(joined.gate_up.weight,
                           torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).bfloat16())
    x = torch.randn(5, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for a, b in zip(joined.query_key_value(x), plain.query_key_value(x), strict=True):
            assert a.shape == b.shape and torch.equal(a, b)
        assert torch.equal(joined.mlp(x), plain.mlp(x))
        assert torch.equal(plain.mlp(x), module.mlp(x))
        assert torch.equal(joined.o(x), plain.o(x))


def test_a_packed_projection_is_autocast_s_product_for_fewer_rows_too():
    if not decode_weights._onednn_bf16():
        pytest.skip("oneDNN takes no bf16 on this CPU")
    gen = torch.Generator().manual_seed(2)
    weight, bias = torch.randn(24, 16, generator=gen), torch.randn(24, generator=gen)
    packed = half_projection(weight, bias, torch.bfloat16, rows=16)
    assert type(packed) is PackedProjection
    for rows in (16, 3, 1):  # finished rows leave the batch
        x = torch.randn(rows, 16, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(packed(x), F.linear(x, weight, bias))


def test_adapters_frozen_and_half_weights_are_left_to_autocast():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(LlamaForCausalLM(LlamaConfig(**SHAPE)),
                           LoraConfig(r=2, target_modules=["q_proj"]))
    layer = half_copies(layer_of(model.base_model.model.model.layers[0]), torch.bfloat16, 4)
    assert layer.qkv is None, "q carries an adapter"
    assert layer.gate_up is None, "the base weights are frozen: autocast keeps no copy of them"
    assert type(layer.o) is Projection and not layer.o.weight.requires_grad
    module = _layer_module()
    module.mlp.up_proj.weight.requires_grad_(False)
    layer = half_copies(layer_of(module), torch.bfloat16, 4)
    assert layer.qkv is not None and layer.gate_up is None
    already_half = half_copies(layer_of(_layer_module().bfloat16()), torch.bfloat16, 4)
    assert already_half.qkv is None and already_half.gate_up is None, "autocast casts nothing"


def test_the_autocast_dtype_is_read_only_from_a_half_cpu_autocast():
    assert cpu_autocast_dtype() is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cpu_autocast_dtype() == torch.bfloat16
        with torch.autocast("cpu", enabled=False):
            assert cpu_autocast_dtype() is None
