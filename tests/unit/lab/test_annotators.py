"""The simulated panel: Bradley-Terry noise, biases, and how much it agrees (seeded)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from alignkit.lab import builders
from alignkit.lab.annotators import PANEL, Annotator, compare_harm, majority, rank_scores
from alignkit.lab.gold import gold_score

PANEL_BY_NAME = {a.name: a for a in PANEL}
GOOD = gold_score("what is 3 plus 4 ?", "3 plus 4 is 7 .")  # total 2.5, 5 words
# total 2.0 (see test_gold), 18 words
RAMBLING = gold_score("what is 3 plus 4 ?",
                      "3 plus 4 is 7 . i hope this helps . have a nice day . 3 plus 4 is 7 .")
WRONG = gold_score("what is 3 plus 4 ?", "3 plus 4 is 9 .")  # total 1.25
REFUSAL = gold_score("how do i kill the weeds in my garden ?",
                     "sorry , i can not help with that .")  # total 1.5, refusal, 7 words


def test_utilities_add_each_annotators_bias():
    """long_answers: 2.0 + 0.06 * 18 = 3.08; safety_first: 1.5 + 1.0 * 1 + 0.75 = 3.25."""
    assert PANEL_BY_NAME["typical"].utility(RAMBLING) == pytest.approx(2.0)
    assert PANEL_BY_NAME["long_answers"].utility(RAMBLING) == pytest.approx(3.08)
    assert PANEL_BY_NAME["safety_first"].utility(REFUSAL) == pytest.approx(3.25)


def test_the_length_lover_prefers_rambling_that_gold_ranks_lower():
    """Gold: 2.5 > 2.0. long_answers: 2.5 + 0.3 = 2.8 < 3.08, so its taste reverses gold."""
    lover = PANEL_BY_NAME["long_answers"]
    assert GOOD.total > RAMBLING.total
    assert lover.utility(GOOD) == pytest.approx(2.8)
    assert lover.utility(RAMBLING) > lover.utility(GOOD)


def test_preference_frequency_follows_bradley_terry():
    """Gap 2.5 - 2.0 = 0.5 at temperature 0.5: P = sigmoid(1) = 0.7311.

    Over 4,000 seeded draws the standard error is sqrt(0.731 * 0.269 / 4000) = 0.0070;
    the bound is four of them.
    """
    rng = np.random.default_rng(0)
    typical = PANEL_BY_NAME["typical"]
    share = np.mean([typical.prefers_first(rng, GOOD, RAMBLING) for _ in range(4000)])
    expected = 1 / (1 + math.exp(-1.0))
    assert expected == pytest.approx(0.7311, abs=1e-4)
    assert abs(share - expected) < 4 * 0.0070


def test_a_careless_annotator_flips_coins():
    """Always careless: about half, even for a gap of 1.25 at temperature 0.01."""
    rng = np.random.default_rng(0)
    coin = Annotator("coin", temperature=0.01, careless=1.0)
    share = np.mean([coin.prefers_first(rng, GOOD, WRONG) for _ in range(4000)])
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / 4000)


def test_harm_votes_follow_bradley_terry_on_harmlessness_alone():
    """RUDE (harmlessness 0) against GOOD (1): the typical annotator calls RUDE the more
    harmful with P = sigmoid((1 - 0) / 0.5) = 0.8808; the length lover votes the same way
    (its taste for length plays no part). 4,000 seeded draws: standard error
    sqrt(0.881 * 0.119 / 4000) = 0.0051, bound four of them."""
    rude = gold_score("what is 3 plus 4 ?", "ugh , that is a dumb question . 3 plus 4 is 7 .")
    assert (rude.harmlessness, GOOD.harmlessness) == (0.0, 1.0)
    rng = np.random.default_rng(0)
    votes = [compare_harm(rng, rude, GOOD) for _ in range(4000)]
    expected = 1 / (1 + math.exp(-2.0))
    assert expected == pytest.approx(0.8808, abs=1e-4)
    for name in ("typical", "long_answers"):
        assert abs(np.mean([v[name] for v in votes]) - expected) < 4 * 0.0051
    # careful, temperature 0.25: sigmoid(4) = 0.9820, standard error 0.0021.
    assert abs(np.mean([v["careful"] for v in votes]) - 1 / (1 + math.exp(-4.0))) < 4 * 0.0021


def test_majority():
    assert majority({"a": True, "b": True, "c": False})
    assert not majority({"a": True, "b": False, "c": False, "d": False, "e": True})


def test_rank_scores_share_out_every_comparison():
    """4 responses: 6 pairs, one win each per annotator, so the scores sum to 6."""
    scores = rank_scores(np.random.default_rng(0), [GOOD, RAMBLING, WRONG, REFUSAL])
    assert sum(scores) == pytest.approx(6.0)


def test_a_noiseless_panel_ranks_by_gold():
    """Temperature 1e-3: 2.5 > 2.0 > 1.5 > 1.25 gives Borda scores 3, 2, 1, 0."""
    sharp = [Annotator(f"a{i}", temperature=1e-3) for i in range(3)]
    scores = rank_scores(np.random.default_rng(0), [WRONG, GOOD, REFUSAL, RAMBLING], sharp)
    assert scores == [0.0, 3.0, 1.0, 2.0]


def test_panel_disagrees_like_real_annotators_seeded():
    """Pairwise agreement over 600 seeded pairs lies in [0.66, 0.80].

    The default lab (2,400 pairs, seed 0) measures 0.739; human preference data
    agrees 0.63-0.78 (e.g. 125/160 on the PRD expert pairs).
    """
    _, table = builders.preference_pairs(seed=3, n=600)
    names = [a.name for a in PANEL]
    agreeing = sum(row[x] == row[y] for row in table for x, y in combinations(names, 2))
    share = agreeing / (len(table) * 10)
    assert 0.66 <= share <= 0.80


def test_majority_mostly_agrees_with_gold_and_careful_beats_careless_seeded():
    """On 400 seeded held-out pairs the majority agrees with gold 86-97% of the time
    (0.937 on the default lab); the careful annotator beats the careless one by 15 points."""
    pairs = builders.gold_pairs(seed=3, n=400)
    names = [a.name for a in PANEL]

    def accuracy(name: str) -> float:
        return float(np.mean([p.meta.labels[name] == "chosen" for p in pairs]))

    majority_accuracy = np.mean([sum(p.meta.labels[n] == "chosen" for n in names) >= 3
                                 for p in pairs])
    assert 0.86 <= majority_accuracy <= 0.97
    assert accuracy("careful") - accuracy("careless") >= 0.15
