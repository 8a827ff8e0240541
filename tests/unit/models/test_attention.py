"""The CPU training attention: the route it takes, its values and gradients, and its fallback."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from alignkit.models import attention
from alignkit.models.attention import (
    MATMUL_MAX_KEYS,
    NAME,
    causal_allowed,
    float32_decoding_attention,
    install,
    matmul_attention,
    takes_float32_decoding_route,
    takes_matmul_route,
)
from alignkit.models.cache_api import returned_cache, with_cache

VOCAB = 64


def _tiny(implementation: str = "sdpa") -> torch.nn.Module:
    config = AutoConfig.for_model(
        "llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB,
        max_position_embeddings=1024, attn_implementation=implementation)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def _batch(left_padded: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, VOCAB, (3, 19), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    if left_padded:
        mask[0, :6] = 0
    else:
        mask[0, -6:] = 0
        mask[2, -1:] = 0
    return ids, mask


class _Module(torch.nn.Module):
    """Stands in for an attention layer: only ``training`` and ``is_causal`` are read."""

    is_causal = True


def test_matmul_attention_matches_a_hand_computed_causal_softmax():
    # One head, two positions, unit scale: query 0 sees key 0 alone, query 1 sees both
    # with scores q1·k0 = 0 and q1·k1 = 1.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)[None, None]
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)[None, None]
    out = matmul_attention(q, q.clone(), v, causal_allowed(2, 2, "cpu"), 1.0)
    w = math.e / (1 + math.e)
    expected = torch.tensor([[1.0, 2.0], [(1 - w) * 1 + w * 3, (1 - w) * 2 + w * 4]],
                            dtype=torch.float64)
    assert torch.allclose(out[0, 0], expected, atol=1e-12)


def test_matmul_attention_gradients_are_autograds_of_the_formula():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    allowed = causal_allowed(5, 5, "cpu").expand(2, 1, 5, 5).clone()
    allowed[0, :, :, 0] = False  # a padded first key in row 0
    allowed[0, :, 0, 0] = True  # ...which its own query still sees, so no row is empty

    def reference(q, k, v):
        scores = (q @ k.transpose(-1, -2)) * 0.5
        scores = scores.masked_fill(~allowed, float("-inf"))
        return torch.softmax(scores, -1) @ v

    assert torch.autograd.gradcheck(lambda *t: matmul_attention(*t, allowed, 0.5), (q, k, v))
    assert torch.allclose(matmul_attention(q, k, v, allowed, 0.5), reference(q, k, v),
                          atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_the_causal_softmax_equals_where_then_softmax_in_values_and_gradients(dtype):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 6, 4, generator=g).to(dtype).requires_grad_() for _ in range(3))
    grad_out = torch.randn(2, 3, 6, 4, generator=g).to(dtype)
    results = []
    for causal in (False, True):
        out = matmul_attention(q, k, v, causal_allowed(6, 6, "cpu"), 0.5, causal=causal)
        results.append((out, *torch.autograd.grad(out, (q, k, v), grad_out)))
    for plain, ours in zip(*results, strict=True):
        assert torch.equal(plain, ours)
    allowed = causal_allowed(6, 6, "cpu")
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    assert torch.autograd.gradcheck(
        lambda *t: matmul_attention(*t, allowed, 0.5, causal=True), (q64, k64, v64))


def _route(query_len=16, key_len=16, *, grad=True, dtype=torch.bfloat16, autocast=False,
           dropout=0.0, training=False, mask=None, takes=takes_matmul_route, **kwargs) -> bool:
    module = _Module().train(training)
    query = torch.zeros(1, 2, query_len, 8, dtype=dtype, requires_grad=grad)
    key = torch.zeros(1, 2, key_len, 8, dtype=dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast), \
            torch.set_grad_enabled(grad):
        return takes(module, query, key, mask, dropout, kwargs)


def test_the_route_is_taken_only_for_half_precision_training_over_few_keys():
    assert _route()
    assert _route(dtype=torch.float16)
    assert _route(dtype=torch.float32, autocast=True)  # rotary turned the queries float32
    assert _route(MATMUL_MAX_KEYS, MATMUL_MAX_KEYS)
    assert not _route(MATMUL_MAX_KEYS + 1, MATMUL_MAX_KEYS + 1)
    assert not _route(dtype=torch.float32)
    assert not _route(grad=False)
    assert _route(4, 16)  # the last positions over a cache of the first (shared prompts)
    assert _route(1, 16)
    assert not _route(16, 4)  # more queries than keys: not a causal pass
    assert not _route(4, MATMUL_MAX_KEYS + 1)
    assert not _route(1, 1)
    assert not _route(dropout=0.1, training=True)
    assert _route(dropout=0.1, training=False)
    assert not _route(softcap=30.0)
    assert not _route(sliding_window=8)
    assert _route(mask=torch.ones(1, 1, 16, 16, dtype=torch.bool))
    assert not _route(mask=torch.zeros(1, 1, 16, 16))  # an additive float mask: SDPA


def test_the_float32_route_is_taken_only_for_half_precision_decoding_steps():
    def decoding(*args, **kwargs):
        return _route(*args, takes=takes_float32_decoding_route, **kwargs)

    assert decoding(1, 16, grad=False)
    assert decoding(1, 1, grad=False)
    assert decoding(1, 4 * MATMUL_MAX_KEYS, grad=False)  # one query: no T·T scores to bound
    assert decoding(1, 16, grad=False, dtype=torch.float32, autocast=True)
    assert decoding(1, 16, grad=False, mask=torch.ones(1, 1, 1, 16, dtype=torch.bool))
    assert not decoding(1, 16, grad=False, dtype=torch.float32)
    assert not decoding(1, 16)  # gradients wanted
    assert not decoding(4, 16, grad=False)  # a chunk of queries
    assert not decoding(16, 16, grad=False)  # a prefill or scoring pass
    assert not decoding(1, 16, grad=False, softcap=30.0)
    assert not decoding(1, 16, grad=False, mask=torch.zeros(1, 1, 1, 16))


def test_float32_decoding_attention_matches_a_hand_computed_softmax():
    # One head, one query (1, 1) over three keys with scores 1, 0, 1 (unit scale),
    # the last key masked: weights e/(e+1) and 1/(e+1) on values 2 and 4.
    q = torch.tensor([[[[1.0, 1.0]]]], dtype=torch.bfloat16)
    k = torch.tensor([[[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]]], dtype=torch.bfloat16)
    v = torch.tensor([[[[2.0], [4.0], [100.0]]]], dtype=torch.bfloat16)
    allowed = torch.tensor([True, True, False])[None, None, None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = float32_decoding_attention(q, k, v, allowed, 1.0, torch.bfloat16)
    w = math.e / (math.e + 1)
    assert out.dtype == torch.bfloat16
    assert out.item() == torch.tensor(2 * w + 4 * (1 - w)).bfloat16().item()
    assert float32_decoding_attention(q, k, v, None, 1.0, torch.float32).item() == \
        pytest.approx((2 * math.e + 4 + 100 * math.e) / (2 * math.e + 1), rel=1e-6)


@pytest.mark.parametrize("left_padded", [False, True])
def test_a_decoding_step_through_the_route_agrees_with_sdpa(left_padded: bool, monkeypatch):
    ids, mask = _batch(left_padded)
    mask[:, -1] = 1  # every row's last prompt token is real
    taken = []
    monkeypatch.setattr(attention, "float32_decoding_attention",
                        lambda *a: taken.append(a[0].shape) or float32_decoding_attention(*a))
    step_ids = torch.tensor([[5], [6], [7]])
    step_mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    logits = {}
    for name in ("sdpa", NAME):
        model = _tiny()
        if name == NAME:
            assert install(model)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            cache = returned_cache(model(input_ids=ids, attention_mask=mask, use_cache=True))
            logits[name] = model(input_ids=step_ids, attention_mask=step_mask, use_cache=True,
                                 **with_cache(model, cache)).logits.float()
    assert taken == [(3, 4, 1, 16)] * 2  # the step in both layers; the prefill went to SDPA
    assert torch.allclose(logits[NAME], logits["sdpa"], atol=0.03, rtol=0.02)
    assert not torch.equal(logits[NAME], logits["sdpa"]), "the route must have been taken"


def _trains_as_through_sdpa(forward) -> None:
    """A bf16 training pass, ``forward(model)`` giving float logits, through SDPA and through
    the route from the same initial model: logits and layer 0's q_proj gradient agree."""
    results = {}
    for name in ("sdpa", NAME):
        model = _tiny()
        if name == NAME:
            assert install(model)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = forward(model)
        logits.square().mean().backward()
        results[name] = (logits, model.model.layers[0].self_attn.q_proj.weight.grad)
    (sdpa_logits, sdpa_grad), (ours_logits, ours_grad) = results["sdpa"], results[NAME]
    # bf16 products in both: agreement to bf16's rounding, not bit for bit.
    assert torch.allclose(ours_logits, sdpa_logits, atol=0.03, rtol=0.02)
    assert torch.allclose(ours_grad, sdpa_grad, atol=0.02 * sdpa_grad.abs().max())


