"""One forward pass gives each row's response log-probs; each loss gets what it needs from them.

Every expected number is worked out by hand in the test's docstring.
"""

import math
import types

import pytest
import torch

from alignkit.train.dpo_config import DPOLoss, IPOLoss, KTOLoss, ORPOLoss, RRHFLoss
from alignkit.train.policy_forward import (
    SequenceLogps,
    StepTotals,
    forward_logps,
    nll_token_count,
    preference_loss,
)


class NextTokenHalf(torch.nn.Module):
    """A fake LM over 4 tokens: at every position it gives the *next* input token logit ln 3
    and the other three 0, so that token has probability 3 / (3 + 1 + 1 + 1) = 1/2."""

    def forward(self, input_ids, use_cache, attention_mask=None):
        self.seen = {"attention_mask": attention_mask, "use_cache": use_cache}
        logits = torch.zeros(*input_ids.shape, 4)
        following = torch.roll(input_ids, -1, dims=1)
        logits.scatter_(-1, following[..., None], math.log(3))
        return types.SimpleNamespace(logits=logits)


def _batch(ids, mask):
    ids = torch.tensor(ids)
    loss_mask = torch.tensor(mask, dtype=torch.bool)
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "loss_mask": loss_mask,
            "labels": ids.masked_fill(~loss_mask, -100)}


def test_forward_logps_sums_response_tokens_only():
    """Row 0 has two response tokens, row 1 one (then padding): each scored token has
    log-prob ln(1/2), so the sums are 2·ln(1/2) = -1.386294 and ln(1/2) = -0.693147."""
    model = NextTokenHalf()
    batch = _batch([[1, 2, 3, 1], [1, 3, 0, 0]],
                   [[False, False, True, True], [False, True, False, False]])
    got = forward_logps(model, batch)
    torch.testing.assert_close(got.sums, torch.tensor([2 * math.log(0.5), math.log(0.5)]))
    assert got.counts.tolist() == [2, 1]
    torch.testing.assert_close(got.averages, torch.tensor([math.log(0.5), math.log(0.5)]))
    assert model.seen["use_cache"] is False
    assert model.seen["attention_mask"] is None  # right padding: the causal kernel alone


