"""Reward read at the last real token, whichever side the padding is on."""

import json

import torch

from alignkit.models.reward import (
    init_reward_model_from_config,
    last_token_index,
    position_ids_from_mask,
    sequence_rewards,
)

TINY = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=4, num_key_value_heads=2, vocab_size=50)


def test_last_token_index_for_right_and_left_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(mask).tolist() == [2, 4, 4]


def test_position_ids_count_real_tokens_only():
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 1, 2, 2], [0, 0, 0, 1]]


def test_reward_is_the_same_with_left_or_right_padding_and_pad_equal_to_eos(tmp_path):
    """Pad id 2 is also the last real token of the sequence (an EOS that ends the response):
    the classifier's own pooling would read the wrong position; ours must not."""
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    model = init_reward_model_from_config(tmp_path, pad_token_id=2, seed=0).eval()
    ids = [7, 8, 9, 2]
    right = torch.tensor([[*ids, 2, 2]]), torch.tensor([[1, 1, 1, 1, 0, 0]])
    left = torch.tensor([[2, 2, *ids]]), torch.tensor([[0, 0, 1, 1, 1, 1]])
    alone = torch.tensor([ids]), torch.tensor([[1, 1, 1, 1]])
    with torch.no_grad():
        r_right = sequence_rewards(model, *right)
        r_left = sequence_rewards(model, *left)
        r_alone = sequence_rewards(model, *alone)
    torch.testing.assert_close(r_right, r_alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(r_left, r_alone, atol=1e-5, rtol=0)
    truncated = sequence_rewards(model, torch.tensor([[7, 8, 9]]), torch.tensor([[1, 1, 1]]))
    assert not torch.allclose(truncated, r_alone)


def test_rewards_are_read_without_building_a_cache(tmp_path, monkeypatch):
    """A scoring pass never decodes further, so the backbone builds no KV cache: the keys and
    values of every layer would be copied into it and kept until the pass ends."""
    import transformers.models.llama.modeling_llama as llama

    (tmp_path / "config.json").write_text(json.dumps(TINY))
    model = init_reward_model_from_config(tmp_path, pad_token_id=0, seed=0)

    def refuse(*args, **kwargs):
        raise AssertionError("a cache was built")

    monkeypatch.setattr(llama, "DynamicCache", refuse)
    rewards = sequence_rewards(model, torch.tensor([[5, 6, 7]]), torch.tensor([[1, 1, 1]]))
    assert rewards.shape == (1,)
