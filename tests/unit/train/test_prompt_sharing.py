"""One pass per distinct prompt: the plain pass's logits and gradients, and when it steps aside."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

from alignkit.models.lean_ops import make_lean
from alignkit.models.load import enable_checkpointing
from alignkit.train.online_forward import response_logits
from alignkit.train.prompt_sharing import shared_prompt_logits

SHAPE = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
WIDTH, RESPONSE = 7, 5


def _model(config_class=LlamaConfig, **extra):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config_class(**SHAPE, **extra)).double()


def _rows(prompt_lengths=(7, 4, 2), k=4):
    """k rows per prompt: the prompt left-padded to 7, responses of 1, 3, 5, 2 tokens."""
    gen = torch.Generator().manual_seed(1)
    rows = len(prompt_lengths) * k
    ids = torch.zeros(rows, WIDTH + RESPONSE, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for p, length in enumerate(prompt_lengths):
        prompt = torch.randint(3, 64, (length,), generator=gen)
        for j in range(k):
            row, answer = p * k + j, (1, 3, 5, 2)[j % 4]
            ids[row, WIDTH - length:WIDTH], mask[row, WIDTH - length:WIDTH] = prompt, 1
            ids[row, WIDTH:WIDTH + answer] = torch.randint(3, 64, (answer,), generator=gen)
            mask[row, WIDTH:WIDTH + answer] = 1
    return ids, mask


def _compare(model, ids, mask):
    scored = mask[:, WIDTH - 1:].bool()[..., None]                          # (N, R + 1, 1)
    plain, _ = response_logits(model, ids, mask, RESPONSE)
    shared = shared_prompt_logits(model, ids, mask, RESPONSE)
    assert shared is not None and shared.shape == plain.shape
    torch.testing.assert_close(shared * scored, plain * scored, rtol=0, atol=1e-12)
    params = [p for p in model.parameters() if p.requires_grad]
    expected = torch.autograd.grad((plain * scored).square().sum(), params)
    got = torch.autograd.grad((shared * scored).square().sum(), params)
    for a, b in zip(expected, got, strict=True):
        # transformers' RMSNorm computes in float32 even in a float64 model, so float32
        # rounding reaches the gradients.
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * float(a.abs().max()) + 1e-12)


@pytest.mark.parametrize("lean", [False, True])
def test_llama_logits_and_gradients_match_the_plain_pass(lean):
    model = _model(tie_word_embeddings=True)
    if lean:
        assert make_lean(model)
    _compare(model, *_rows())


def test_qwen2_with_biases_matches_the_plain_pass():
    _compare(_model(Qwen2Config), *_rows())


def test_lora_adapters_receive_the_same_gradients():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_model(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                init_lora_weights=False))
    _compare(model, *_rows())


def test_it_steps_aside_where_it_would_not_compute_the_same():
    ids, mask = _rows()
    distinct_ids, distinct_mask = _rows(k=1)
    assert shared_prompt_logits(_model(), distinct_ids, distinct_mask, RESPONSE) is None
    checkpointed = _model()
    enable_checkpointing(checkpointed)
    assert shared_prompt_logits(checkpointed, ids, mask, RESPONSE) is None
    short_window = _model(MistralConfig, sliding_window=8)
    assert shared_prompt_logits(short_window, ids, mask, RESPONSE) is None
    wide_window = _model(MistralConfig, sliding_window=64)
    assert shared_prompt_logits(wide_window, ids, mask, RESPONSE) is not None
