"""A panel of simulated annotators who label lab data from the gold reward, imperfectly.

Each annotator judges a response by a private *utility*: the gold total plus
their own bias. Comparing two responses, annotator ``i`` prefers the first with
the Bradley-Terry probability::

    P(first > second) = sigmoid((u_i(first) - u_i(second)) / temperature_i)

and a careless annotator, with some probability, ignores both and flips a coin.
Judging one response alone (thumbs up or down, for KTO data) they approve with
``sigmoid((u_i(response) - threshold) / temperature_i)``.

The default panel (:data:`PANEL`):

================  ===========  ==================================================
annotator         temperature  bias
================  ===========  ==================================================
careful           0.25         none: the gold reward with little noise
typical           0.5          none
long_answers      0.5          +0.06 per word: likes long answers
careless          0.5          a coin flip 40% of the time
safety_first      0.5          harmlessness counts double, +0.75 for any refusal
================  ===========  ==================================================

So the labels disagree as real labels do, and a reward model learned from them
is an imperfect proxy of gold: it inherits a taste for length and for refusals
that a policy can exploit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alignkit.lab.gold import GoldScore


@dataclass(frozen=True)
class Annotator:
    """One simulated annotator.

    Attributes:
        name: the annotator's id in ``meta.labels``.
        temperature: Bradley-Terry noise; higher means noisier labels.
        length_bias: utility added per word of the response.
        careless: probability of labelling at random.
        safety_weight: extra weight on the harmlessness aspect.
        refusal_bonus: utility added to any refusal.
    """

    name: str
    temperature: float
    length_bias: float = 0.0
    careless: float = 0.0
    safety_weight: float = 0.0
    refusal_bonus: float = 0.0

    def utility(self, score: GoldScore) -> float:
        """How much this annotator likes a response with gold ``score``."""
        return (score.total + self.length_bias * score.words
                + self.safety_weight * score.harmlessness
                + self.refusal_bonus * float(score.refusal))

    def prefers_first(self, rng: np.random.Generator, first: GoldScore,
                      second: GoldScore) -> bool:
        """Whether the annotator prefers the first of two responses (one random label)."""
        gap = self.utility(first) - self.utility(second)
        return self._decide(rng, gap)

    def finds_first_more_harmful(self, rng: np.random.Generator, first: GoldScore,
                                 second: GoldScore) -> bool:
        """Asked only about harm: the harmlessness aspects decide, none of the tastes."""
        return self._decide(rng, second.harmlessness - first.harmlessness)

    def approves(self, rng: np.random.Generator, score: GoldScore, threshold: float) -> bool:
        """Whether the annotator gives one response a thumbs up (one random label)."""
        return self._decide(rng, self.utility(score) - threshold)

    def _decide(self, rng: np.random.Generator, gap: float) -> bool:
        # Both draws happen every time, so one annotator's randomness never
        # shifts with the data it labels.
        coin, draw = rng.random(), rng.random()
        if coin < self.careless:
            return draw < 0.5
        return draw < _sigmoid(gap / self.temperature)


PANEL: tuple[Annotator, ...] = (
    Annotator("careful", temperature=0.25),
    Annotator("typical", temperature=0.5),
    Annotator("long_answers", temperature=0.5, length_bias=0.06),
    Annotator("careless", temperature=0.5, careless=0.4),
    Annotator("safety_first", temperature=0.5, safety_weight=1.0, refusal_bonus=0.75),
)

APPROVAL_THRESHOLD = 2.0
"""Gold total (in each annotator's utility) above which a response is more likely good."""


def compare(rng: np.random.Generator, first: GoldScore, second: GoldScore,
            panel: Sequence[Annotator] = PANEL) -> dict[str, bool]:
    """Each annotator's vote: True when they prefer ``first``."""
    return {a.name: a.prefers_first(rng, first, second) for a in panel}


def compare_harm(rng: np.random.Generator, first: GoldScore, second: GoldScore,
                 panel: Sequence[Annotator] = PANEL) -> dict[str, bool]:
    """Each annotator's vote on which response is the more harmful: True for ``first``.

    Asked only about harm, an annotator compares the harmlessness aspects,
    ``P(first) = sigmoid((h(second) - h(first)) / temperature)``, with their own
    noise and carelessness but none of their tastes (length, refusals).
    """
    return {a.name: a.finds_first_more_harmful(rng, first, second) for a in panel}


def approve(rng: np.random.Generator, score: GoldScore,
            panel: Sequence[Annotator] = PANEL,
            threshold: float = APPROVAL_THRESHOLD) -> dict[str, bool]:
    """Each annotator's thumbs up (True) or down for one response."""
    return {a.name: a.approves(rng, score, threshold) for a in panel}


def majority(votes: dict[str, bool]) -> bool:
    """True when more than half of the votes are True (the panel has an odd size)."""
    return sum(votes.values()) * 2 > len(votes)


def rank_scores(rng: np.random.Generator, scores: Sequence[GoldScore],
                panel: Sequence[Annotator] = PANEL) -> list[float]:
    """Borda scores of several responses to one prompt, from the panel's pairwise votes.

    Every annotator compares every pair once; a response's score is its wins
    divided by the panel size, so with ``k`` responses it lies in ``[0, k - 1]``.
    """
    wins = [0] * len(scores)
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            for prefers_i in compare(rng, scores[i], scores[j], panel).values():
                wins[i if prefers_i else j] += 1
    return [w / len(panel) for w in wins]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
