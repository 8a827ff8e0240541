"""Next-token choice: the nucleus on hand-built distributions, frequencies, temperature, greedy."""

import math

import pytest
import torch

from alignkit.rollout import nucleus_mask, sample_next_token

PROBS = [0.5, 0.3, 0.15, 0.05]


def test_nucleus_mask_by_hand():
    """Sorted probabilities 0.5, 0.3, 0.15, 0.05 have masses before them 0, 0.5, 0.8, 0.95.

    A token is kept while the mass before it is below top_p:
    top_p 0.4 -> {0.5}; 0.7 and 0.8 -> {0.5, 0.3} (0.8 is not below 0.8);
    0.81 -> three tokens; 1.0 -> all four. The second row is the same
    distribution in another order, so the mask follows the tokens.
    """
    probs = torch.tensor([PROBS, [0.05, 0.15, 0.3, 0.5]])
    expected = {0.4: [1, 0, 0, 0], 0.7: [1, 1, 0, 0], 0.8: [1, 1, 0, 0], 0.81: [1, 1, 1, 0],
                1.0: [1, 1, 1, 1]}
    for top_p, keep in expected.items():
        mask = nucleus_mask(probs, top_p)
        assert mask[0].tolist() == [bool(k) for k in keep], top_p
        assert mask[1].tolist() == [bool(k) for k in reversed(keep)], top_p


def test_nucleus_mask_keeps_the_top_token_even_for_a_tiny_top_p():
    probs = torch.tensor([[0.1, 0.9]])
    assert nucleus_mask(probs, 1e-6).tolist() == [[False, True]]
    with pytest.raises(ValueError, match="top_p"):
        nucleus_mask(probs, 0.0)


def _draw(n, *, temperature=1.0, top_p=1.0, seed=0):
    logits = torch.log(torch.tensor(PROBS)).expand(n, 4)
    gen = torch.Generator().manual_seed(seed)
    return sample_next_token(logits, temperature=temperature, top_p=top_p, generator=gen)


def _within(frequency, p, n, sigmas=4.0):
    return abs(frequency - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_top_p_samples_only_the_nucleus_renormalised():
    """top_p 0.7 keeps tokens 0 and 1 (0.5 and 0.3); renormalised they are 0.625 and 0.375.

    With 20,000 draws the standard error of 0.625 is sqrt(0.625·0.375/20000) = 0.0034,
    so each frequency must lie within 4 of those; tokens 2 and 3 never appear.
    """
    n = 20_000
    tokens, _ = _draw(n, top_p=0.7)
    counts = torch.bincount(tokens, minlength=4).tolist()
    assert counts[2] == counts[3] == 0
    assert _within(counts[0] / n, 0.625, n) and _within(counts[1] / n, 0.375, n)


def test_full_distribution_frequencies_match_the_probabilities():
    n = 20_000
    tokens, logps = _draw(n, seed=1)
    counts = torch.bincount(tokens, minlength=4)
    for count, p in zip(counts.tolist(), PROBS, strict=True):
        assert _within(count / n, p, n)
    torch.testing.assert_close(logps, torch.log(torch.tensor(PROBS))[tokens])


def test_temperature_sharpens_and_log_probs_are_of_the_scaled_distribution():
    """T = 0.5 squares the probabilities: 0.25, 0.09, 0.0225, 0.0025, sum 0.365, so
    p_T = 0.684932, 0.246575, 0.061644, 0.006849. Reported log-probs are log p_T
    (before any nucleus cut): log 0.684932 = -0.378436 for token 0."""
    n = 20_000
    tokens, logps = _draw(n, temperature=0.5, seed=2)
    p_t = torch.tensor([0.25, 0.09, 0.0225, 0.0025]) / 0.365
    counts = torch.bincount(tokens, minlength=4)
    for count, p in zip(counts.tolist(), p_t.tolist(), strict=True):
        assert _within(count / n, p, n)
    torch.testing.assert_close(logps, p_t.log()[tokens])
    assert math.log(0.684932) == pytest.approx(-0.378436, abs=1e-6)
    _, cut_logps = _draw(8, temperature=0.5, top_p=0.5, seed=2)
    torch.testing.assert_close(cut_logps, torch.full((8,), math.log(0.25 / 0.365)))


def test_greedy_picks_the_argmax_with_its_untempered_log_prob():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, -1.0, 0.0]])
    tokens, logps = sample_next_token(logits, temperature=0.0)
    assert tokens.tolist() == [1, 0]
    torch.testing.assert_close(logps, torch.log_softmax(logits, -1)[[0, 1], [1, 0]])


def test_same_seed_same_draws_other_seed_other_draws():
    a, _ = _draw(64, seed=5)
    b, _ = _draw(64, seed=5)
    c, _ = _draw(64, seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_negative_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(torch.zeros(1, 3), temperature=-1.0)


@pytest.mark.parametrize("shape", [(16, 1024), (3, 7), (1, 100_003)])
def test_exponential_draws_are_exponential_s_own_values_from_the_same_stream(shape):
    from alignkit.rollout.sampling import exponential_draws

    ours, torchs = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    for _ in range(3):  # consecutive draws stay in step
        expected = torch.empty(shape).exponential_(1, generator=torchs)
        drawn = exponential_draws(torch.zeros(shape), ours)
        assert drawn.dtype == torch.float32 and torch.equal(drawn, expected)
    assert torch.equal(ours.get_state(), torchs.get_state())
    torch.manual_seed(4)
    from_global = exponential_draws(torch.zeros(shape), None)
    torch.manual_seed(4)
    assert torch.equal(from_global, torch.empty(shape).exponential_(1))
