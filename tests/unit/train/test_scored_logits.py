"""Logits of the scored tail only: which columns are kept, and that the losses do not change."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from alignkit.losses import sequence_logps
from alignkit.losses.logps import IGNORE_INDEX
from alignkit.rollout.generation import accepts_logits_to_keep
from alignkit.train.scored_logits import kept_columns, scored_logits

X = IGNORE_INDEX


def test_kept_columns_start_at_the_first_column_predicting_a_scored_token():
    # Row 0 scores tokens 3..5, row 1 scores 5..7: column 2 predicts token 3, so the
    # last 8 - 2 = 6 columns are kept.
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]])
    labels = torch.arange(16).view(2, 8)
    assert kept_columns(labels, mask) == 6
    # An ignored label is not scored even where the mask is on.
    labels[0, 3] = X
    assert kept_columns(labels, mask) == 5
    assert kept_columns(labels, torch.zeros_like(mask)) == 1
    # Position 0 is never predicted, so a mask on it alone keeps one column.
    assert kept_columns(labels, torch.tensor([[1, 0, 0, 0, 0, 0, 0, 0]] * 2)) == 1


def _model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4))


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.randint(3, 40, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[0, 5:10], mask[1, 4:12], mask[2, 7:9] = True, True, True
    attention = torch.ones(3, 12, dtype=torch.long)
    attention[0, 10:] = 0
    return {"input_ids": ids, "attention_mask": attention, "labels": ids.clone(),
            "loss_mask": mask}


def test_scored_logits_equal_the_full_pass_and_give_the_same_loss_and_gradients():
    batch = _batch()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    full_model, tail_model = _model(), _model()
    full = full_model(**inputs).logits
    logits, labels, mask = scored_logits(tail_model, batch, inputs)
    assert logits.shape == (3, 9, 40)  # column 3 predicts row 1's first scored token (4)
    assert torch.equal(labels, batch["labels"][:, 3:])
    assert torch.equal(mask, batch["loss_mask"][:, 3:])
    assert torch.allclose(logits, full[:, 3:], atol=1e-6)
    full_sums = sequence_logps(full, batch["labels"], batch["loss_mask"])
    tail_sums = sequence_logps(logits, labels, mask)
    assert torch.allclose(tail_sums, full_sums, atol=1e-5)
    full_sums.sum().backward()
    tail_sums.sum().backward()
    for a, b in zip(full_model.parameters(), tail_model.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


class _NoTail(torch.nn.Module):
    """A causal LM whose forward has no ``logits_to_keep``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


class _Parallel(torch.nn.Module):
    """Stands in for DDP: the model under ``module``, keywords passed on."""

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def test_a_model_under_a_data_parallel_wrapper_keeps_the_tail():
    batch = _batch()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    model = _Parallel(_model())
    assert accepts_logits_to_keep(model)
    assert scored_logits(model, batch, inputs)[0].shape == (3, 9, 40)


@pytest.mark.parametrize("wrap", [False, True])
def test_models_without_logits_to_keep_get_every_column(wrap: bool):
    batch = _batch()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    model = _NoTail(_model()) if wrap else _model()
    assert accepts_logits_to_keep(model) is not wrap
    logits, labels, _ = scored_logits(model, batch, inputs)
    assert logits.shape[1] == labels.shape[1] == (12 if wrap else 9)
