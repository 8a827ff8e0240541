"""Packing SFT rows: placement, positions, masks, and attention kept inside each example."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from alignkit.data.packing import (
    PackedCollator,
    PackedRow,
    block_causal_mask,
    forward_inputs,
    is_right_padded,
    pack_examples,
    packed_model_inputs,
    packing_efficiency,
)
from alignkit.data.tokenize import TokenizedExample
from alignkit.errors import ConfigError

F, T, X = False, True, -100

EXAMPLES = [
    TokenizedExample([11, 12, 13, 14, 15], [F, F, T, T, T], 2),
    TokenizedExample([21, 22, 23], [T, T, T], 0),
    TokenizedExample([31, 32, 33, 34], [F, T, T, T], 1),
    TokenizedExample([41, 42], [F, T], 1),
]


def test_best_fit_longest_first():
    """Lengths 5, 3, 4, 2 into rows of 8. Longest first: 5 opens row 0 (3 free); 4 does not
    fit, opens row 1 (4 free); 3 fits row 0 exactly; 2 goes to row 1 (2 free left).
    The second example's first token loses its loss: it would be predicted from example 1."""
    rows = pack_examples(EXAMPLES, seq_length=8)
    assert rows == [
        PackedRow(input_ids=[11, 12, 13, 14, 15, 21, 22, 23],
                  loss_mask=[F, F, T, T, T, F, T, T],
                  position_ids=[0, 1, 2, 3, 4, 0, 1, 2],
                  document_ids=[0, 0, 0, 0, 0, 1, 1, 1]),
        PackedRow(input_ids=[31, 32, 33, 34, 41, 42],
                  loss_mask=[F, T, T, T, F, T],
                  position_ids=[0, 1, 2, 3, 0, 1],
                  document_ids=[0, 0, 0, 0, 1, 1]),
    ]
    assert packing_efficiency(rows, 8) == pytest.approx(14 / 16)


def test_equal_lengths_keep_input_order():
    examples = [TokenizedExample([i, i], [F, T], 1) for i in range(4)]
    rows = pack_examples(examples, seq_length=4)
    assert [row.input_ids for row in rows] == [[0, 0, 1, 1], [2, 2, 3, 3]]


def test_an_example_longer_than_the_row_is_a_config_error():
    with pytest.raises(ConfigError, match="example 0 has 5 tokens, more than the packed row"):
        pack_examples(EXAMPLES, seq_length=4)


def test_empty_input_packs_to_no_rows():
    assert pack_examples([], seq_length=8) == []
    assert packing_efficiency([], 8) == 0.0


def test_collator_pads_every_row_to_seq_length():
    batch = PackedCollator(pad_token_id=0, seq_length=8)(pack_examples(EXAMPLES, seq_length=8))
    assert batch["input_ids"].tolist()[1] == [31, 32, 33, 34, 41, 42, 0, 0]
    assert batch["attention_mask"].tolist() == [[1] * 8, [1, 1, 1, 1, 1, 1, 0, 0]]
    assert batch["loss_mask"].tolist()[1] == [F, T, T, T, F, T, F, F]
    assert batch["labels"].tolist() == [[X, X, 13, 14, 15, X, 22, 23],
                                        [X, 32, 33, 34, X, 42, X, X]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2], [0, 1, 2, 3, 0, 1, 0, 1]]
    assert batch["document_ids"].tolist() == [[0, 0, 0, 0, 0, 1, 1, 1],
                                              [0, 0, 0, 0, 1, 1, -1, -1]]


def test_collator_without_seq_length_pads_to_the_longest_row():
    batch = PackedCollator(pad_token_id=0)(pack_examples(EXAMPLES[2:], seq_length=8))
    assert batch["input_ids"].tolist() == [[31, 32, 33, 34, 41, 42]]
    with pytest.raises(ConfigError, match="6 tokens, more than the collator's seq_length 4"):
        PackedCollator(pad_token_id=0, seq_length=4)(pack_examples(EXAMPLES[2:], seq_length=8))