def test_forward_logps_passes_the_mask_of_left_padded_rows():
    """The same two rows with row 1 left-padded: the same sums, and the mask goes along."""
    model = NextTokenHalf()
    batch = _batch([[1, 2, 3, 1], [0, 0, 1, 3]],
                   [[False, False, True, True], [False, False, False, True]])
    got = forward_logps(model, batch)
    torch.testing.assert_close(got.sums, torch.tensor([2 * math.log(0.5), math.log(0.5)]))
    assert model.seen["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]


def _logps(sums, counts):
    return SequenceLogps(torch.tensor(sums), torch.tensor(counts))


def test_dpo_loss_of_a_micro_batch_is_divided_by_the_step_examples():
    """Two pairs, β = 0.5; policy chosen [-1, -2], rejected [-3, -1]; reference all -2.
    h = (π_c - π_r) - (ref_c - ref_r): pair 1: 2 - 0 = 2; pair 2: -1 - 0 = -1.
    loss = softplus(-β h): softplus(-1) = 0.3132617, softplus(0.5) = 0.9740770; their sum
    1.2873387 over the step's 4 pairs = 0.3218347. Rewards β(π - ref): chosen [0.5, 0],
    rejected [-0.5, 0.5]; one pair ranked right; margins [1, -0.5]; π_c - ref_c = [1, 0]."""
    policy = _logps([-1.0, -2.0, -3.0, -1.0], [1, 1, 1, 1])
    reference = torch.tensor([-2.0, -2.0, -2.0, -2.0])
    loss, stats = preference_loss(DPOLoss(beta=0.5), {}, policy, reference, StepTotals(4))
    assert float(loss) == pytest.approx(0.3218347, abs=1e-6)
    assert stats["chosen_reward"] == pytest.approx((0.5, 2))
    assert stats["rejected_reward"] == pytest.approx((0.0, 2))
    assert stats["reward_accuracy"] == pytest.approx((1.0, 2))
    assert stats["reward_margin"] == pytest.approx((0.5, 2))
    assert stats["chosen_logratio"] == pytest.approx((1.0, 2))
    assert stats["policy_chosen_logps"] == pytest.approx((-3.0, 2))
    assert stats["policy_rejected_logps"] == pytest.approx((-4.0, 2))


def test_ipo_uses_length_averaged_log_probs_for_policy_and_reference():
    """Counts [2, 4 | 1, 2]: policy averages [-0.5, -0.5 | -3, -0.5], reference averages
    [-1, -0.5 | -2, -1]. h1 = 2.5 - 1 = 1.5, h2 = 0 - 0.5 = -0.5. τ = 0.25, target 2:
    (1.5 - 2)² + (-0.5 - 2)² = 0.25 + 6.25 = 6.5, over 2 pairs = 3.25."""
    policy = _logps([-1.0, -2.0, -3.0, -1.0], [2, 4, 1, 2])
    reference = torch.tensor([-2.0, -2.0, -2.0, -2.0])
    loss, _ = preference_loss(IPOLoss(type="ipo", tau=0.25), {}, policy, reference,
                              StepTotals(2))
    assert float(loss) == pytest.approx(3.25, abs=1e-6)


def test_orpo_nll_is_normalised_by_the_steps_chosen_tokens():
    """λ = 0 leaves the NLL term: Σ(-π_c) over the step's chosen tokens, not a mean per pair.
    Chosen sums [-1, -2] and the step holds 6 chosen tokens and 4 pairs: each pair's term is
    -π_c · 4/6 = [0.6667, 1.3333], summing to 2, over 4 pairs = 0.5 = 3 / 6."""
    policy = _logps([-1.0, -2.0, -3.0, -1.0], [1, 2, 1, 1])
    loss, stats = preference_loss(ORPOLoss(type="orpo", lam=0.0), {}, policy, None,
                                  StepTotals(4, nll_tokens=6))
    assert float(loss) == pytest.approx(0.5, abs=1e-6)
    assert stats["nll"] == pytest.approx((2.0, 2))
    assert "chosen_logratio" not in stats


def test_kto_uses_the_steps_reference_point():
    """β = 1, r = π - ref = [1, -1], rows [desirable, undesirable].
    z = 0.5: 1 - σ(1 - 0.5) = 0.3775407 and 1 - σ(0.5 + 1) = 0.1824255; sum 0.5599662 / 2.
    z = -1 is clamped to 0: 1 - σ(1) = 0.2689414 for both; sum / 2 = 0.2689414."""
    policy = _logps([-1.0, -3.0], [1, 1])
    reference = torch.tensor([-2.0, -2.0])
    batch = {"label": torch.tensor([True, False])}
    cfg = KTOLoss(type="kto", beta=1.0)
    loss, stats = preference_loss(cfg, batch, policy, reference, StepTotals(2, kl_ref=0.5))
    assert float(loss) == pytest.approx(0.5599662 / 2, abs=1e-6)
    assert stats["chosen_reward"] == pytest.approx((1.0, 1))
    assert stats["rejected_reward"] == pytest.approx((-1.0, 1))
    loss, _ = preference_loss(cfg, batch, policy, reference, StepTotals(2, kl_ref=-1.0))
    assert float(loss) == pytest.approx(0.2689414, abs=1e-6)


def test_rrhf_ranks_and_adds_the_best_responses_nll():
    """One set, scores [0, 2, 1]; sums [-1, -4, -3] over counts [1, 2, 3]: averages
    [-1, -2, -1]. Ordered pairs (lower, higher): (0,1) gap -1 - -2 = 1; (0,2) gap 0;
    (2,1) gap 1: ranking loss 2, no pair ranked right (0 of 3). The best is response 1
    with 2 tokens; its NLL over the step's 2 best tokens is 4 / 2 = 2. Total 4."""
    batch = {"scores": torch.tensor([[0.0, 2.0, 1.0]]),
             "loss_mask": torch.tensor([[0, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 1]]).bool()}
    policy = _logps([-1.0, -4.0, -3.0], [1, 2, 3])
    assert nll_token_count("rrhf", batch) == 2
    loss, stats = preference_loss(RRHFLoss(type="rrhf"), batch, policy, None,
                                  StepTotals(1, nll_tokens=2))
    assert float(loss) == pytest.approx(4.0, abs=1e-6)
    assert stats["ranking_loss"] == pytest.approx((2.0, 1))
    assert stats["ranking_accuracy"] == pytest.approx((0.0, 3))


def test_nll_token_counts():
    """ORPO counts the chosen half's response tokens (rows 0-1: 1 + 2 = 3). RRHF counts the
    best response's, the first on ties: scores [1, 1, 0] pick row 0 (1 token). DPO has none."""
    pairs = {"loss_mask": torch.tensor([[0, 1, 0], [0, 1, 1], [0, 1, 1], [0, 0, 1]]).bool()}
    assert nll_token_count("orpo", pairs) == 3
    assert nll_token_count("dpo", pairs) == 0
    ranked = {"scores": torch.tensor([[1.0, 1.0, 0.0]]),
              "loss_mask": torch.tensor([[0, 1, 0], [0, 1, 1], [0, 1, 1]]).bool()}
    assert nll_token_count("rrhf", ranked) == 1


def test_sft_weight_adds_the_length_normalised_chosen_nll_per_pair():
    """The DPO case above (loss sum 1.2873387 over 4 step pairs) with α = 0.5 and chosen
    counts [2, 4]: chosen averages -1/2 = -0.5 and -2/4 = -0.5, so each pair adds
    0.5 · 0.5 = 0.25: (1.2873387 + 0.5) / 4 = 0.4468347. chosen_nll sums 0.5 + 0.5 = 1
    over 2 pairs. The rejected counts do not matter."""
    policy = _logps([-1.0, -2.0, -3.0, -1.0], [2, 4, 7, 9])
    reference = torch.tensor([-2.0, -2.0, -2.0, -2.0])
    loss, stats = preference_loss(DPOLoss(beta=0.5, sft_weight=0.5), {}, policy, reference,
                                  StepTotals(4))
    assert float(loss) == pytest.approx(0.4468347, abs=1e-6)
    assert stats["chosen_nll"] == pytest.approx((1.0, 2))
    _, plain = preference_loss(DPOLoss(beta=0.5), {}, policy, reference, StepTotals(4))
    assert "chosen_nll" not in plain


def test_sft_weight_gradient_raises_the_chosen_log_prob():
    """With α > 0 the loss's gradient with respect to the chosen sum gains -α / count
    = -1/2 (β = 0.5, h = 0 at equal log-probs: d/dπ_c of softplus(-βh) = -β/2 = -0.25;
    total -0.75 over 1 step pair)."""
    sums = torch.tensor([-2.0, -2.0], requires_grad=True)
    policy = SequenceLogps(sums, torch.tensor([1, 1]))
    loss, _ = preference_loss(DPOLoss(beta=0.5, sft_weight=0.5), {}, policy,
                              torch.tensor([-2.0, -2.0]), StepTotals(1))
    loss.backward()
    torch.testing.assert_close(sums.grad, torch.tensor([-0.75, 0.25]))
