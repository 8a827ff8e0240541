"""Fixtures for evaluation tests: models whose outputs are known exactly."""

from __future__ import annotations

import types

import pytest
import torch


class _CountingBackbone(torch.nn.Module):
    """Hidden state at position t is the number of real tokens up to and including t."""

    def forward(self, input_ids, attention_mask, position_ids=None):
        hidden = attention_mask.long().cumsum(dim=1).float()[..., None]  # (B, T, 1)
        return types.SimpleNamespace(last_hidden_state=hidden)


class LengthRewardModel(torch.nn.Module):
    """Reward = number of tokens of prompt + response, read at the last real token."""

    def __init__(self) -> None:
        super().__init__()
        self.base_model = _CountingBackbone()
        self.score = torch.nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.score.weight.fill_(1.0)


class UniformModel(torch.nn.Module):
    """A causal LM whose logits are all zero: every next token has probability 1 / vocab."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the model a device

    def forward(self, input_ids, attention_mask=None):
        return types.SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab))


@pytest.fixture
def uniform_model():
    """``uniform_model(vocab)`` builds a :class:`UniformModel`."""
    return UniformModel


@pytest.fixture
def length_reward_model() -> LengthRewardModel:
    return LengthRewardModel()


@pytest.fixture(scope="session")
def toy_tokenizer(toy_model):
    from alignkit.models.load import load_tokenizer

    return load_tokenizer(toy_model[0])

