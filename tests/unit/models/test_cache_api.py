"""The KV cache under either of the names transformers has given it."""

import types

import torch

from alignkit.models.cache_api import cache_keyword, returned_cache, with_cache


class _Old(torch.nn.Module):
    def forward(self, input_ids, past_key_values=None, use_cache=None):
        return types.SimpleNamespace(past_key_values="old cache")


class _New(torch.nn.Module):
    def forward(self, input_ids, cache=None, use_cache=None, **kwargs):
        return types.SimpleNamespace(cache="new cache")


class _NoCache(torch.nn.Module):
    def forward(self, input_ids):
        return types.SimpleNamespace(logits=None)


def test_the_cache_goes_in_and_comes_out_under_the_models_own_name():
    assert cache_keyword(_Old()) == "past_key_values"
    assert cache_keyword(_New()) == "cache"
    assert cache_keyword(_NoCache()) is None
    assert with_cache(_New(), "c") == {"cache": "c"}
    assert with_cache(_Old(), "c") == {"past_key_values": "c"}
    assert returned_cache(_Old()(None)) == "old cache"
    assert returned_cache(_New()(None)) == "new cache"
    assert returned_cache(_NoCache()(None)) is None
