"""The lean RMSNorm and SwiGLU: the same forward values, autograd's gradients, fewer saved bytes."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from alignkit.models.lean_ops import _RMSNorm, _SiluMul, make_lean, rms_norm

HIDDEN, INTERMEDIATE, LAYERS, VOCAB = 64, 176, 2, 64


def _tiny(family: str, **extra) -> torch.nn.Module:
    config = AutoConfig.for_model(
        family, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=LAYERS,
        num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB,
        max_position_embeddings=64, **extra)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, VOCAB, (3, 17), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0
    return ids, mask


def _pair(family: str):
    plain = _tiny(family)
    lean = copy.deepcopy(plain)
    assert make_lean(lean)
    return plain, lean


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2"])
@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("grad", [True, False])
def test_forward_values_are_bit_for_bit_the_same(family, autocast, grad):
    plain, lean = _pair(family)
    ids, mask = _batch()
    with torch.set_grad_enabled(grad), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        expected = plain(input_ids=ids, attention_mask=mask).logits
        got = lean(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(got, expected)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_gradients_match_autograd(family):
    plain, lean = _pair(family)
    ids, mask = _batch()
    for model in (plain, lean):
        logits = model(input_ids=ids, attention_mask=mask).logits
        (logits.logsumexp(-1) * mask).sum().backward()
    for (name, p), q in zip(plain.named_parameters(), lean.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_silu_mul_passes_gradcheck():
    gen = torch.Generator().manual_seed(2)
    gate = torch.randn(4, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    up = torch.randn(4, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(_SiluMul.apply, (gate, up))


def test_rms_norm_backward_matches_autograd_of_its_forward():
    # The forward casts to float32 as Llama's does, so gradcheck's float64
    # differences would measure float32 rounding; autograd through the same
    # operations is the reference instead.
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 5, 8, generator=gen, requires_grad=True)
    weight = torch.randn(8, generator=gen, requires_grad=True)
    upstream = torch.randn(3, 5, 8, generator=gen)
    expected = torch.autograd.grad((rms_norm(x, weight, 1e-6)[0] * upstream).sum(), (x, weight))
    got = torch.autograd.grad((_RMSNorm.apply(x, weight, 1e-6) * upstream).sum(), (x, weight))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def _saved_bytes(model, ids) -> int:
    """Bytes of the distinct storages autograd saves in one forward pass, weights excluded."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=ids)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for pointer, size in storages.items() if pointer not in weights)


def test_saved_activations_shrink_by_the_normalised_inputs_and_silu():
    plain, lean = _pair("llama")
    ids = torch.randint(0, VOCAB, (2, 32), generator=torch.Generator().manual_seed(3))
    tokens, fp32 = ids.numel(), 4
    norms = 2 * LAYERS + 1  # two per layer and the final one
    # Each norm stops saving its normalised input (tokens × hidden), each MLP silu(gate)
    # (tokens × intermediate).
    expected = fp32 * tokens * (norms * HIDDEN + LAYERS * INTERMEDIATE)
    assert _saved_bytes(plain, ids) - _saved_bytes(lean, ids) == expected == 172_032


def test_other_architectures_are_left_alone():
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=VOCAB))
    assert not make_lean(gpt2)
    gelu = _tiny("llama", hidden_act="gelu")
    assert not make_lean(gelu)
    assert not any("forward" in vars(module) for module in gelu.modules())


def test_a_copy_runs_on_its_own_weights():
    plain, lean = _pair("llama")
    twin = copy.deepcopy(lean)
    with torch.no_grad():
        twin.model.norm.weight.mul_(2)
    ids, _ = _batch()
    with torch.no_grad():
        assert torch.equal(lean(input_ids=ids).logits, plain(input_ids=ids).logits)
        assert not torch.allclose(twin(input_ids=ids).logits, lean(input_ids=ids).logits)


@pytest.mark.parametrize("lean", [True, False])
def test_model_lean_activations_decides_what_build_policy_returns(toy_model, lean):
    from alignkit.train.models_setup import build_policy, tokenizer_for
    from alignkit.train.settings import ModelSettings, PeftSettings

    tokenizer_dir, config = toy_model
    settings = ModelSettings(init_from_config=str(config), tokenizer=str(tokenizer_dir),
                             lean_activations=lean, cpu_attention=False)
    policy = build_policy(settings, PeftSettings(), tokenizer_for(settings), seed=0)
    replaced = [name for name, module in policy.named_modules() if "forward" in vars(module)]
    layers = policy.config.num_hidden_layers
    assert len(replaced) == (3 * layers + 1 if lean else 0)  # two norms and an MLP per layer
    assert ModelSettings(path="m").lean_activations
