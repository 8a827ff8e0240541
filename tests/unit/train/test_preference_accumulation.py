"""Gradient accumulation: batch 8 x 1 micro-batch equals batch 2 x 4 micro-batches, every loss.

The loss and the summed ``.grad`` of every trainable parameter must agree to float tolerance
(fp32, no dropout). The examples have responses of different lengths, so token-normalised
parts (ORPO's and RRHF's NLL) would differ under a per-micro-batch mean; KTO's reference
point ``z`` is computed over the whole step, so a per-micro-batch ``z`` would differ too.
"""

import pytest
import torch

from alignkit.data.collate import collate_rows, make_collator
from alignkit.data.schema import PreferencePair, RankedSet, UnpairedExample
from alignkit.data.tokenize import tokenize_pair, tokenize_ranked, tokenize_unpaired
from alignkit.data.truncation import Truncation
from alignkit.models.load import init_causal_lm_from_config, load_tokenizer
from alignkit.train.dpo_config import (
    CDPOLoss,
    DPOLoss,
    HingeLoss,
    IPOLoss,
    KTOLoss,
    ORPOLoss,
    RobustLoss,
    RRHFLoss,
    SimPOLoss,
    data_kind,
)
from alignkit.train.policy_forward import nll_token_count
from alignkit.train.preference import (
    PreferenceData,
    batch_keys,
    kl_logratio_sum,
    micro_batch_loss,
    mismatched_rows,
    stat_means,
    step_totals,
)
from alignkit.train.reference import (
    PrecomputedReference,
    column_keys,
    compute_reference_table,
)

LOSSES = [DPOLoss(beta=0.5), CDPOLoss(type="cdpo", beta=0.5), RobustLoss(type="robust"),
          IPOLoss(type="ipo"), HingeLoss(type="hinge", beta=0.5), SimPOLoss(type="simpo"),
          ORPOLoss(type="orpo", lam=0.5), RRHFLoss(type="rrhf"), KTOLoss(type="kto", beta=0.5)]
COLOURS = ["red", "blue", "green"]
LIMIT = Truncation(32)


def _examples(kind: str, n: int = 8) -> list:
    rows = []
    for i in range(n):
        colour, other = COLOURS[i % 3], COLOURS[(i + 1) % 3]
        prompt = f"repeat {colour}" + " big" * (i % 3)
        good, bad = f"{colour} " * (1 + i % 3), f"{other} " * (1 + (i + 2) % 4)
        if kind == "pairs":
            rows.append(PreferencePair(prompt, good, bad))
        elif kind == "ranked":
            rows.append(RankedSet(prompt, [bad, good, colour], [0.0, 2.0, float(i % 2)]))
        else:
            rows.append(UnpairedExample(prompt, good if i % 3 else bad, bool(i % 3)))
    return rows


TOKENIZE = {"pairs": tokenize_pair, "ranked": tokenize_ranked, "unpaired": tokenize_unpaired}


@pytest.fixture(scope="module")
def setup(toy_model):
    tokenizer_dir, config = toy_model
    tokenizer = load_tokenizer(tokenizer_dir)
    model = init_causal_lm_from_config(config, vocab_size=len(tokenizer), seed=0)
    return tokenizer, model


def _data(kind: str, tokenizer) -> PreferenceData:
    rows = [TOKENIZE[kind](e, tokenizer, LIMIT) for e in _examples(kind)]
    kl = mismatched_rows(rows, LIMIT) if kind == "unpaired" else None
    return PreferenceData(kind, rows, [], make_collator(kind, tokenizer),
                          tokenizer.pad_token_id, kl_train=kl)


def _reference(model, data: PreferenceData) -> PrecomputedReference:
    """The policy's own log-probs shifted by seeded offsets in [-1, 2): the policy is then
    away from its reference (h != 0), and KTO's z (mean offset on KL rows) is positive."""
    table = compute_reference_table(model, data.sequences("train"),
                                    pad_token_id=data.pad_token_id, batch_size=8)
    offsets = torch.rand(table.shape, generator=torch.Generator().manual_seed(0)) * 3 - 1
    return PrecomputedReference({"train": table - offsets})


def _step(model, data, loss_cfg, reference, chunks):
    """Loss, gradients, metric means and totals of one step split into ``chunks``."""
    model.zero_grad(set_to_none=True)
    batches = [data.collate([data.train[i] for i in idx]) for idx in chunks]
    totals = step_totals(model, data, "train", chunks, batches, loss_cfg, reference)
    loss_sum, parts = 0.0, []
    for idx, batch in zip(chunks, batches, strict=True):
        loss, stats = micro_batch_loss(model, batch, batch_keys(data.kind, "train", idx),
                                       loss_cfg=loss_cfg, reference=reference, totals=totals)
        loss.backward()
        loss_sum += float(loss.detach())
        parts.append(stats)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss_sum, grads, stat_means(parts), totals


@pytest.mark.parametrize("loss_cfg", LOSSES, ids=lambda c: c.type)
def test_batch_8_equals_batch_2_with_accumulation_4(setup, loss_cfg):
    tokenizer, model = setup
    kind = data_kind(loss_cfg.type)
    data = _data(kind, tokenizer)
    needs_reference = loss_cfg.type not in ("simpo", "orpo", "rrhf")
    reference = _reference(model, data) if needs_reference else None
    order = [5, 2, 7, 0, 3, 6, 1, 4]

    big_loss, big_grads, big_means, big_totals = _step(model, data, loss_cfg, reference,
                                                       [order])
    micro = [order[i:i + 2] for i in range(0, 8, 2)]
    loss, grads, means, totals = _step(model, data, loss_cfg, reference, micro)

    assert loss == pytest.approx(big_loss, rel=1e-5)
    assert (totals.examples, totals.nll_tokens) == (big_totals.examples, big_totals.nll_tokens)
    # KTO's z sums log-probs from passes of other shapes: equal to float rounding.
    assert totals.kl_ref == pytest.approx(big_totals.kl_ref, rel=1e-5)
    assert grads.keys() == big_grads.keys()
    assert any(float(g.abs().max()) > 0 for g in grads.values())
    for name, grad in big_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-4)
    assert means.keys() == big_means.keys()
    for name, value in big_means.items():
        assert means[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


@pytest.mark.parametrize("loss_type", ["orpo", "rrhf"])
def test_micro_batches_hold_different_token_counts(setup, loss_type):
    """What makes the ORPO and RRHF cases above able to fail: a per-micro-batch mean of the
    NLL would weigh these micro-batches' tokens differently from one big batch."""
    tokenizer, _ = setup
    data = _data(data_kind(loss_type), tokenizer)
    counts = {nll_token_count(loss_type, data.collate(data.train[i:i + 2]))
              for i in range(0, 8, 2)}
    assert len(counts) > 1


def test_kto_reference_point_differs_between_micro_batches(setup):
    """What makes the KTO case able to fail: z of each pair of rows alone differs from the
    step's z (the mean over all 8 KL rows), and the step's z is positive (so not clamped)."""
    tokenizer, model = setup
    data = _data("unpaired", tokenizer)
    reference = _reference(model, data)
    step = step_totals(model, data, "train", [list(range(8))], [], KTOLoss(type="kto"),
                       reference).kl_ref
    assert step > 0
    alone = []
    for idx in ([0, 1], [2, 3], [4, 5], [6, 7]):
        kl_batch = collate_rows([data.kl_train[i] for i in idx], data.pad_token_id)
        total, count = kl_logratio_sum(model, [(kl_batch, column_keys("train", idx, 1))],
                                       reference)
        alone.append(total / count)
    assert max(abs(z - step) for z in alone) > 0.05