@pytest.mark.parametrize("left_padded", [False, True])
def test_a_model_trains_through_the_route_as_through_sdpa(left_padded: bool, monkeypatch):
    ids, mask = _batch(left_padded)
    taken = []
    monkeypatch.setattr(attention, "matmul_attention",
                        lambda *a, **k: taken.append(a[0].shape) or matmul_attention(*a, **k))
    _trains_as_through_sdpa(
        lambda model: model(input_ids=ids, attention_mask=mask).logits.float() * mask[..., None])
    assert len(taken) == 2  # both layers, with the bf16 queries of all heads


@pytest.mark.parametrize("left_padded", [False, True])
def test_a_pass_over_a_cache_trains_through_the_route_as_through_sdpa(left_padded, monkeypatch):
    """GRPO's shared-prompt pass: 4 rows' last 9 positions over a cache of 12 prompt keys."""
    from alignkit.train.prompt_sharing import shared_prompt_logits

    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(4, VOCAB, (2, 12), generator=gen).repeat_interleave(2, dim=0)
    ids = torch.cat([prompts, torch.randint(4, VOCAB, (4, 8), generator=gen)], dim=1)
    mask = torch.ones_like(ids)
    mask[:2, :3] = int(not left_padded)
    taken = []
    monkeypatch.setattr(attention, "matmul_attention",
                        lambda *a, **k: taken.append((a[0].shape[2], a[1].shape[2]))
                        or matmul_attention(*a, **k))
    _trains_as_through_sdpa(lambda model: shared_prompt_logits(model, ids, mask, 8).float())
    # (queries, keys): the 11-token prompt pass, then 9 positions over 20 keys, per layer
    assert taken == [(11, 11), (11, 11), (9, 20), (9, 20)]


