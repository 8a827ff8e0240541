"""The causal self-attention function against transformers' operations and a float64 reference."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv, rotate_half

from alignkit.models import attention, causal_attention
from alignkit.models.causal_attention import CausalSelfAttention, rotate_into, signed_sine


def _rotary(length: int, dim: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Llama's (1, T, D) cos and sin tables."""
    inverse = 10000 ** -(torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inverse[None]
    table = torch.cat([angles, angles], dim=-1)[None]
    return table.cos().to(dtype), table.sin().to(dtype)


def _inputs(batch, length, heads, kv_heads, dim, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, length, n * dim, generator=generator).to(dtype)
            for n in (heads, kv_heads, kv_heads)]


def _heads(q, k, v, cos, sin, heads, kv_heads):
    """transformers' steps to the products: split heads, rotary embedding, repeated KV heads."""
    batch, length, _ = q.shape
    split = [t.view(batch, length, n, -1).transpose(1, 2)
             for t, n in ((q, heads), (k, kv_heads), (v, kv_heads))]
    query, key = apply_rotary_pos_emb(split[0], split[1], cos, sin)
    return query, repeat_kv(key, heads // kv_heads), repeat_kv(split[2], heads // kv_heads)


def _reference(q, k, v, cos, sin, heads, kv_heads, scale):
    """transformers' operations, with a masked softmax."""
    query, key, value = _heads(q, k, v, cos, sin, heads, kv_heads)
    scores = (query @ key.transpose(-1, -2)) * scale
    length = q.shape[1]
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    probs = scores.masked_fill(future, float("-inf")).softmax(-1)
    return (probs @ value).transpose(1, 2).reshape(q.shape[0], length, -1)


def _matmul_route(q, k, v, cos, sin, heads, kv_heads, scale):
    """The general route: transformers' rotary embedding, then ``matmul_attention``."""
    query, key, value = _heads(q, k, v, cos, sin, heads, kv_heads)
    length = q.shape[1]
    out = attention.matmul_attention(query.to(v.dtype), key.to(v.dtype), value,
                                     attention.causal_allowed(length, length, "cpu"), scale,
                                     causal=True)
    return out.transpose(1, 2).reshape(q.shape[0], length, -1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_swapped_form_of_the_rotation_gives_transformers_values(dtype):
    """``x·cos + rotate_half(x)·sin`` with float32 tables, bit for bit."""
    x = torch.randn(2, 7, 3, 8, generator=torch.Generator().manual_seed(1)).to(dtype)
    cos, sin = (t[:, :, None] for t in _rotary(7, 8))
    expected = x * cos + rotate_half(x) * sin
    out = torch.empty(2, 7, 3, 8)
    assert torch.equal(rotate_into(out, x, cos, signed_sine(sin)), expected)
    assert torch.equal(signed_sine(torch.arange(4.0)), torch.tensor([-0.0, -1.0, 2.0, 3.0]))


@pytest.mark.parametrize("heads, kv_heads", [(4, 4), (4, 2), (4, 1)])
def test_float64_values_and_gradients_are_exact(heads, kv_heads):
    """In float64 the function is transformers' attention, and its hand-written backward
    passes ``gradcheck``."""
    q, k, v = _inputs(2, 6, heads, kv_heads, 4, torch.float64)
    cos, sin = _rotary(6, 4, torch.float64)
    args = (cos, sin, heads, kv_heads, 0.5)
    out = CausalSelfAttention.apply(q, k, v, *args)
    torch.testing.assert_close(out, _reference(q, k, v, *args), rtol=1e-12, atol=1e-12)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    assert torch.autograd.gradcheck(lambda a, b, c: CausalSelfAttention.apply(a, b, c, *args),
                                    leaves)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_bf16_is_as_accurate_as_the_general_route(kv_heads):
    """Against float64 on the same bf16 inputs, the output and the three gradients are within
    two bf16 roundings (2⁻⁷ relative), and no further off than the general route's
    (transformers' rotary embedding, matmul_attention); both outputs are the same here."""
    q, k, v = _inputs(4, 120, 4, kv_heads, 32, torch.bfloat16)
    cos, sin = _rotary(120, 32)
    grad = torch.randn(4, 120, 4 * 32, generator=torch.Generator().manual_seed(5))

    def run(function, dtype):
        leaves = [t.to(dtype).clone().requires_grad_() for t in (q, k, v)]
        tables = (cos.to(dtype), sin.to(dtype)) if dtype == torch.float64 else (cos, sin)
        out = function(*leaves, *tables, 4, kv_heads, 32 ** -0.5)
        out.backward(grad.to(out.dtype))
        return [t.detach().double() for t in (out, *(leaf.grad for leaf in leaves))]

    exact = run(_reference, torch.float64)
    fused, general = run(CausalSelfAttention.apply, torch.bfloat16), \
        run(_matmul_route, torch.bfloat16)
    for ours, theirs, truth in zip(fused, general, exact, strict=True):
        error = float((ours - truth).norm() / truth.norm())
        assert error < 2 ** -7
        assert error <= 1.01 * float((theirs - truth).norm() / truth.norm())
    assert torch.equal(fused[0], general[0])


def _llama(**shape):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, **shape)
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).train()
    assert attention.install(model) and causal_attention.install(model)
    return model