def test_forward_inputs_use_the_block_mask_only_for_packed_batches():
    packed = PackedCollator(pad_token_id=0, seq_length=8)(pack_examples(EXAMPLES, 8))
    inputs = forward_inputs(packed, torch.float32)
    assert sorted(inputs) == ["attention_mask", "input_ids", "position_ids"]
    assert inputs["attention_mask"].shape == (2, 1, 8, 8)
    assert torch.equal(inputs["position_ids"], packed["position_ids"])
    plain = {key: packed[key] for key in ("input_ids", "attention_mask", "loss_mask", "labels")}
    plain["attention_mask"] = plain["attention_mask"].flip(1)  # left-padded: the mask stays
    assert forward_inputs(plain).keys() == {"input_ids", "attention_mask"}
    assert forward_inputs(plain)["attention_mask"] is plain["attention_mask"]
    with pytest.raises(ValueError, match="not a packed batch"):
        packed_model_inputs(plain)


def test_right_padded_rows_go_without_a_mask_and_score_the_same():
    ids = torch.randint(0, 50, (3, 9), generator=torch.Generator().manual_seed(3))
    right = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 8 + [0]])
    assert is_right_padded(right) and is_right_padded(torch.zeros(2, 4, dtype=torch.long))
    assert not is_right_padded(right.flip(1)) and not is_right_padded(None)
    assert not is_right_padded(torch.tensor([[1, 0, 1]]))
    assert forward_inputs({"input_ids": ids, "attention_mask": right}) == {"input_ids": ids}
    with_positions = {"input_ids": ids, "attention_mask": right, "position_ids": right.cumsum(1)}
    assert forward_inputs(with_positions).keys() == with_positions.keys()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4))
    masked = model(input_ids=ids, attention_mask=right).logits
    unmasked = model(**forward_inputs({"input_ids": ids, "attention_mask": right})).logits
    real = right.bool()
    assert torch.allclose(unmasked[real], masked[real], atol=1e-5)
    assert not torch.allclose(unmasked[~real], masked[~real], atol=1e-3)  # padding differs


def test_block_causal_mask_is_causal_within_and_closed_across_examples():
    """Tokens 0-1 are example 0, token 2 example 1, token 3 padding."""
    mask = block_causal_mask(torch.tensor([[0, 0, 1, -1]]), torch.float32)
    low = torch.finfo(torch.float32).min
    assert mask.shape == (1, 1, 4, 4)
    assert mask[0, 0].tolist() == [[0, low, low, low],
                                   [0, 0, low, low],
                                   [low, low, 0, low],
                                   [low, low, low, 0]]
    assert block_causal_mask(torch.tensor([[0]]), torch.bfloat16).dtype == torch.bfloat16


def tiny_llama(attention):
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    config._attn_implementation = attention
    return LlamaForCausalLM(config).eval()


def tiny_gpt2(attention):
    config = GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=64,
                        bos_token_id=1, eos_token_id=2)
    config._attn_implementation = attention
    return GPT2LMHeadModel(config).eval()


def packed_and_alone_logits(model):
    """Logits of each real token in the packed batch, and of the same tokens run one example at
    a time; both (14, vocab)."""
    rows = pack_examples(EXAMPLES, seq_length=8)
    batch = PackedCollator(pad_token_id=0, seq_length=8)(rows)
    with torch.no_grad():
        packed = model(**forward_inputs(batch, torch.float32)).logits
        alone = {tuple(e.input_ids): model(input_ids=torch.tensor([e.input_ids])).logits[0]
                 for e in EXAMPLES}
    expected = []
    for row in rows:
        for document in sorted(set(row.document_ids)):
            ids = tuple(t for t, d in zip(row.input_ids, row.document_ids, strict=True)
                        if d == document)
            expected.append(alone[ids])
    return packed[batch["attention_mask"].bool()], torch.cat(expected)


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_packed_forward_equals_each_example_alone(build, attention):
    torch.manual_seed(0)
    packed, alone = packed_and_alone_logits(build(attention))
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-5)


def test_a_plain_2d_mask_lets_attention_cross_examples():
    """Why the block mask exists: with a 2D mask and restarting positions, the second example
    of a row attends to the first and its logits change."""
    torch.manual_seed(0)
    model = tiny_llama("sdpa")
    batch = PackedCollator(pad_token_id=0, seq_length=8)(pack_examples(EXAMPLES[:2], 8))
    second = EXAMPLES[1].input_ids
    with torch.no_grad():
        crossed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        position_ids=batch["position_ids"]).logits[0, 5:8]
        alone = model(input_ids=torch.tensor([second])).logits[0]
    assert batch["input_ids"][0, 5:8].tolist() == second
    assert not torch.allclose(crossed, alone, atol=1e-3)