def test_causal_allowed_places_the_queries_last():
    assert causal_allowed(2, 4, "cpu").tolist() == [[[[True, True, True, False],
                                                      [True, True, True, True]]]]


def test_other_calls_fall_back_to_sdpa_bit_for_bit():
    ids, mask = _batch(left_padded=True)
    plain, ours = _tiny(), _tiny()
    assert install(ours)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(ours(input_ids=ids, attention_mask=mask).logits,
                           plain(input_ids=ids, attention_mask=mask).logits)
    out_ours = ours(input_ids=ids, attention_mask=mask).logits  # float32: SDPA
    out_plain = plain(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(out_ours, out_plain)


def test_install_switches_sdpa_models_only_and_is_not_saved(tmp_path):
    model = _tiny()
    assert install(model)
    assert model.config._attn_implementation == NAME
    model.save_pretrained(tmp_path)
    assert NAME not in json.dumps(json.loads((tmp_path / "config.json").read_text()))
    eager = _tiny("eager")
    assert not install(eager)
    assert eager.config._attn_implementation == "eager"


@pytest.mark.parametrize("enabled", [True, False])
def test_model_cpu_attention_switches_the_trained_model(toy_model, enabled: bool):
    from alignkit.models.load import load_tokenizer
    from alignkit.train.models_setup import build_policy
    from alignkit.train.settings import ModelSettings, PeftSettings

    tokenizer_dir, config = toy_model
    model_cfg = ModelSettings(init_from_config=str(config), tokenizer=str(tokenizer_dir),
                              cpu_attention=enabled)
    model = build_policy(model_cfg, PeftSettings(), load_tokenizer(tokenizer_dir), seed=0)
    assert model.config._attn_implementation == (NAME if enabled else "sdpa")