@pytest.fixture
def fused_calls(monkeypatch):
    calls = []
    original = CausalSelfAttention.apply
    monkeypatch.setattr(CausalSelfAttention, "apply",
                        lambda *args: calls.append(args[0].dtype) or original(*args))
    return calls


def test_only_causal_training_passes_take_it(fused_calls):
    """A bf16 pass with gradients and neither mask nor cache takes the function in every
    layer; a pass with a padding mask, with a cache, without gradients or in float32 goes to
    the module's own forward, whose values it keeps bit for bit."""
    model = _llama()
    ids = torch.randint(3, 64, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, use_cache=False).logits.sum().backward()
        assert fused_calls == [torch.bfloat16] * 2
        padded = torch.ones_like(ids)
        padded[0, -1] = 0
        model(input_ids=ids, attention_mask=padded, use_cache=False)
        model(input_ids=ids, use_cache=True)
        with torch.no_grad():
            kept = model(input_ids=ids, use_cache=False).logits
    model(input_ids=ids, use_cache=False)
    assert len(fused_calls) == 2
    plain = _llama()
    for module in plain.modules():
        module.__dict__.pop("forward", None)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        assert torch.equal(kept, plain(input_ids=ids, use_cache=False).logits)


def test_a_training_pass_matches_the_general_route(fused_calls):
    """The whole model's logits and weight gradients, under bf16 autocast, against the same
    model on the general route: within bf16 rounding."""
    ids = torch.randint(3, 64, (3, 20), generator=torch.Generator().manual_seed(4))
    results = []
    for fused in (True, False):
        model = _llama()
        if not fused:
            for layer in model.model.layers:
                del layer.self_attn.forward
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=ids, use_cache=False).logits
        logits.float().square().mean().backward()
        results.append((logits.float(), [p.grad for p in model.parameters()]))
    assert len(fused_calls) == 2
    (logits, grads), (route_logits, route_grads) = results
    torch.testing.assert_close(logits, route_logits, rtol=0, atol=2e-2)
    for ours, theirs in zip(grads, route_grads, strict=True):
        assert float((ours - theirs).norm() / theirs.norm()) < 2e-2


def test_a_window_shorter_than_the_pass_sends_it_to_the_forward(fused_calls):
    """A sliding window reaching back fewer positions than the pass holds rules the function
    out (transformers then also passes a mask)."""
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
                           num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                           sliding_window=8)
    config._attn_implementation = "sdpa"
    model = MistralForCausalLM(config).train()
    assert attention.install(model) and causal_attention.install(model)
    module = model.model.layers[0].self_attn
    assert causal_attention.window_covers(module, 8)
    assert not causal_attention.window_covers(module, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=torch.ones(1, 9, dtype=torch.long), use_cache=False)
    assert fused_calls == []
    assert causal_attention.window_covers(_llama().model.layers[0].self_attn, 10**6)


def test_other_families_are_left_alone():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=32, n_layer=1, n_head=4))
    assert not causal_attention.supports(model)
    assert not causal_attention.install(model)
    assert not any("forward" in vars(module) for module in model.modules())
